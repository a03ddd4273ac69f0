"""Bronze telemetry to silver: parse, resolve master data, validate, conform units, deduplicate.

Input rows are raw events (Event Hubs bodies) and historian lines. Every input row leaves as
exactly one silver row or one quarantine row, so silver + quarantine always accounts for bronze.
"""
from __future__ import annotations

from data_prep.quality import apply_expectations, checked_rows, load_expectations, mark_duplicates
from data_prep.units import conversion_rows

EVENT_BODY = "asset_id string, tag string, ts string, value string, unit string, quality string, _corrupt string"
HISTORIAN_ROW = "TagName string, TimeStamp string, Value string, EngUnits string, Quality string, _unparsed string, _corrupt string"
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
NON_FINITE = ("nan", "infinity", "+infinity", "-infinity", "inf", "-inf", "+inf")


def parse_telemetry(bronze):
    """One row per bronze row with the source's fields as text, in one layout for both sources."""
    from pyspark.sql import functions as F

    ev = F.from_json("raw", EVENT_BODY, PERMISSIVE)
    hist = F.from_json("raw", HISTORIAN_ROW, PERMISSIVE)
    is_event = F.col("_source") == "eventhub"
    parsed = bronze.select(
        "_record_id", "_source", "_source_file", "_line", "_batch_id", "raw",
        F.col("eh_enqueued_time").alias("enqueued_time"),
        F.when(is_event, ev).alias("ev"),
        F.when(~is_event, hist).alias("h"),
    )
    value_text = F.when(is_event, F.col("ev.value")).otherwise(F.col("h.Value"))
    clean_value = F.lower(F.trim(F.regexp_replace(value_text, '"', "")))
    file_day = F.to_timestamp(F.regexp_extract("_source_file", r"(\d{4}-\d{2}-\d{2})", 1), "yyyy-MM-dd")
    return parsed.select(
        "_record_id", "_source", "_source_file", "_line", "_batch_id", "raw", "enqueued_time",
        F.when(is_event, F.col("ev").isNull() | F.col("ev._corrupt").isNotNull())
        .otherwise(F.col("h").isNull() | F.col("h._corrupt").isNotNull() | F.col("h._unparsed").isNotNull())
        .alias("malformed"),
        F.when(is_event, F.col("ev.asset_id")).alias("ev_asset"),
        F.when(is_event, F.col("ev.tag")).otherwise(F.col("h.TagName")).alias("src_tag"),
        F.when(is_event, F.col("ev.ts")).otherwise(F.col("h.TimeStamp")).alias("ts_text"),
        value_text.alias("value_text"),
        clean_value.isin(*NON_FINITE).alias("value_non_finite"),
        F.expr("try_cast(trim(regexp_replace({0}, '\"', '')) AS double)".format(
            "CASE WHEN _source = 'eventhub' THEN ev.value ELSE h.Value END")).alias("value_num"),
        F.when(is_event, F.col("ev.unit")).otherwise(F.col("h.EngUnits")).alias("unit_src"),
        F.when(is_event, F.col("ev.quality")).otherwise(F.lower(F.col("h.Quality"))).alias("quality"),
        F.when(is_event, F.to_timestamp(F.col("ev.ts")))
        .otherwise(F.to_timestamp(F.col("h.TimeStamp"), "MM/dd/yyyy HH:mm:ss")).alias("ts"),
        # What a timestamp may not be later than: the broker's receipt, or the end of the export's day.
        F.coalesce(F.col("enqueued_time"), file_day + F.expr("INTERVAL 1 DAY")).alias("reference_time"),
    )


def refine_telemetry(bronze, assets, tags, historian_xref, silver_keys=None):
    """Check new bronze telemetry: one row out per row in, with ``rule`` null (silver) or naming
    the expectation it failed (quarantine); see ``quality.split_checked``.

    ``assets``: golden asset ids; ``tags``: the tag master; ``historian_xref``: historian TagName to
    (asset_id, tag); ``silver_keys``: (asset_id, tag, ts) already in silver, for cross-batch duplicates.
    """
    from pyspark.sql import functions as F

    spark = bronze.sparkSession
    conv = spark.createDataFrame(
        conversion_rows(), "measurement string, unit_src string, canonical_unit string, scale double, "
        "offset double, limit_lo double, limit_hi double"
    )
    parsed = parse_telemetry(bronze)
    xref = historian_xref.select(
        F.col("source_id").alias("src_tag"), F.col("asset_id").alias("h_asset"), F.col("tag").alias("h_tag")
    )
    known = assets.select(F.col("asset_id").alias("known_asset_id")).distinct()
    df = (
        parsed.join(F.broadcast(xref), on="src_tag", how="left")
        .withColumn("asset_id", F.coalesce("ev_asset", "h_asset"))
        .withColumn("tag", F.when(F.col("_source") == "eventhub", F.col("src_tag")).otherwise(F.col("h_tag")))
        # For historian lines the asset is only known through the tag crosswalk.
        .withColumn("src_asset", F.when(F.col("_source") == "eventhub", F.col("ev_asset")).otherwise(F.col("src_tag")))
        .join(F.broadcast(known), F.col("asset_id") == F.col("known_asset_id"), "left")
        .withColumn("asset_known", F.col("known_asset_id").isNotNull())
        .join(F.broadcast(tags.select("asset_id", "tag", "measurement")), on=["asset_id", "tag"], how="left")
        .join(F.broadcast(conv), on=["measurement", "unit_src"], how="left")
        .withColumn("value", F.col("value_num") * F.col("scale") + F.col("offset"))
        .withColumn("unit", F.col("canonical_unit"))
    )
    # The first arrival of a reading wins; later copies (same asset, tag, ts) are duplicates.
    df = mark_duplicates(df, ["asset_id", "tag", "ts"], silver_keys,
                         order=("enqueued_time", "_source_file", "_line"))

    df = (
        df.withColumn("source_unit", F.col("unit_src"))
        .withColumn("source", F.col("_source"))
        .withColumn("event_date", F.to_date("ts"))
    )
    return checked_rows(apply_expectations(df, load_expectations("telemetry")), "telemetry")
