"""Record-table refinement on tiny bronze frames with real Spark: parsing, golden ids, named rules."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from data_prep import schemas
from data_prep.lake import _arrow_to_spark_schema
from data_prep.quality import split_checked
from data_prep.refine_records import refine_alarms, refine_orders, refine_production, refine_work_orders

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def bronze(spark, source: str, raws: list):
    rows = [{"_record_id": f"{source}#{i}", "_source": source, "_source_file": source, "_line": i, "_batch_id": 1,
             "_ingested_at": T0, "raw": r if isinstance(r, str) else json.dumps(r)} for i, r in enumerate(raws, 1)]
    table = pa.Table.from_pylist(rows, schema=schemas.BRONZE)
    return spark.createDataFrame(table.to_pandas(), _arrow_to_spark_schema(schemas.BRONZE))


def outcome(checked, table):
    silver, quarantine = split_checked(checked, table)
    return silver.toPandas(), {r["_line"]: r["rule"] for r in quarantine.collect()}


def test_production_rows_become_typed_maps(spark):
    units = spark.createDataFrame([("CDU1",)], "unit_id string")
    good = {"unit_id": "CDU1", "ts": "2026-01-05T00:00:00Z", "throughput_m3h": "1000", "furnace_outlet_temp_c": "369.0",
            "riser_outlet_temp_c": None, "feed_api_gravity": "36.6", "yield_pct": "53.8", "quality_diesel_t95_c": "344.9"}
    raws = [good, {**good, "reflux_ratio": "2,5", "ts": "2026-01-05T01:00:00Z"}, {**good, "unit_id": "FCC9"},
            {**good, "ts": "yesterday"}, good, {**good, "ts": "2026-01-05T02:00:00Z", "yield_pct": "140"}]
    silver, rules = outcome(refine_production(bronze(spark, "mes", raws), units), "production")
    assert rules == {2: "values_are_numbers", 3: "known_unit", 4: "timestamp_parses", 5: "not_duplicate", 6: "yield_in_range"}
    row = silver.iloc[0]
    assert dict(row["settings"]) == {"furnace_outlet_temp_c": 369.0}  # empty columns of other unit types dropped
    assert dict(row["feed"]) == {"feed_api_gravity": 36.6} and dict(row["quality"]) == {"diesel_t95_c": 344.9}
    assert row["yield_pct"] == pytest.approx(53.8)


def test_work_orders_resolve_equipment_to_golden_assets(spark):
    xref = spark.createDataFrame([("cmms", "P101-CDU1", "CDU1-P-101", "normalised_id", 1.0)],
                                 "source_system string, source_id string, asset_id string, match_rule string, match_score double")
    wo = {"WONumber": "1", "EquipNo": "P101-CDU1", "WOType": "CM", "FailureCode": "BEARING", "Priority": "1",
          "ReportedAt": "2026-01-05 10:00", "CompletedAt": "2026-01-05 18:00", "Description": "bearing"}
    raws = [wo, {**wo, "WONumber": "2", "EquipNo": "X-9"}, {**wo, "WONumber": "3", "CompletedAt": "2026-01-04 10:00"},
            {**wo, "WONumber": "4", "WOType": "ZZ"}, {"_unparsed": "a,b"}, wo]
    silver, rules = outcome(refine_work_orders(bronze(spark, "cmms", raws), xref), "work_orders")
    assert rules == {2: "known_equipment", 3: "completed_after_reported", 4: "known_wo_type", 5: "well_formed_record", 6: "not_duplicate"}
    assert silver[["wo_id", "asset_id", "failure_code"]].values.tolist() == [["1", "CDU1-P-101", "BEARING"]]


def test_alarm_lines_and_free_text_notes(spark):
    hx = spark.createDataFrame([("CDU1.P101.TI1011", "CDU1-P-101")], "source_id string, asset_id string")
    raws = ["2026-01-05 00:05:13.123 | PRI=HIGH | CLASS=PROCESS | TAG=CDU1.P101.TI1011 | STATE=ACT | High temperature",
            "2026-01-05 01:00:00.000 operator: swapped filter on P-101",
            "garbage without a timestamp",
            "2026-01-05 00:05:13.123 | PRI=URGENT | CLASS=PROCESS | TAG=CDU1.P101.TI1011 | STATE=ACT | x"]
    silver, rules = outcome(refine_alarms(bronze(spark, "alarms", raws), hx), "alarms")
    assert rules == {3: "timestamp_parses", 4: "known_priority"}
    alarm, note = silver.sort_values("ts").to_dict("records")
    assert (alarm["asset_id"], alarm["priority"], alarm["state"], alarm["message"]) == ("CDU1-P-101", "HIGH", "ACT", "High temperature")
    assert note["alarm_class"] == "NOTE" and "swapped filter" in note["message"]


def test_orders_resolve_accounts_to_golden_customers(spark):
    xref = spark.createDataFrame([("crm", "001A", "CUST-001A", "golden_source", 1.0), ("crm", "001B", "CUST-001A", "normalised_name", 1.0)],
                                 "source_system string, source_id string, customer_id string, match_rule string, match_score double")
    order = {"OrderId": "1", "AccountId": "001B", "Product": "Diesel", "QuantityBbl": 1000, "UnitPriceUsd": 90.5, "OrderDate": "2026-01-04"}
    raws = [order, {**order, "OrderId": "2", "AccountId": "999"}, {**order, "OrderId": "3", "QuantityBbl": -5}, "{not json", order]
    silver, rules = outcome(refine_orders(bronze(spark, "crm", raws), xref), "orders")
    assert rules == {2: "known_customer", 3: "positive_amounts", 4: "well_formed_record", 5: "not_duplicate"}
    assert silver[["customer_id", "amount_usd"]].values.tolist() == [["CUST-001A", 90500.0]]
