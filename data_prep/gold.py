"""Silver to gold: KPI tables for operations (asset health, production) and sales.

The pure ``build_*`` functions take silver DataFrames and return gold DataFrames. ``refresh_gold``
is the shell: hourly asset health is recomputed only for the days new telemetry touched (an
overwrite of those ``event_date`` partitions); the small daily, production and sales tables are
recomputed whole.
"""
from __future__ import annotations

from datetime import date

from data_prep import schemas
from data_prep.lake import Lake


def build_asset_health_hourly(telemetry, tags, assets):
    """Per asset, tag and hour: count, mean, min, max, std and share of readings outside normal."""
    from pyspark.sql import functions as F

    outside = (F.col("value") < F.col("normal_min")) | (F.col("value") > F.col("normal_max"))
    return (
        telemetry.join(F.broadcast(tags.select("asset_id", "tag", "normal_min", "normal_max")), ["asset_id", "tag"], "left")
        .join(F.broadcast(assets.select("asset_id", "unit_id")), "asset_id", "left")
        .groupBy("asset_id", "unit_id", "tag", "measurement", "unit", F.date_trunc("hour", "ts").alias("hour"), "event_date")
        .agg(
            F.count("*").alias("n"),
            F.mean("value").alias("mean"),
            F.min("value").alias("min"),
            F.max("value").alias("max"),
            F.stddev_samp("value").alias("std"),
            F.mean(F.coalesce(outside, F.lit(False)).cast("double")).alias("pct_out_of_normal"),
        )
        .select(*schemas.columns("gold", "asset_health_hourly"))
    )


def build_asset_health_daily(hourly, alarms, work_orders, assets):
    """Per asset and day: readings, share outside normal, alarms, failures and maintenance orders."""
    from pyspark.sql import functions as F

    readings = hourly.groupBy("asset_id", "event_date").agg(
        F.sum("n").alias("n_readings"),
        (F.sum(F.col("pct_out_of_normal") * F.col("n")) / F.sum("n")).alias("pct_out_of_normal"),
    )
    alarm_days = (
        alarms.where(F.col("asset_id").isNotNull() & (F.col("state") == "ACT"))
        .groupBy("asset_id", F.to_date("ts").alias("event_date"))
        .agg(F.count("*").alias("alarm_count"), F.sum((F.col("priority") == "CRITICAL").cast("long")).alias("critical_alarm_count"))
    )
    wo_days = work_orders.groupBy("asset_id", F.to_date("reported_at").alias("event_date")).agg(
        F.sum((F.col("wo_type") == "CM").cast("long")).alias("failures"),
        F.sum((F.col("wo_type") == "PM").cast("long")).alias("maintenance_orders"),
    )
    return (
        readings.join(alarm_days, ["asset_id", "event_date"], "full")
        .join(wo_days, ["asset_id", "event_date"], "full")
        .join(F.broadcast(assets.select("asset_id", "unit_id")), "asset_id", "left")
        .fillna(0, subset=["n_readings", "alarm_count", "critical_alarm_count", "failures", "maintenance_orders"])
        .select(*schemas.columns("gold", "asset_health_daily"))
    )


def build_production_kpis(production, assets):
    """Per process unit and day: hours recorded, mean throughput and yield, yield range."""
    from pyspark.sql import functions as F

    unit_types = assets.select("unit_id", "unit_type").where(F.col("unit_id").isNotNull()).dropDuplicates(["unit_id"])
    return (
        production.groupBy("unit_id", F.to_date("ts").alias("event_date"))
        .agg(
            F.count("*").alias("hours"),
            F.mean("throughput_m3h").alias("throughput_m3h_mean"),
            F.mean("yield_pct").alias("yield_pct_mean"),
            F.min("yield_pct").alias("yield_pct_min"),
            F.max("yield_pct").alias("yield_pct_max"),
        )
        .join(F.broadcast(unit_types), "unit_id", "left")
        .select(*schemas.columns("gold", "production_kpis"))
    )


def build_sales_orders(orders, customers):
    """Orders by golden customer, product and month: count, volume and revenue."""
    from pyspark.sql import functions as F

    return (
        orders.groupBy("customer_id", "product", F.trunc("order_date", "month").alias("month"))
        .agg(F.count("*").alias("n_orders"), F.sum("quantity_bbl").alias("quantity_bbl"), F.sum("amount_usd").alias("revenue_usd"))
        .join(F.broadcast(customers.select("customer_id", F.col("name").alias("customer_name"))), "customer_id", "left")
        .select(*schemas.columns("gold", "sales_orders"))
    )


def refresh_gold(lake: Lake, spark, touched_days: set[date]) -> list[str]:
    """Recompute gold from silver; returns the gold tables written."""
    from pyspark.sql import functions as F

    assets = lake.read_or_empty("silver", "assets")
    written = []
    if touched_days:
        days = sorted(touched_days)
        telemetry = lake.read_or_empty("silver", "telemetry").where(F.col("event_date").isin(days))
        hourly = build_asset_health_hourly(telemetry, lake.read_or_empty("silver", "tags"), assets)
        if lake.exists("gold", "asset_health_hourly"):
            listed = ", ".join(f"'{d.isoformat()}'" for d in days)
            lake.overwrite(hourly, "gold", "asset_health_hourly", predicate=f"event_date IN ({listed})")
        else:
            lake.overwrite(hourly, "gold", "asset_health_hourly")
        written.append("asset_health_hourly")
    if lake.exists("gold", "asset_health_hourly"):
        daily = build_asset_health_daily(
            lake.read("gold", "asset_health_hourly"), lake.read_or_empty("silver", "alarms"), lake.read_or_empty("silver", "work_orders"), assets
        )
        lake.overwrite(daily, "gold", "asset_health_daily")
        written.append("asset_health_daily")
    lake.overwrite(build_production_kpis(lake.read_or_empty("silver", "production"), assets), "gold", "production_kpis")
    lake.overwrite(build_sales_orders(lake.read_or_empty("silver", "orders"), lake.read_or_empty("silver", "customers")), "gold", "sales_orders")
    return written + ["production_kpis", "sales_orders"]
