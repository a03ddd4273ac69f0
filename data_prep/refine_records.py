"""Bronze to silver for the record sources: alarm journal, work orders, production, sales orders.

Each ``refine_<table>`` is pure: new bronze rows and master data in, checked rows out (one per
input row, ``rule`` null for silver or naming the failed expectation for quarantine). Source ids are resolved to golden ids through the
master-data crosswalks here, so silver speaks only golden ids.
"""
from __future__ import annotations

from data_prep.quality import apply_expectations, checked_rows, load_expectations, mark_duplicates

CSV_ROW_EXTRA = "_unparsed string, _corrupt string"
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}


def _check(df, table: str):
    return checked_rows(apply_expectations(df, load_expectations(table)), table)


def _bronze_cols():
    return ["_record_id", "_source", "_source_file", "_line", "_batch_id", "raw"]


def refine_alarms(bronze, historian_xref):
    """Journal lines to alarms; structured lines are split into fields, free-text lines become NOTEs."""
    from pyspark.sql import functions as F

    ts_re = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)"
    field = lambda name: F.regexp_extract("raw", rf"\|\s*{name}=([^|]*?)\s*(\||$)", 1)  # noqa: E731
    structured = F.col("raw").rlike(r"\|\s*PRI=")
    message = F.trim(F.regexp_extract("raw", r"\|([^|]*)$", 1))
    note_text = F.trim(F.regexp_replace(F.regexp_replace("raw", ts_re, ""), r"^\s*\|?", ""))
    xref = historian_xref.select(F.col("source_id").alias("source_tag"), "asset_id")
    df = bronze.select(
        *_bronze_cols(),
        F.to_timestamp(F.regexp_extract("raw", ts_re, 1)).alias("ts"),
        F.when(structured, F.upper(field("PRI"))).otherwise(F.lit("LOW")).alias("priority"),
        F.when(structured, F.upper(field("CLASS"))).otherwise(F.lit("NOTE")).alias("alarm_class"),
        F.when(structured, F.nullif(field("TAG"), F.lit(""))).alias("source_tag"),
        F.when(structured, F.upper(field("STATE"))).otherwise(F.lit("NOTE")).alias("state"),
        F.when(structured, message).otherwise(note_text).alias("message"),
    ).join(F.broadcast(xref), on="source_tag", how="left")
    return _check(df, "alarms")


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
