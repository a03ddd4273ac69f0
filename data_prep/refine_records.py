"""Bronze to silver for the record sources: alarm journal, work orders, production, sales orders.

Each ``refine_<table>`` is pure: new bronze rows and master data in, checked rows out (one per
input row, ``rule`` null for silver or naming the failed expectation for quarantine). Source ids are resolved to golden ids through the
master-data crosswalks here, so silver speaks only golden ids.

Beside each Spark function is its DuckDB twin, ``refine_<table>_duckdb``: the same rows, silver
values, rules and reasons from Arrow tables on one machine (``data_prep.duck``). Where Spark reads
text in its own way (from_json, casts, to_timestamp) the twins call the macros of ``duck.SPARK_MACROS``.
The engines still differ on text no source here writes (tests/test_refine_records_duckdb.py pins
each): JSON that only Jackson reads (single quotes, text after the object, +Infinity, a lone
surrogate escape) is malformed to DuckDB; a key repeated in one JSON row keeps its first value in
DuckDB's maps (Spark's map keeps both); a non-integer JSON number in a text field is Java's
``1.0E-4`` in Spark, ``0.0001`` in DuckDB; Spark casts hexadecimal floats (``0x1p3``) and dates a
bare time of day today, DuckDB reads neither; ``upper`` maps ``ß`` to ``SS`` in Java only.
"""
from __future__ import annotations

import pyarrow as pa

from data_prep import duck
from data_prep.quality import apply_expectations, checked_rows, load_expectations, mark_duplicates

CSV_ROW_EXTRA = "_unparsed string, _corrupt string"
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}


def _check(df, table: str):
    return checked_rows(apply_expectations(df, load_expectations(table)), table)


def _bronze_cols():
    return ["_record_id", "_source", "_source_file", "_line", "_batch_id", "raw"]


BRONZE_SQL = ", ".join(_bronze_cols())


def _json_objects(con, bronze: pa.Table) -> str:
    """A view of the bronze rows plus ``is_object`` and, for rows Spark's from_json reads as an
    object, its ``keys`` and JSON ``vals`` in document order (null for the rest)."""
    rows = duck.register(con, bronze, "bronze")
    return duck.view(con, f"""
        WITH objects AS (SELECT {BRONZE_SQL}, spark_json_object(raw) AS is_object FROM {rows})
        SELECT *, CASE WHEN is_object THEN json_keys(raw) END AS keys,
                  CASE WHEN is_object THEN json_extract(raw, '$.*') END AS vals
        FROM objects""", "json_objects")


# The journal line's grammar, one definition for both engines. Java and RE2 read these alike on
# one line; they differ only on line terminators and vertical tabs, which ingestion splits lines at.
ALARM_TS = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)"
ALARM_STRUCTURED = r"\|\s*PRI="
ALARM_MESSAGE = r"\|([^|]*)$"
ALARM_NOTE_LEAD = r"^\s*\|?"


def alarm_field(name: str) -> str:
    """The pattern whose group 1 is the value of ``| NAME=value`` in a structured journal line."""
    return rf"\|\s*{name}=([^|]*?)\s*(\||$)"


def refine_alarms(bronze, historian_xref):
    """Journal lines to alarms; structured lines are split into fields, free-text lines become NOTEs."""
    from pyspark.sql import functions as F

    field = lambda name: F.regexp_extract("raw", alarm_field(name), 1)  # noqa: E731
    structured = F.col("raw").rlike(ALARM_STRUCTURED)
    message = F.trim(F.regexp_extract("raw", ALARM_MESSAGE, 1))
    note_text = F.trim(F.regexp_replace(F.regexp_replace("raw", ALARM_TS, ""), ALARM_NOTE_LEAD, ""))
    xref = historian_xref.select(F.col("source_id").alias("source_tag"), "asset_id")
    df = bronze.select(
        *_bronze_cols(),
        F.to_timestamp(F.regexp_extract("raw", ALARM_TS, 1)).alias("ts"),
        F.when(structured, F.upper(field("PRI"))).otherwise(F.lit("LOW")).alias("priority"),
        F.when(structured, F.upper(field("CLASS"))).otherwise(F.lit("NOTE")).alias("alarm_class"),
        F.when(structured, F.nullif(field("TAG"), F.lit(""))).alias("source_tag"),
        F.when(structured, F.upper(field("STATE"))).otherwise(F.lit("NOTE")).alias("state"),
        F.when(structured, message).otherwise(note_text).alias("message"),
    ).join(F.broadcast(xref), on="source_tag", how="left")
    return _check(df, "alarms")


