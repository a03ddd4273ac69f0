"""Bronze telemetry to silver: parse, resolve master data, validate, conform units, deduplicate.

Input rows are raw events (Event Hubs bodies) and historian lines. Every input row leaves as
exactly one silver row or one quarantine row, so silver + quarantine always accounts for bronze.
"""
from __future__ import annotations

from data_prep.mdm import HISTORIAN_KEY_SQL
from data_prep.quality import apply_expectations, checked_rows, load_expectations, mark_duplicates
from data_prep.units import conversion_rows

# Each raw record (event body or historian CSV row as JSON) is parsed once, into a map of text:
# a map because the two layouts differ only in the case of some names (value/Value), which struct
# field access would not tell apart. The expectations decide what the texts may be.
NON_FINITE = ("nan", "infinity", "+infinity", "-infinity", "inf", "-inf", "+inf")


def parse_telemetry(bronze):
    """One row per bronze row with the source's fields as text, in one layout for both sources."""
    from pyspark.sql import functions as F

    is_event = F.col("_source") == "eventhub"

    def field(event_name: str, historian_name: str):
        return F.when(is_event, F.col("r")[event_name]).otherwise(F.col("r")[historian_name])

    texts = bronze.select(
        "_record_id", "_source", "_source_file", "_line", "_batch_id", "raw",
        F.col("eh_enqueued_time").alias("enqueued_time"),
        F.from_json("raw", "map<string,string>").alias("r"),
    ).select(
        "_record_id", "_source", "_source_file", "_line", "_batch_id", "raw", "enqueued_time",
        (F.col("r").isNull() | F.col("r")["_unparsed"].isNotNull()).alias("malformed"),
        F.when(is_event, F.col("r")["asset_id"]).alias("ev_asset"),
        field("tag", "TagName").alias("src_tag"),
        field("ts", "TimeStamp").alias("ts_text"),
        field("value", "Value").alias("value_text"),
        field("unit", "EngUnits").alias("unit_src"),
        F.lower(field("quality", "Quality")).alias("quality"),
    )
    bare_value = F.trim(F.regexp_replace("value_text", '"', ""))
    file_day = F.to_timestamp(F.regexp_extract("_source_file", r"(\d{4}-\d{2}-\d{2})", 1), "yyyy-MM-dd")
    return texts.select(
        "*",
        F.lower(bare_value).isin(*NON_FINITE).alias("value_non_finite"),
        F.expr("try_cast(trim(regexp_replace(value_text, '\"', '')) AS double)").alias("value_num"),
        F.when(is_event, F.to_timestamp("ts_text")).otherwise(F.to_timestamp("ts_text", "MM/dd/yyyy HH:mm:ss")).alias("ts"),
        # What a timestamp may not be later than: the broker's receipt, or the end of the export's day.
        F.coalesce(F.col("enqueued_time"), file_day + F.expr("INTERVAL 1 DAY")).alias("reference_time"),
    )


def refine_telemetry(bronze, assets, tags, historian_keys, silver_keys=None):
    """Check new bronze telemetry: one row out per row in, with ``rule`` null (silver) or naming
    the expectation it failed (quarantine); see ``quality.split_checked``.

    ``assets``: golden asset ids; ``tags``: the tag master; ``historian_keys``: (key, asset_id, tag)
    from ``mdm.historian_keys``, which a historian TagName matches by its uppercase alphanumerics;
    ``silver_keys``: (asset_id, tag, ts) already in silver, for cross-batch duplicates.
    """
    from pyspark.sql import functions as F

    spark = bronze.sparkSession
    conv = spark.createDataFrame(
        conversion_rows(), "measurement string, unit_src string, canonical_unit string, scale double, "
        "offset double, limit_lo double, limit_hi double"
    )
    parsed = parse_telemetry(bronze)
    xref = historian_keys.select(F.col("key").alias("h_key"), F.col("asset_id").alias("h_asset"), F.col("tag").alias("h_tag"))
    historian_key = F.when(F.col("_source") == "historian", F.expr(HISTORIAN_KEY_SQL.format("src_tag")))
    known = assets.select(F.col("asset_id").alias("known_asset_id")).distinct()
    df = (
        parsed.join(F.broadcast(xref), historian_key == F.col("h_key"), how="left")
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
    # Persisted and filled now: finding duplicates takes passes of their own, and Spark would
    # otherwise start them together, each parsing and joining the batch before the cache is filled.
    # The raw record stays out of the cache (it is most of a row's bytes); only rejected rows need
    # it, and they fetch it back from bronze below.
    df = df.drop("raw").persist()
    df.count()
    df = mark_duplicates(df, ["asset_id", "tag", "ts"], silver_keys,
                         order=("enqueued_time", "_source_file", "_line"))  # ascending puts nulls (historian) first
    df = (
        df.withColumn("source_unit", F.col("unit_src"))
        .withColumn("source", F.col("_source"))
        .withColumn("event_date", F.to_date("ts"))
    )
    checked = apply_expectations(df, load_expectations("telemetry"))
    rejected_ids = checked.where(F.col("rule").isNotNull()).select("_record_id")
    rejected_raw = bronze.select("_record_id", "raw").join(F.broadcast(rejected_ids), "_record_id", "left_semi")
    checked = checked.join(F.broadcast(rejected_raw), "_record_id", "left")
    return checked_rows(checked, "telemetry")
