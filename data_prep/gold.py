"""Silver to gold: KPI tables for operations (asset health, production) and sales.

The pure ``build_*`` functions take silver DataFrames and return gold DataFrames; each has a
DuckDB twin beside it (``build_*_duckdb``) that takes and returns Arrow tables with the same rows.
``refresh_gold`` is the shell, for either engine: hourly asset health is recomputed only for the
days new telemetry touched (an overwrite of those ``event_date`` partitions); the small daily,
production and sales tables are recomputed whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from data_prep import duck, schemas
from data_prep.lake import Lake

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection
    from pyspark.sql import SparkSession

# Silver and gold columns the builders use, for the tables whose other columns are wide (raw ids,
# maps): the DuckDB shell reads only these from Parquet. Spark prunes columns itself.
TELEMETRY_INPUT = ["asset_id", "tag", "measurement", "unit", "ts", "value", "event_date"]
PRODUCTION_INPUT = ["unit_id", "ts", "throughput_m3h", "yield_pct"]
HOURLY_INPUT = ["asset_id", "event_date", "n", "pct_out_of_normal"]


def _duckdb_gold(con: DuckDBPyConnection, table: str, sql: str, **inputs: pa.Table) -> pa.Table:
    """Run ``sql`` with each ``{name}`` bound to the Arrow input of that name; the rows as gold ``table``.

    The result is cast to the declared gold schema, so both engines hand the lake the same types.
    """
    views = {name: duck.register(con, data, name) for name, data in inputs.items()}
    try:
        return schemas.conform(duck.to_arrow(con.sql(sql.format(**views))), "gold", table)
    finally:
        for view in views.values():
            con.unregister(view)


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


def build_asset_health_hourly_duckdb(con: DuckDBPyConnection, telemetry: pa.Table, tags: pa.Table, assets: pa.Table) -> pa.Table:
    """``build_asset_health_hourly`` on DuckDB: per asset, tag and UTC hour, the readings' statistics.

    As in Spark, the standard deviation of an hour with one reading is null, and a reading of a
    tag without normal limits counts as inside them.
    """
    return _duckdb_gold(con, "asset_health_hourly", """
        SELECT t.asset_id, a.unit_id, t.tag, t.measurement, t.unit,
               date_trunc('hour', t.ts) AS hour, t.event_date,
               count(*) AS n,
               avg(t.value) AS mean,
               min(t.value) AS min,
               max(t.value) AS max,
               stddev_samp(t.value) AS std,
               avg(CAST(coalesce(t.value < g.normal_min OR t.value > g.normal_max, false) AS DOUBLE)) AS pct_out_of_normal
        FROM {telemetry} t
        LEFT JOIN {tags} g ON g.asset_id = t.asset_id AND g.tag = t.tag
        LEFT JOIN {assets} a ON a.asset_id = t.asset_id
        GROUP BY ALL
    """, telemetry=telemetry, tags=tags, assets=assets)


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


def build_asset_health_daily_duckdb(con: DuckDBPyConnection, hourly: pa.Table, alarms: pa.Table, work_orders: pa.Table,
                                    assets: pa.Table) -> pa.Table:
    """``build_asset_health_daily`` on DuckDB: per asset and UTC day, readings, alarms and orders.

    An asset-day known from only one source gets zero counts from the others; its share outside
    normal stays null when it had no readings.
    """
    # Sums of BIGINT are HUGEINT in DuckDB: cast back to Spark's long.
    return _duckdb_gold(con, "asset_health_daily", """
        WITH readings AS (
            SELECT asset_id, event_date,
                   CAST(sum(n) AS BIGINT) AS n_readings,
                   sum(pct_out_of_normal * n) / sum(n) AS pct_out_of_normal
            FROM {hourly}
            GROUP BY asset_id, event_date
        ), alarm_days AS (
            SELECT asset_id, CAST(ts AS DATE) AS event_date,
                   count(*) AS alarm_count,
                   CAST(sum(CAST(priority = 'CRITICAL' AS BIGINT)) AS BIGINT) AS critical_alarm_count
            FROM {alarms}
            WHERE asset_id IS NOT NULL AND state = 'ACT'
            GROUP BY ALL
        ), wo_days AS (
            SELECT asset_id, CAST(reported_at AS DATE) AS event_date,
                   CAST(sum(CAST(wo_type = 'CM' AS BIGINT)) AS BIGINT) AS failures,
                   CAST(sum(CAST(wo_type = 'PM' AS BIGINT)) AS BIGINT) AS maintenance_orders
            FROM {work_orders}
            GROUP BY ALL
        ), asset_days AS (
            SELECT *
            FROM readings
            FULL JOIN alarm_days USING (asset_id, event_date)
            FULL JOIN wo_days USING (asset_id, event_date)
        )
        SELECT d.asset_id, a.unit_id, d.event_date,
               coalesce(d.n_readings, 0) AS n_readings,
               d.pct_out_of_normal,
               coalesce(d.alarm_count, 0) AS alarm_count,
               coalesce(d.critical_alarm_count, 0) AS critical_alarm_count,
               coalesce(d.failures, 0) AS failures,
               coalesce(d.maintenance_orders, 0) AS maintenance_orders
        FROM asset_days d
        LEFT JOIN {assets} a ON a.asset_id = d.asset_id
    """, hourly=hourly, alarms=alarms, work_orders=work_orders, assets=assets)


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


def build_production_kpis_duckdb(con: DuckDBPyConnection, production: pa.Table, assets: pa.Table) -> pa.Table:
    """``build_production_kpis`` on DuckDB: per process unit and UTC day, hours and throughput and yield.

    A unit whose assets disagree on its type takes the type of its first asset row, as Spark's
    ``dropDuplicates`` does on one partition; a unit without assets has a null type.
    """
    # Arrow scans have no row id: number the rows so "first" means the assets table's order.
    numbered = assets.select(["unit_id", "unit_type"]).append_column("_row", pa.array(range(assets.num_rows), pa.int64()))
    return _duckdb_gold(con, "production_kpis", """
        WITH unit_types AS (
            SELECT unit_id, unit_type
            FROM {assets}
            WHERE unit_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY unit_id ORDER BY _row) = 1
        ), unit_days AS (
            SELECT unit_id, CAST(ts AS DATE) AS event_date,
                   count(*) AS hours,
                   avg(throughput_m3h) AS throughput_m3h_mean,
                   avg(yield_pct) AS yield_pct_mean,
                   min(yield_pct) AS yield_pct_min,
                   max(yield_pct) AS yield_pct_max
            FROM {production}
            GROUP BY ALL
        )
        SELECT d.*, u.unit_type
        FROM unit_days d
        LEFT JOIN unit_types u ON u.unit_id = d.unit_id
    """, production=production, assets=numbered)


def build_sales_orders(orders, customers):
    """Orders by golden customer, product and month: count, volume and revenue."""
    from pyspark.sql import functions as F

    return (
        orders.groupBy("customer_id", "product", F.trunc("order_date", "month").alias("month"))
        .agg(F.count("*").alias("n_orders"), F.sum("quantity_bbl").alias("quantity_bbl"), F.sum("amount_usd").alias("revenue_usd"))
        .join(F.broadcast(customers.select("customer_id", F.col("name").alias("customer_name"))), "customer_id", "left")
        .select(*schemas.columns("gold", "sales_orders"))
    )


def build_sales_orders_duckdb(con: DuckDBPyConnection, orders: pa.Table, customers: pa.Table) -> pa.Table:
    """``build_sales_orders`` on DuckDB: orders by golden customer, product and month.

    Orders of a customer missing from the golden records keep their rows, with a null name.
    """
    # date_trunc of a DATE is a TIMESTAMP in DuckDB; Spark's trunc(month) stays a date.
    return _duckdb_gold(con, "sales_orders", """
        WITH monthly AS (
            SELECT customer_id, product, CAST(date_trunc('month', order_date) AS DATE) AS month,
                   count(*) AS n_orders,
                   sum(quantity_bbl) AS quantity_bbl,
                   sum(amount_usd) AS revenue_usd
            FROM {orders}
            GROUP BY ALL
        )
        SELECT m.*, c.name AS customer_name
        FROM monthly m
        LEFT JOIN {customers} c ON c.customer_id = m.customer_id
    """, orders=orders, customers=customers)


@dataclass(frozen=True)
class _Engine:
    """What ``refresh_gold`` needs from an engine: its frames, read and filtered, and its builders."""

    read: Callable[[str, str, list[str] | None], Any]  # a table, or no rows of its declared schema
    read_days: Callable[[str, str, list[str], list[date]], Any]  # its rows whose event_date is one of the days
    hourly: Callable[..., Any]
    daily: Callable[..., Any]
    production: Callable[..., Any]
    sales: Callable[..., Any]


def _spark_engine(lake: Lake) -> _Engine:
    from pyspark.sql import functions as F

    def read(layer: str, table: str, columns: list[str] | None = None):
        frame = lake.read_or_empty(layer, table)
        return frame.select(*columns) if columns else frame

    return _Engine(read, lambda layer, table, columns, days: read(layer, table, columns).where(F.col("event_date").isin(days)),
                   build_asset_health_hourly, build_asset_health_daily, build_production_kpis, build_sales_orders)


def _duckdb_engine(lake: Lake, con: DuckDBPyConnection) -> _Engine:
    def read_days(layer: str, table: str, columns: list[str], days: list[date]) -> pa.Table:
        if not lake.exists(layer, table):
            return lake.read_arrow_or_empty(layer, table, columns)
        # A filter on the partition column: only the touched days' files are read.
        return lake.read_arrow(layer, table, columns=columns, filter=pc.field("event_date").isin(pa.array(days, pa.date32())))

    return _Engine(lake.read_arrow_or_empty, read_days, partial(build_asset_health_hourly_duckdb, con), partial(build_asset_health_daily_duckdb, con),
                   partial(build_production_kpis_duckdb, con), partial(build_sales_orders_duckdb, con))


def refresh_gold(lake: Lake, spark: SparkSession | None, touched_days: set[date]) -> list[str]:
    """Recompute gold from silver; returns the gold tables written.

    ``spark`` picks the engine: a session builds gold with Spark from ``lake``'s Spark frames,
    ``None`` with DuckDB from Arrow tables; both write the same rows.
    """
    if spark is not None:
        return _refresh_gold(lake, _spark_engine(lake), touched_days)
    con = duck.connect()
    try:
        return _refresh_gold(lake, _duckdb_engine(lake, con), touched_days)
    finally:
        con.close()


def _refresh_gold(lake: Lake, engine: _Engine, touched_days: set[date]) -> list[str]:
    """The steps of ``refresh_gold`` on either engine: what is rebuilt, from which tables, written how."""
    assets = engine.read("silver", "assets")
    written = []
    if touched_days:
        days = sorted(touched_days)
        telemetry = engine.read_days("silver", "telemetry", TELEMETRY_INPUT, days)
        hourly = engine.hourly(telemetry, engine.read("silver", "tags"), assets)
        if lake.exists("gold", "asset_health_hourly"):
            listed = ", ".join(f"'{d.isoformat()}'" for d in days)
            lake.overwrite(hourly, "gold", "asset_health_hourly", predicate=f"event_date IN ({listed})")
        else:
            lake.overwrite(hourly, "gold", "asset_health_hourly")
        written.append("asset_health_hourly")
    if lake.exists("gold", "asset_health_hourly"):
        daily = engine.daily(engine.read("gold", "asset_health_hourly", HOURLY_INPUT), engine.read("silver", "alarms"),
                             engine.read("silver", "work_orders"), assets)
        lake.overwrite(daily, "gold", "asset_health_daily")
        written.append("asset_health_daily")
    lake.overwrite(engine.production(engine.read("silver", "production", PRODUCTION_INPUT), assets), "gold", "production_kpis")
    lake.overwrite(engine.sales(engine.read("silver", "orders"), engine.read("silver", "customers")), "gold", "sales_orders")
    return written + ["production_kpis", "sales_orders"]
