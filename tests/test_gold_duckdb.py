"""Gold on DuckDB gives the rows Spark gives: each builder on hand-made silver, and the shell on a lake."""
from __future__ import annotations

import math
import shutil
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from data_prep import duck, gold, schemas
from data_prep.lake import Lake, spark_to_arrow

DAY1, DAY2 = date(2024, 3, 1), date(2024, 3, 2)
GOLD_TABLES = ["asset_health_hourly", "asset_health_daily", "production_kpis", "sales_orders"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def silver(table: str, rows: list[dict]) -> pa.Table:
    """Rows of a silver table; columns not given are null, or a placeholder where required."""
    schema = schemas.arrow_schema("silver", table)

    def filler(name: str, nullable: bool, i: int):
        if nullable:
            return None
        return {"_record_id": f"{table}#{i}", "_batch_id": 1}.get(name, "x")

    return pa.Table.from_pylist([{f.name: row.get(f.name, filler(f.name, f.nullable, i)) for f in schema}
                                 for i, row in enumerate(rows)], schema=schema)


def reading(asset_id: str, tag: str, ts: str, value: float, measurement: str = "temperature", unit: str = "degC") -> dict:
    at = utc(ts)
    return {"asset_id": asset_id, "tag": tag, "measurement": measurement, "ts": at, "value": value, "unit": unit,
            "event_date": at.date()}


def to_spark(spark, table: pa.Table):
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame(table.to_pandas(maps_as_pydicts="strict"), schema=from_arrow_schema(table.schema))


def _key(row: dict) -> tuple:
    return tuple((v is None, "" if v is None else v) for v in row.values() if not isinstance(v, float))


def assert_same_rows(expected: pa.Table, actual: pa.Table, table: str) -> list[dict]:
    """Equal schemas and rows (in any order, floats to 1e-9 relative); returns the rows, sorted."""
    assert actual.schema == expected.schema == schemas.arrow_schema("gold", table)
    want, got = sorted(expected.to_pylist(), key=_key), sorted(actual.to_pylist(), key=_key)
    assert len(got) == len(want), f"{table}: {len(got)} rows, Spark has {len(want)}"
    for w, g in zip(want, got):
        for col, value in w.items():
            if isinstance(value, float) and isinstance(g[col], float) and not math.isnan(value):
                assert g[col] == pytest.approx(value, rel=1e-9, abs=1e-12), (table, col, w, g)
            else:
                assert g[col] == value, (table, col, w, g)
    return got


def assert_same_as_spark(spark_frame, duck_table: pa.Table, table: str) -> list[dict]:
    return assert_same_rows(schemas.conform(spark_to_arrow(spark_frame), "gold", table), duck_table, table)


# ---------------------------------------------------------------------------- hand-made silver
ASSETS = silver("assets", [
    {"asset_id": "P-1", "unit_id": "CDU1", "unit_type": "CDU"},
    {"asset_id": "P-2", "unit_id": "CDU1", "unit_type": None},  # the unit's first row has the type
    {"asset_id": "V-7", "unit_id": "FCC1", "unit_type": None},  # ... and here it has not
    {"asset_id": "V-8", "unit_id": "FCC1", "unit_type": "FCC"},
    {"asset_id": "T-9", "unit_id": None, "unit_type": "TANK"},
])
TAGS = silver("tags", [
    {"asset_id": "P-1", "tag": "P-1.temp", "measurement": "temperature", "unit": "degC", "normal_min": 0.0, "normal_max": 100.0},
    {"asset_id": "P-1", "tag": "P-1.flow", "measurement": "flow", "unit": "m3/h", "normal_min": None, "normal_max": 50.0},
])
TELEMETRY = silver("telemetry", [
    reading("P-1", "P-1.temp", "2024-03-01T10:00:00", 20.0),
    reading("P-1", "P-1.temp", "2024-03-01T10:20:00", 25.5),
    reading("P-1", "P-1.temp", "2024-03-01T10:59:59.999999", 150.0),  # above normal
    reading("P-1", "P-1.temp", "2024-03-01T11:30:00", -3.0),  # an hour with one reading, below normal
    reading("P-1", "P-1.temp", "2024-03-01T23:59:59", 50.0),
    reading("P-1", "P-1.temp", "2024-03-02T00:00:00", 51.0),
    reading("P-1", "P-1.flow", "2024-03-01T10:05:00", 40.0, "flow", "m3/h"),  # no lower limit: inside
    reading("P-1", "P-1.flow", "2024-03-01T10:35:00", 60.0, "flow", "m3/h"),  # above the one limit
    reading("X-5", "X-5.temp", "2024-03-01T10:10:00", 1.0),  # no asset, no tag: unit null, never outside
    reading("X-5", "X-5.temp", "2024-03-01T10:40:00", 3.0),
    reading("V-7", "V-7.level", "2024-03-02T08:00:00", 0.5, "level", "pct"),
])
ALARMS = silver("alarms", [
    {"ts": utc("2024-03-01T10:15:00"), "asset_id": "P-1", "priority": "CRITICAL", "alarm_class": "PV", "state": "ACT"},
    {"ts": utc("2024-03-01T23:59:00"), "asset_id": "P-1", "priority": "HIGH", "alarm_class": "PV", "state": "ACT"},
    {"ts": utc("2024-03-01T23:59:30"), "asset_id": "P-1", "priority": "HIGH", "alarm_class": "PV", "state": "RTN"},
    {"ts": utc("2024-03-01T12:00:00"), "asset_id": None, "priority": "LOW", "alarm_class": "NOTE", "state": "ACT"},
    {"ts": utc("2024-03-03T01:00:00"), "asset_id": "V-8", "priority": "CRITICAL", "alarm_class": "PV", "state": "ACT"},
])
WORK_ORDERS = silver("work_orders", [
    {"wo_id": "WO-1", "asset_id": "P-1", "wo_type": "CM", "reported_at": utc("2024-03-01T14:00:00")},
    {"wo_id": "WO-2", "asset_id": "P-1", "wo_type": "PM", "reported_at": utc("2024-03-01T15:00:00")},
    {"wo_id": "WO-3", "asset_id": "V-8", "wo_type": "CM", "reported_at": utc("2024-03-03T02:00:00")},  # with an alarm, no readings
    {"wo_id": "WO-4", "asset_id": "T-9", "wo_type": "INSP", "reported_at": utc("2024-03-02T09:00:00")},  # neither CM nor PM
    {"wo_id": "WO-5", "asset_id": "GONE", "wo_type": "PM", "reported_at": utc("2024-03-02T09:00:00")},  # asset not in master data
])
PRODUCTION = silver("production", [
    {"unit_id": "CDU1", "ts": utc("2024-03-01T00:00:00"), "throughput_m3h": 100.0, "yield_pct": 90.0, "settings": [("t", 1.0)]},
    {"unit_id": "CDU1", "ts": utc("2024-03-01T01:00:00"), "throughput_m3h": None, "yield_pct": 92.5},
    {"unit_id": "CDU1", "ts": utc("2024-03-01T23:00:00"), "throughput_m3h": 110.0, "yield_pct": None},
    {"unit_id": "CDU1", "ts": utc("2024-03-02T00:00:00"), "throughput_m3h": 120.0, "yield_pct": 91.0},
    {"unit_id": "FCC1", "ts": utc("2024-03-01T05:00:00"), "throughput_m3h": None, "yield_pct": None},  # nothing measured
    {"unit_id": "HDS9", "ts": utc("2024-03-01T05:00:00"), "throughput_m3h": 10.0, "yield_pct": 80.0},  # no assets
])
ORDERS = silver("orders", [
    {"order_id": "O-1", "customer_id": "CUST-1", "source_account_id": "a", "product": "diesel", "quantity_bbl": 100.0,
     "unit_price_usd": 80.0, "amount_usd": 8000.0, "order_date": date(2024, 1, 31)},
    {"order_id": "O-2", "customer_id": "CUST-1", "source_account_id": "b", "product": "diesel", "quantity_bbl": 50.5,
     "unit_price_usd": 80.0, "amount_usd": 4040.0, "order_date": date(2024, 1, 1)},
    {"order_id": "O-3", "customer_id": "CUST-1", "source_account_id": "a", "product": "diesel", "quantity_bbl": 10.0,
     "unit_price_usd": 81.0, "amount_usd": 810.0, "order_date": date(2024, 2, 1)},
    {"order_id": "O-4", "customer_id": "CUST-1", "source_account_id": "a", "product": "jet", "quantity_bbl": 1.0,
     "unit_price_usd": 90.0, "amount_usd": 90.0, "order_date": date(2024, 1, 15)},
    {"order_id": "O-5", "customer_id": "CUST-404", "source_account_id": "z", "product": "jet", "quantity_bbl": 2.0,
     "unit_price_usd": 90.0, "amount_usd": 180.0, "order_date": date(2023, 12, 31)},  # customer not in master data
])
CUSTOMERS = silver("customers", [{"customer_id": "CUST-1", "name": "Acme Fuels", "source_ids": "crm:a,crm:b"}])


@pytest.fixture(scope="module")
def con():
    connection = duck.connect()
    yield connection
    connection.close()


def _by(rows: list[dict], **match) -> dict:
    [row] = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return row


# ---------------------------------------------------------------------------- builders
def test_hourly_asset_health_matches_spark(spark, con):
    built = gold.build_asset_health_hourly_duckdb(con, TELEMETRY, TAGS, ASSETS)
    on_spark = gold.build_asset_health_hourly(to_spark(spark, TELEMETRY), to_spark(spark, TAGS), to_spark(spark, ASSETS))
    rows = assert_same_as_spark(on_spark, built, "asset_health_hourly")
    ten = _by(rows, tag="P-1.temp", hour=utc("2024-03-01T10:00:00"))
    assert (ten["n"], ten["max"], ten["pct_out_of_normal"]) == (3, 150.0, pytest.approx(1 / 3))
    one = _by(rows, tag="P-1.temp", hour=utc("2024-03-01T11:00:00"))
    assert (one["n"], one["std"], one["pct_out_of_normal"]) == (1, None, 1.0)  # a sample of one has no deviation
    assert _by(rows, tag="P-1.flow")["pct_out_of_normal"] == 0.5
    assert _by(rows, tag="X-5.temp")["unit_id"] is None and _by(rows, tag="X-5.temp")["pct_out_of_normal"] == 0.0
    assert {r["event_date"] for r in rows if r["tag"] == "P-1.temp"} == {DAY1, DAY2}


def test_daily_asset_health_matches_spark(spark, con):
    hourly = gold.build_asset_health_hourly_duckdb(con, TELEMETRY, TAGS, ASSETS)
    built = gold.build_asset_health_daily_duckdb(con, hourly, ALARMS, WORK_ORDERS, ASSETS)
    on_spark = gold.build_asset_health_daily(*(to_spark(spark, t) for t in (hourly, ALARMS, WORK_ORDERS, ASSETS)))
    rows = assert_same_as_spark(on_spark, built, "asset_health_daily")
    p1 = _by(rows, asset_id="P-1", event_date=DAY1)
    counts = ("n_readings", "alarm_count", "critical_alarm_count", "failures", "maintenance_orders")
    assert [p1[c] for c in counts] == [7, 2, 1, 1, 1]
    assert p1["pct_out_of_normal"] == pytest.approx(3 / 7)
    no_alarms = _by(rows, asset_id="V-7", event_date=DAY2)
    assert (no_alarms["alarm_count"], no_alarms["failures"], no_alarms["unit_id"]) == (0, 0, "FCC1")
    no_readings = _by(rows, asset_id="V-8", event_date=date(2024, 3, 3))
    assert [no_readings[c] for c in counts] == [0, 1, 1, 1, 0] and no_readings["pct_out_of_normal"] is None
    assert _by(rows, asset_id="T-9")["failures"] == 0 and _by(rows, asset_id="GONE")["unit_id"] is None


def test_production_kpis_match_spark(spark, con):
    built = gold.build_production_kpis_duckdb(con, PRODUCTION, ASSETS)
    on_spark = gold.build_production_kpis(to_spark(spark, PRODUCTION), to_spark(spark, ASSETS))
    rows = assert_same_as_spark(on_spark, built, "production_kpis")
    cdu = _by(rows, unit_id="CDU1", event_date=DAY1)
    assert (cdu["unit_type"], cdu["hours"], cdu["throughput_m3h_mean"], cdu["yield_pct_mean"]) == ("CDU", 3, 105.0, 91.25)
    fcc = _by(rows, unit_id="FCC1")
    assert (fcc["unit_type"], fcc["hours"], fcc["throughput_m3h_mean"]) == (None, 1, None)
    assert _by(rows, unit_id="HDS9")["unit_type"] is None


def test_sales_orders_match_spark(spark, con):
    built = gold.build_sales_orders_duckdb(con, ORDERS, CUSTOMERS)
    on_spark = gold.build_sales_orders(to_spark(spark, ORDERS), to_spark(spark, CUSTOMERS))
    rows = assert_same_as_spark(on_spark, built, "sales_orders")
    january = _by(rows, product="diesel", month=date(2024, 1, 1))
    assert (january["n_orders"], january["quantity_bbl"], january["revenue_usd"]) == (2, 150.5, 12040.0)
    unknown = _by(rows, customer_id="CUST-404")
    assert (unknown["customer_name"], unknown["month"]) == (None, date(2023, 12, 1))


# ---------------------------------------------------------------------------- the shell
def _hourly_files(lake: Lake, day: date) -> set[str]:
    files = DeltaTable(lake.uri("gold", "asset_health_hourly")).file_uris()
    return {f for f in files if f"event_date={day.isoformat()}" in f}


def test_refresh_gold_is_the_same_on_both_engines_and_rewrites_only_touched_days(tmp_path, spark):
    # No alarms or customers yet: the shell must read them as empty tables of their schema.
    base = Lake(tmp_path / "base")
    for name, table in {"assets": ASSETS, "tags": TAGS, "telemetry": TELEMETRY, "work_orders": WORK_ORDERS,
                        "production": PRODUCTION, "orders": ORDERS}.items():
        base.overwrite(table, "silver", name)
    engines = {}
    for name, session in (("spark", spark), ("duckdb", None)):
        shutil.copytree(base.root, tmp_path / name)
        engines[name] = (Lake(tmp_path / name, spark=session), session)

    for lake, session in engines.values():
        assert gold.refresh_gold(lake, session, {DAY1, DAY2}) == ["asset_health_hourly", *GOLD_TABLES[1:]]
    (on_spark, _), (on_duckdb, _) = engines.values()
    for table in GOLD_TABLES:
        assert_same_rows(on_spark.read_arrow("gold", table), on_duckdb.read_arrow("gold", table), table)
    assert {r["customer_name"] for r in on_duckdb.read_arrow("gold", "sales_orders").to_pylist()} == {None}
    before = {name: (lake.read_arrow("gold", "asset_health_hourly"), _hourly_files(lake, DAY1))
              for name, (lake, _) in engines.items()}

    # New readings on day 2 only: day 1's hourly rows and files stay as they were.
    late = silver("telemetry", [reading("P-1", "P-1.temp", "2024-03-02T00:30:00", 140.0),
                                reading("P-1", "P-1.temp", "2024-03-02T09:00:00", 10.0)])
    for name, (lake, session) in engines.items():
        lake.append(late, "silver", "telemetry")
        gold.refresh_gold(lake, session, {DAY2})
        hourly = lake.read_arrow("gold", "asset_health_hourly")
        old, day1_files = before[name]
        on_day = lambda t, day: t.filter(pa.compute.field("event_date") == day)  # noqa: E731
        assert on_day(hourly, DAY1).sort_by("hour").equals(on_day(old, DAY1).sort_by("hour"))
        assert _hourly_files(lake, DAY1) == day1_files
        midnight = _by(on_day(hourly, DAY2).to_pylist(), tag="P-1.temp", hour=utc("2024-03-02T00:00:00"))
        assert (midnight["n"], midnight["pct_out_of_normal"]) == (2, 0.5)
    for table in GOLD_TABLES:
        assert_same_rows(on_spark.read_arrow("gold", table), on_duckdb.read_arrow("gold", table), table)
    daily = on_duckdb.read_arrow("gold", "asset_health_daily").to_pylist()
    assert _by(daily, asset_id="P-1", event_date=DAY2)["n_readings"] == 3


def test_refresh_gold_on_an_empty_silver_lake_writes_empty_tables_on_both_engines(tmp_path, spark):
    lakes = {"spark": (Lake(tmp_path / "spark", spark=spark), spark), "duckdb": (Lake(tmp_path / "duckdb"), None)}
    for lake, session in lakes.values():
        assert gold.refresh_gold(lake, session, {DAY1}) == ["asset_health_hourly", *GOLD_TABLES[1:]]
        for table in GOLD_TABLES:
            assert lake.read_arrow("gold", table).num_rows == 0
