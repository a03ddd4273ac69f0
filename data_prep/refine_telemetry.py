"""Bronze telemetry to silver: parse, resolve master data, validate, conform units, deduplicate.

Input rows are raw events (Event Hubs bodies) and historian lines. Every input row leaves as
exactly one silver row or one quarantine row, so silver + quarantine always accounts for bronze.
"""
from __future__ import annotations

from data_prep import duck
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


# ---------------------------------------------------------------------------- DuckDB twin
# Fields read from each record, in the order of the extracted list (1-based in DuckDB).
_FIELDS = ("asset_id", "tag", "ts", "value", "unit", "quality", "TagName", "TimeStamp", "Value", "EngUnits", "Quality", "_unparsed")


def _field(event_name: str, historian_name: str) -> str:
    return (f"CASE WHEN is_event THEN f[{_FIELDS.index(event_name) + 1}] "
            f"ELSE f[{_FIELDS.index(historian_name) + 1}] END")


def parse_telemetry_sql(bronze: str) -> str:
    """DuckDB twin of ``parse_telemetry``: one row per bronze row, the source's fields as text.

    Spark parses a record into a map and gets null for anything that is not a JSON object; here
    the object test comes first (``spark_json_object``: what Jackson reads as one), since DuckDB's
    JSON functions raise on malformed text. Numbers and timestamps are read by Spark's rules
    (``duck.SPARK_MACROS``; the connection must have them, ``duck.define_spark_macros``).
    """
    paths = ", ".join(f"'$.{name}'" for name in _FIELDS)
    file_day = duck.spark_to_timestamp(r"regexp_extract(_source_file, '(\d{4}-\d{2}-\d{2})', 1)", "yyyy-MM-dd")
    non_finite = ", ".join(f"'{v}'" for v in NON_FINITE)
    bare_value = "spark_trim(replace(value_text, '\"', ''))"
    return f"""
    WITH objects AS (
        SELECT _record_id, _source, _source_file, _line, _batch_id, raw, eh_enqueued_time AS enqueued_time,
               _source = 'eventhub' AS is_event,
               coalesce(spark_json_object(raw), false) AS is_object
        FROM {bronze}
    ), fields AS (
        -- Not CASE WHEN is_object: DuckDB may evaluate both branches; null text extracts nothing.
        SELECT *, json_extract_string(CASE WHEN is_object THEN raw END, [{paths}]) AS f FROM objects
    ), texts AS (
        SELECT _record_id, _source, _source_file, _line, _batch_id, raw, enqueued_time, is_event,
               NOT is_object OR f[{_FIELDS.index('_unparsed') + 1}] IS NOT NULL AS malformed,
               CASE WHEN is_event THEN f[1] END AS ev_asset,
               {_field('tag', 'TagName')} AS src_tag,
               {_field('ts', 'TimeStamp')} AS ts_text,
               {_field('value', 'Value')} AS value_text,
               {_field('unit', 'EngUnits')} AS unit_src,
               lower({_field('quality', 'Quality')}) AS quality
        FROM fields
    )
    SELECT *,
           coalesce(lower({bare_value}) IN ({non_finite}), false) AS value_non_finite,
           spark_double({bare_value}) AS value_num,
           CASE WHEN is_event THEN spark_timestamp(ts_text)
                ELSE {duck.spark_to_timestamp('ts_text', 'MM/dd/yyyy HH:mm:ss')} END AS ts,
           -- What a timestamp may not be later than: the broker's receipt, or the end of the export's day.
           coalesce(enqueued_time, {file_day} + INTERVAL 1 DAY) AS reference_time
    FROM texts
    """


def refine_telemetry_duckdb(con, bronze, assets, tags, historian_keys, silver_keys=None):
    """DuckDB twin of ``refine_telemetry`` on Arrow tables; returns the checked rows as Arrow.

    ``bronze``: new bronze telemetry; ``assets``, ``tags``: silver master data; ``historian_keys``:
    (key, asset_id, tag) from ``mdm.historian_keys``; ``silver_keys``: for cross-batch duplicates,
    a function from the event dates this batch touches to the (asset_id, tag, ts) silver already
    holds on them (only those days can hold this batch's duplicates), or None for an empty silver.
    """
    import pyarrow as pa

    duck.define_spark_macros(con)
    src = duck.register(con, bronze, "bronze")
    asset_ids = duck.register(con, assets.select(["asset_id"]), "assets")
    tag_master = duck.register(con, tags.select(["asset_id", "tag", "measurement"]), "tags")
    keys = duck.register(con, pa.Table.from_pandas(historian_keys[["key", "asset_id", "tag"]], preserve_index=False), "hkeys")
    conv = duck.register(con, pa.Table.from_pylist([
        dict(zip(("measurement", "unit_src", "canonical_unit", "scale", "offset", "limit_lo", "limit_hi"), row))
        for row in conversion_rows()
    ]), "conv")
    historian_key = duck.spark_sql(HISTORIAN_KEY_SQL.format("p.src_tag"))
    resolved = duck.view(con, f"""
    WITH parsed AS ({parse_telemetry_sql(src)}),
    located AS (
        SELECT p.*, coalesce(p.ev_asset, h.asset_id) AS asset_id,
               CASE WHEN p.is_event THEN p.src_tag ELSE h.tag END AS tag,
               -- For historian lines the asset is only known through the tag crosswalk.
               CASE WHEN p.is_event THEN p.ev_asset ELSE p.src_tag END AS src_asset
        FROM parsed p
        LEFT JOIN {keys} h ON NOT p.is_event AND {historian_key} = h.key
    )
    SELECT l.*, l.asset_id IN (SELECT asset_id FROM {asset_ids}) IS TRUE AS asset_known, t.measurement,
           c.canonical_unit, c.scale, c."offset", c.limit_lo, c.limit_hi,
           l.value_num * c.scale + c."offset" AS value, c.canonical_unit AS unit,
           l.unit_src AS source_unit, l._source AS source
    FROM located l
    LEFT JOIN {tag_master} t ON t.asset_id = l.asset_id AND t.tag = l.tag
    LEFT JOIN {conv} c ON c.measurement = t.measurement AND c.unit_src = l.unit_src
    """, "resolved")
    existing = None
    if silver_keys is not None:
        days = [d for (d,) in con.execute(f"SELECT DISTINCT CAST(ts AS DATE) FROM {resolved} WHERE ts IS NOT NULL").fetchall()]
        existing = silver_keys(days) if days else None
    # The first arrival of a reading wins; later copies (same asset, tag, ts) are duplicates.
    deduped = duck.mark_duplicates(con, resolved, ["asset_id", "tag", "ts"], existing,
                                   order=("enqueued_time", "_source_file", "_line"))
    dated = duck.view(con, f"SELECT *, CAST(ts AS DATE) AS event_date FROM {deduped}", "dated")
    checked = duck.apply_expectations(con, dated, load_expectations("telemetry"))
    return duck.checked_rows(con, checked, "telemetry")
