"""Telemetry refinement on tiny bronze frames with real Spark: one named rule per fault kind."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from data_prep import schemas
from data_prep.lake import Lake
from data_prep.quality import split_checked
from data_prep.refine_telemetry import refine_telemetry

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _event(i: int, body, enq: datetime = T0) -> dict:
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    return {"_record_id": f"eventhub/telemetry/partition=0/x.jsonl#{i}", "_source": "eventhub",
            "_source_file": "eventhub/telemetry/partition=0/x.jsonl", "_line": i, "_batch_id": 1,
            "_ingested_at": T0, "eh_partition": 0, "eh_offset": i * 100, "eh_sequence_number": i,
            "eh_enqueued_time": enq, "eh_properties": "{}", "raw": raw}


def _hist(i: int, row: dict) -> dict:
    return {"_record_id": f"historian/2026-01-04.csv#{i}", "_source": "historian",
            "_source_file": "historian/2026-01-04.csv", "_line": i, "_batch_id": 1, "_ingested_at": T0,
            "eh_partition": None, "eh_offset": None, "eh_sequence_number": None, "eh_enqueued_time": None,
            "eh_properties": None, "raw": json.dumps(row)}


def _body(**over) -> dict:
    body = {"asset_id": "CDU1-P-101", "tag": "TI-2001", "ts": "2026-01-05T11:59:50Z", "value": 60.0, "unit": "degC"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


CASES = {  # record line -> (body, expected rule or None for silver)
    1: (_body(), None),
    2: (_body(ts="2026-01-05T11:58:00Z", value=140.0, unit="degF"), None),
    3: ('{"asset_id": "CDU1-P-101", "tag": "TI-20', "well_formed_record"),
    4: (_body(value=None), "required_fields_present"),
    5: (_body(ts="2026-01-05T11:57:00Z", value="12,5"), "value_is_number"),
    6: ('{"asset_id":"CDU1-P-101","tag":"TI-2001","ts":"2026-01-05T11:56:00Z","value":NaN,"unit":"degC"}', "value_is_finite"),
    7: (_body(ts="2026-01-05T11:55:00Z", value=-400.0), "physically_possible"),
    8: (_body(asset_id="XXX-P-999"), "known_asset"),
    9: (_body(ts="2026-01-05T11:54:00Z", unit="kg"), "unit_matches_measurement"),
    10: (_body(ts="2026-01-05T15:00:00Z"), "not_future_timestamp"),
    11: (_body(ts="2026-01-05T02:00:00Z"), "not_late"),
    12: (_body(), "not_duplicate"),  # same key as line 1, arrived later
    13: (_body(ts="2026-01-05T11:53:00Z", value=True), "value_is_number"),
}


@pytest.fixture
def master(spark):
    assets = spark.createDataFrame([("CDU1-P-101",)], "asset_id string")
    tags = spark.createDataFrame([("CDU1-P-101", "TI-2001", "temperature")], "asset_id string, tag string, measurement string")
    keys = spark.createDataFrame([("CDU1P101TI2001", "CDU1-P-101", "TI-2001")], "key string, asset_id string, tag string")
    return assets, tags, keys


def _bronze(spark, rows):
    lake_rows = pa.Table.from_pylist(rows, schema=schemas.BRONZE)
    return spark.createDataFrame(lake_rows.to_pandas(), schema="_record_id string, _source string, _source_file string, "
                                 "_line long, _batch_id long, _ingested_at timestamp, eh_partition int, eh_offset long, "
                                 "eh_sequence_number long, eh_enqueued_time timestamp, eh_properties string, raw string")


def test_every_fault_kind_is_caught_by_its_named_rule(spark, master):
    rows = [_event(i, body, T0 + timedelta(seconds=i)) for i, (body, _) in CASES.items()]
    rows.append(_hist(20, {"TagName": "CDU1.P101.TI2001", "TimeStamp": "01/04/2026 10:00:00", "Value": "61.5", "EngUnits": "degC", "Quality": "Good"}))
    rows.append(_hist(21, {"TagName": "CDU9.P999.TI2001", "TimeStamp": "01/04/2026 10:00:00", "Value": "61.5", "EngUnits": "degC", "Quality": "Good"}))
    rows.append(_hist(22, {"_unparsed": "a,b", "_header": ["TagName"]}))
    # Matched on uppercase alphanumerics, as mdm.historian_keys keys the tag master.
    rows.append(_hist(23, {"TagName": " cdu1_p101.ti-2001", "TimeStamp": "01/04/2026 10:01:00", "Value": "61.0", "EngUnits": "degC", "Quality": "Good"}))
    silver, quarantine = split_checked(refine_telemetry(_bronze(spark, rows), *master), "telemetry")
    got = {r["_line"]: r["rule"] for r in quarantine.collect()}
    expected = {line: rule for line, (_, rule) in CASES.items() if rule}
    expected.update({21: "known_asset", 22: "well_formed_record"})
    assert got == expected
    s = {int(r["_record_id"].split("#")[1]): r for r in silver.collect()}
    assert sorted(s) == [1, 2, 20, 23]
    assert s[2]["value"] == pytest.approx(60.0) and s[2]["source_unit"] == "degF" and s[2]["unit"] == "degC"
    assert s[20]["asset_id"] == "CDU1-P-101" and s[20]["source"] == "historian"
    assert (s[23]["asset_id"], s[23]["tag"]) == ("CDU1-P-101", "TI-2001")
    reasons = {r["rule"]: r["reason"] for r in quarantine.collect()}
    assert "-400" in reasons["physically_possible"] and "kg" in reasons["unit_matches_measurement"]


def test_reading_already_in_silver_is_a_duplicate(spark, master):
    silver_keys = spark.createDataFrame([("CDU1-P-101", "TI-2001", datetime(2026, 1, 5, 11, 59, 50))], "asset_id string, tag string, ts timestamp")
    silver, quarantine = split_checked(refine_telemetry(_bronze(spark, [_event(1, _body())]), *master, silver_keys=silver_keys), "telemetry")
    assert silver.count() == 0
    assert [r["rule"] for r in quarantine.collect()] == ["not_duplicate"]