def refine_alarms_duckdb(con, bronze: pa.Table, historian_xref: pa.Table) -> pa.Table:
    """``refine_alarms`` on DuckDB: journal lines split into alarm fields or kept as NOTEs, the
    historian tag resolved to its golden asset; checked rows as Arrow."""
    duck.define_spark_macros(con)
    lines, xref = duck.register(con, bronze, "bronze_alarms"), duck.register(con, historian_xref, "historian_xref")
    field = lambda name: f"regexp_extract(raw, '{alarm_field(name)}', 1)"  # noqa: E731
    alarms = duck.view(con, f"""
        WITH
        -- A structured line carries | PRI= | CLASS= | TAG= | STATE= | message; any other line is an
        -- operator's note. A line that does not start with a timestamp gets none (quarantined).
        lines AS (
            SELECT {BRONZE_SQL},
                   spark_timestamp(regexp_extract(raw, '{ALARM_TS}', 1)) AS ts,
                   regexp_matches(raw, '{ALARM_STRUCTURED}') AS structured
            FROM {lines}
        ),
        alarms AS (
            SELECT {BRONZE_SQL}, ts,
                   CASE WHEN structured THEN upper({field("PRI")}) ELSE 'LOW' END AS priority,
                   CASE WHEN structured THEN upper({field("CLASS")}) ELSE 'NOTE' END AS alarm_class,
                   CASE WHEN structured THEN nullif({field("TAG")}, '') END AS source_tag,
                   CASE WHEN structured THEN upper({field("STATE")}) ELSE 'NOTE' END AS state,
                   CASE WHEN structured THEN spark_trim(regexp_extract(raw, '{ALARM_MESSAGE}', 1))
                        ELSE spark_trim(regexp_replace(regexp_replace(raw, '{ALARM_TS}', ''), '{ALARM_NOTE_LEAD}', ''))
                        END AS message
            FROM lines
        )
        -- The historian tag names the asset; notes and unknown tags keep a null asset_id.
        SELECT a.*, x.asset_id FROM alarms a LEFT JOIN {xref} x ON x.source_id = a.source_tag""", "alarms")
    return duck.checked_rows(con, duck.apply_expectations(con, alarms, load_expectations("alarms")), "alarms")


def refine_work_orders(bronze, asset_xref, existing=None):
    """CMMS work-order rows, EquipNo resolved to the golden asset id."""
    from pyspark.sql import functions as F

    row = F.from_json(
        "raw", "WONumber string, EquipNo string, WOType string, FailureCode string, Priority string, "
        f"ReportedAt string, CompletedAt string, Description string, {CSV_ROW_EXTRA}", PERMISSIVE,
    )
    xref = asset_xref.where(F.col("source_system") == "cmms").select(
        F.col("source_id").alias("source_equipment_id"), "asset_id"
    )
    df = (
        bronze.select(*_bronze_cols(), row.alias("r"))
        .select(
            *_bronze_cols(),
            (F.col("r").isNull() | F.col("r._corrupt").isNotNull() | F.col("r._unparsed").isNotNull()).alias("malformed"),
            F.trim("r.WONumber").alias("wo_id"),
            F.trim("r.EquipNo").alias("source_equipment_id"),
            F.upper(F.trim("r.WOType")).alias("wo_type"),
            F.nullif(F.trim("r.FailureCode"), F.lit("")).alias("failure_code"),
            F.col("r.Priority").alias("priority"),
            F.col("r.ReportedAt").alias("reported_text"),
            F.col("r.CompletedAt").alias("completed_text"),
            F.to_timestamp("r.ReportedAt", "yyyy-MM-dd HH:mm").alias("reported_at"),
            F.to_timestamp(F.nullif("r.CompletedAt", F.lit("")), "yyyy-MM-dd HH:mm").alias("completed_at"),
            F.col("r.Description").alias("description"),
        )
        .join(F.broadcast(xref), on="source_equipment_id", how="left")
    )
    return _check(mark_duplicates(df, ["wo_id"], existing), "work_orders")


def refine_work_orders_duckdb(con, bronze: pa.Table, asset_xref: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_work_orders`` on DuckDB: CMMS CSV rows typed, EquipNo resolved to the golden asset
    id, repeated work-order numbers marked; checked rows as Arrow."""
    duck.define_spark_macros(con)
    objects, xref = _json_objects(con, bronze), duck.register(con, asset_xref, "asset_xref")
    work_orders = duck.view(con, f"""
        WITH
        -- from_json(raw, <CSV row>, PERMISSIVE): the fields as text; all null unless an object.
        csv_row AS (
            SELECT {BRONZE_SQL}, is_object,
                   spark_field(keys, vals, '_unparsed') AS unparsed,
                   spark_field(keys, vals, 'WONumber') AS wo_number,
                   spark_field(keys, vals, 'EquipNo') AS equip_no,
                   spark_field(keys, vals, 'WOType') AS wo_type,
                   spark_field(keys, vals, 'FailureCode') AS failure_code,
                   spark_field(keys, vals, 'Priority') AS priority,
                   spark_field(keys, vals, 'ReportedAt') AS reported_at,
                   spark_field(keys, vals, 'CompletedAt') AS completed_at,
                   spark_field(keys, vals, 'Description') AS description
            FROM {objects}
        ),
        -- A ragged CSV line reaches bronze as {{"_unparsed": line, "_header": [...]}}.
        work_orders AS (
            SELECT {BRONZE_SQL},
                   NOT is_object OR unparsed IS NOT NULL AS malformed,
                   spark_trim(wo_number) AS wo_id,
                   spark_trim(equip_no) AS source_equipment_id,
                   upper(spark_trim(wo_type)) AS wo_type,
                   nullif(spark_trim(failure_code), '') AS failure_code,
                   priority,
                   reported_at AS reported_text,
                   completed_at AS completed_text,
                   {duck.spark_to_timestamp("reported_at", "yyyy-MM-dd HH:mm")} AS reported_at,
                   {duck.spark_to_timestamp("nullif(completed_at, '')", "yyyy-MM-dd HH:mm")} AS completed_at,
                   description
            FROM csv_row
        )
        -- EquipNo is a CMMS id: only the CMMS rows of the crosswalk may resolve it.
        SELECT w.*, x.asset_id
        FROM work_orders w
        LEFT JOIN (SELECT source_id, asset_id FROM {xref} WHERE source_system = 'cmms') x
               ON x.source_id = w.source_equipment_id""", "work_orders")
    marked = duck.mark_duplicates(con, work_orders, ["wo_id"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("work_orders")), "work_orders")


PRODUCTION_FIXED = ("unit_id", "ts", "throughput_m3h", "yield_pct")


def refine_production(bronze, units, existing=None):
    """MES hourly rows: fixed columns typed, unit-type variables into settings/feed/quality maps.

    Columns starting ``feed_`` are feed properties, ``quality_`` product quality (prefix dropped),
    every other non-fixed column is an operating setting.
    """
    from pyspark.sql import functions as F

    m = F.from_json("raw", "map<string,string>")
    df = bronze.select(*_bronze_cols(), m.alias("m")).select(
        *_bronze_cols(),
        "m",
        (F.col("m").isNull() | F.col("m").getItem("_unparsed").isNotNull()).alias("malformed"),
        F.trim(F.col("m").getItem("unit_id")).alias("unit_id"),
        F.col("m").getItem("ts").alias("ts_text"),
        F.to_timestamp(F.col("m").getItem("ts")).alias("ts"),
        F.expr(
            "transform_values(map_filter(m, (k, v) -> NOT k IN ('unit_id', 'ts', '_unparsed', '_header')), "
            "(k, v) -> try_cast(trim(v) AS double))"
        ).alias("nums"),
    )
    # The first value column whose text is present but is not a finite number names the fault.
    bad_numeric = F.expr(
        "element_at(filter(map_keys(nums), k -> trim(m[k]) <> '' AND "
        "(nums[k] IS NULL OR isnan(nums[k]) OR abs(nums[k]) = double('inf'))), 1)"
    )
    known = units.select(F.col("unit_id").alias("known_unit")).distinct()
    df = (
        df.withColumn("bad_numeric", bad_numeric)
        # Columns of other unit types are empty in a unit's row: keep only the values it has.
        .withColumn("nums", F.expr("map_filter(nums, (k, v) -> v IS NOT NULL)"))
        .withColumn("throughput_m3h", F.col("nums").getItem("throughput_m3h"))
        .withColumn("yield_pct", F.col("nums").getItem("yield_pct"))
        .withColumn("settings", F.expr(
            "map_filter(nums, (k, v) -> NOT (startswith(k, 'feed_') OR startswith(k, 'quality_') OR k IN ('throughput_m3h', 'yield_pct')))"))
        .withColumn("feed", F.expr("map_filter(nums, (k, v) -> startswith(k, 'feed_'))"))
        .withColumn("quality", F.expr("transform_keys(map_filter(nums, (k, v) -> startswith(k, 'quality_')), (k, v) -> substr(k, 9))"))
        .join(F.broadcast(known), F.col("unit_id") == F.col("known_unit"), "left")
        .withColumn("unit_known", F.col("known_unit").isNotNull())
    )
    return _check(mark_duplicates(df, ["unit_id", "ts"], existing), "production")


def refine_production_duckdb(con, bronze: pa.Table, units: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_production`` on DuckDB: MES rows with the fixed columns typed and each unit's own
    non-null values in the settings, feed and quality maps; checked rows as Arrow."""
    duck.define_spark_macros(con)
    objects, known = _json_objects(con, bronze), duck.register(con, units, "units")
    fixed = ", ".join(f"'{c}'" for c in ("unit_id", "ts", "_unparsed", "_header"))
    production = duck.view(con, f"""
        WITH
        -- from_json(raw, 'map<string,string>') as (k, v) pairs in CSV column order, null unless an
        -- object. A DuckDB MAP cannot repeat a key: keep the first, the one Spark's m[k] returns.
        entries AS (
            SELECT {BRONZE_SQL},
                   list_filter(list_transform(keys, lambda k, i: {{'k': k, 'v': spark_json_text(vals[i])}}),
                               lambda e, i: list_position(keys, e.k) = i) AS m
            FROM {objects}
        ),
        -- Every column but unit_id and ts is a process value: read as a number, null if it is none.
        fields AS (
            SELECT {BRONZE_SQL},
                   m IS NULL OR spark_get(m, '_unparsed') IS NOT NULL AS malformed,
                   spark_trim(spark_get(m, 'unit_id')) AS unit_id,
                   spark_get(m, 'ts') AS ts_text,
                   spark_timestamp(spark_get(m, 'ts')) AS ts,
                   list_transform(list_filter(m, lambda e: e.k NOT IN ({fixed})),
                                  lambda e: {{'k': e.k, 'v': e.v, 'num': spark_double(spark_trim(e.v))}}) AS nums
            FROM entries
        ),
        -- The first value column whose text is present but is not a finite number names the fault.
        -- Columns of other unit types are empty in a unit's row: keep only the values it has.
        valued AS (
            SELECT * EXCLUDE (nums),
                   list_filter(nums, lambda e: spark_trim(e.v) <> ''
                                               AND (e.num IS NULL OR isnan(e.num) OR isinf(e.num)))[1].k AS bad_numeric,
                   list_filter(nums, lambda e: e.num IS NOT NULL) AS nums
            FROM fields
        ),
        -- feed_ columns are feed properties, quality_ columns product quality (prefix dropped),
        -- every other value column an operating setting.
        production AS (
            SELECT * EXCLUDE (nums),
                   list_filter(nums, lambda e: e.k = 'throughput_m3h')[1].num AS throughput_m3h,
                   list_filter(nums, lambda e: e.k = 'yield_pct')[1].num AS yield_pct,
                   map_from_entries(list_transform(
                       list_filter(nums, lambda e: NOT (starts_with(e.k, 'feed_') OR starts_with(e.k, 'quality_')
                                                        OR e.k IN ('throughput_m3h', 'yield_pct'))),
                       lambda e: {{'key': e.k, 'value': e.num}})) AS settings,
                   map_from_entries(list_transform(list_filter(nums, lambda e: starts_with(e.k, 'feed_')),
                                                   lambda e: {{'key': e.k, 'value': e.num}})) AS feed,
                   map_from_entries(list_transform(list_filter(nums, lambda e: starts_with(e.k, 'quality_')),
                                                   lambda e: {{'key': substr(e.k, 9), 'value': e.num}})) AS quality
            FROM valued
        )
        SELECT p.*, EXISTS (SELECT 1 FROM {known} u WHERE u.unit_id = p.unit_id) AS unit_known
        FROM production p""", "production")
    marked = duck.mark_duplicates(con, production, ["unit_id", "ts"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("production")), "production")


def refine_orders(bronze, customer_xref, existing=None):
    """CRM orders with AccountId resolved to the golden customer id and the amount computed."""
    from pyspark.sql import functions as F

    row = F.from_json(
        "raw", "OrderId string, AccountId string, Product string, QuantityBbl string, UnitPriceUsd string, "
        "OrderDate string, _corrupt string", PERMISSIVE,
    )
    xref = customer_xref.select(F.col("source_id").alias("source_account_id"), "customer_id")
    num = lambda c: F.expr(f"try_cast(trim(r.{c}) AS double)")  # noqa: E731
    df = (
        bronze.select(*_bronze_cols(), row.alias("r"))
        .select(
            *_bronze_cols(),
            (F.col("r").isNull() | F.col("r._corrupt").isNotNull()).alias("malformed"),
            F.trim("r.OrderId").alias("order_id"),
            F.trim("r.AccountId").alias("source_account_id"),
            F.trim("r.Product").alias("product"),
            num("QuantityBbl").alias("quantity_bbl"),
            num("UnitPriceUsd").alias("unit_price_usd"),
            F.col("r.OrderDate").alias("date_text"),
            F.to_date(F.substring("r.OrderDate", 1, 10), "yyyy-MM-dd").alias("order_date"),
        )
        .join(F.broadcast(xref), on="source_account_id", how="left")
        .withColumn("amount_usd", F.col("quantity_bbl") * F.col("unit_price_usd"))
    )
    return _check(mark_duplicates(df, ["order_id"], existing), "orders")


def refine_orders_duckdb(con, bronze: pa.Table, customer_xref: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_orders`` on DuckDB: CRM orders typed, AccountId resolved to the golden customer id,
    the amount computed, repeated order ids marked; checked rows as Arrow."""
    duck.define_spark_macros(con)
    objects, xref = _json_objects(con, bronze), duck.register(con, customer_xref, "customer_xref")
    orders = duck.view(con, f"""
        WITH
        -- from_json(raw, <order>, PERMISSIVE): the fields as text; all null unless an object.
        record AS (
            SELECT {BRONZE_SQL}, is_object,
                   spark_field(keys, vals, 'OrderId') AS order_id,
                   spark_field(keys, vals, 'AccountId') AS account_id,
                   spark_field(keys, vals, 'Product') AS product,
                   spark_field(keys, vals, 'QuantityBbl') AS quantity,
                   spark_field(keys, vals, 'UnitPriceUsd') AS unit_price,
                   spark_field(keys, vals, 'OrderDate') AS order_date
            FROM {objects}
        ),
        -- OrderDate may carry a time of day: its first ten characters are the date.
        orders AS (
            SELECT {BRONZE_SQL},
                   NOT is_object AS malformed,
                   spark_trim(order_id) AS order_id,
                   spark_trim(account_id) AS source_account_id,
                   spark_trim(product) AS product,
                   spark_double(spark_trim(quantity)) AS quantity_bbl,
                   spark_double(spark_trim(unit_price)) AS unit_price_usd,
                   order_date AS date_text,
                   {duck.spark_to_date("substr(order_date, 1, 10)", "yyyy-MM-dd")} AS order_date
            FROM record
        )
        SELECT o.*, x.customer_id, o.quantity_bbl * o.unit_price_usd AS amount_usd
        FROM orders o LEFT JOIN {xref} x ON x.source_id = o.source_account_id""", "orders")
    marked = duck.mark_duplicates(con, orders, ["order_id"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("orders")), "orders")
