"""Ingestion into bronze: raw records kept, envelope kept, idempotent by the file manifest."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from data_prep.event_log import EventData, LocalEventLog
from data_prep.ingest import ingest
from data_prep.lake import Lake

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _land_events(landing, n: int, start: int = 0) -> None:
    log = LocalEventLog(landing / "eventhub", "telemetry", partition_count=2)
    events = [EventData(json.dumps({"asset_id": f"A-{i % 3}", "value": i}), {"content-type": "application/json"}, f"A-{i % 3}")
              for i in range(start, start + n)]
    log.send_batch(events, [T0 + timedelta(seconds=i) for i in range(start, start + n)])


def test_ingest_keeps_raw_records_and_is_idempotent(tmp_path):
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    _land_events(landing, 5)
    (landing / "historian").mkdir()
    (landing / "historian" / "2026-01-04.csv").write_text(
        "TagName,TimeStamp,Value,EngUnits,Quality\nCDU1.P101.TI2001,01/04/2026 10:00:00,61.5,degC,Good\nragged,line\n"
    )
    (landing / "alarms").mkdir()
    (landing / "alarms" / "2026-01-04.log").write_text("2026-01-04 10:00:00.000 | PRI=HIGH | x\n\nnote without fields\n")
    (landing / "_manifest").mkdir()
    (landing / "_manifest" / "injected_faults.jsonl").write_text("{}\n")

    first = ingest(landing, lake)
    segments = LocalEventLog(landing / "eventhub", "telemetry").segments()
    assert first.batch_id == 1 and first.files == len(segments) + 2
    assert first.rows_by_table == {"telemetry": 7, "alarms": 2}
    bronze = lake.read_pandas("bronze", "telemetry").sort_values("_record_id")
    events = bronze[bronze._source == "eventhub"]
    assert sorted(json.loads(b)["value"] for b in events.raw) == [0, 1, 2, 3, 4]
    assert events.eh_enqueued_time.notna().all() and events.eh_sequence_number.notna().all()
    hist = bronze[bronze._source == "historian"].set_index("_line")
    assert json.loads(hist.loc[2, "raw"])["Value"] == "61.5"  # _line is the physical line: the header is 1
    assert "_unparsed" in json.loads(hist.loc[3, "raw"])  # kept, for refinement to quarantine

    again = ingest(landing, lake)
    assert again.files == 0 and lake.read_arrow("bronze", "telemetry").num_rows == 7

    _land_events(landing, 3, start=5)  # new segments only
    third = ingest(landing, lake)
    assert third.batch_id == 2 and third.rows_by_table == {"telemetry": 3}
    assert lake.read_arrow("bronze", "telemetry").num_rows == 10


def test_missing_landing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest(tmp_path / "nowhere", Lake(tmp_path / "lake"))


def test_a_run_that_died_before_its_manifest_is_recovered_not_doubled(tmp_path, monkeypatch):
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    _land_events(landing, 4)
    real_append = Lake.append

    def dies_on_manifest(self, df, layer, table, txn=None):
        if layer == "_meta":
            raise RuntimeError("power cut")
        return real_append(self, df, layer, table, txn=txn)

    monkeypatch.setattr(Lake, "append", dies_on_manifest)
    with pytest.raises(RuntimeError):
        ingest(landing, lake)
    monkeypatch.setattr(Lake, "append", real_append)
    assert lake.read_arrow("bronze", "telemetry").num_rows == 4  # bronze committed, manifest not

    _land_events(landing, 2, start=4)  # a new file arrives before the retry
    retry = ingest(landing, lake)
    assert retry.batch_id == 2 and retry.rows_by_table == {"telemetry": 2}
    assert lake.read_arrow("bronze", "telemetry").num_rows == 6  # nothing doubled, nothing lost
    assert ingest(landing, lake).files == 0


def _bronze_by_line(lake: Lake, source: str) -> dict[int, tuple]:
    rows = lake.read_arrow("bronze", "telemetry").to_pylist()
    payload = ("eh_partition", "eh_offset", "eh_sequence_number", "eh_enqueued_time", "eh_properties", "raw")
    return {r["_line"]: tuple(r[c] for c in payload) for r in rows if r["_source"] == source}


def test_bronze_values_are_exactly_the_landed_records(tmp_path):
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    partition = landing / "eventhub" / "telemetry" / "partition=0"
    partition.mkdir(parents=True)
    head = '{"partition":%d,"offset":"%d","sequence_number":%d,"enqueued_time":"%s","properties":'
    broken = '{"partition":0,"offset":"124","body":"{\\"val'
    impossible = head % (0, 93, 3, "2026-02-30T00:00:00Z") + '{},"body":"x"}'  # no Feb 30: the line is kept whole
    events = [
        head % (0, 0, 0, "2026-01-05T00:00:00.906Z") + '{"device_id":"A-1","content-type":"text"},"body":"{\\"v\\": 1.5}"}',
        head % (0, 31, 1, "2026-01-05T00:00:01Z") + '{},"body":"not json {"}',
        "",
        head % (1, 62, 2, "2026-01-05T01:00:02.5+01:00") + '{"b":2,"a":[1,"x"]},"body":{"z":1,"a":null}}',
        impossible,
        broken,
    ]
    undecodable = (head % (0, 155, 4, "2026-01-05T00:00:04.000001Z") + '{"k":"v"},"body":"caf').encode() + b'\xff"}\n'
    (partition / "00000000000000000000.jsonl").write_bytes(
        b"\xef\xbb\xbf" + "\n".join(events).encode() + b"\n" + undecodable)
    (landing / "historian").mkdir()
    (landing / "historian" / "2026-01-04.csv").write_bytes("\ufeff".encode() + "\n".join([
        "TagName,TimeStamp,Value,EngUnits,Quality",
        "T1,01/04/2026 10:00:00,61.5,degC,Good",
        "T2,01/04/2026 10:00:00,,  ,Good",
        'T3,01/04/2026 10:00:00,"173,2",m3/h,Good',
        "ragged,line",
        "",
        'T4,01/04/2026 10:05:00,"12,degC,Good',  # a quote never closed: only this line is ragged
        "T5,01/04/2026 10:05:00,7,degC,Good",
    ]).encode() + b"\n")

    ingest(landing, lake)

    utc = timezone.utc
    assert _bronze_by_line(lake, "eventhub") == {
        1: (0, 0, 0, datetime(2026, 1, 5, 0, 0, 0, 906000, utc), '{"content-type": "text", "device_id": "A-1"}',
            '{"v": 1.5}'),
        2: (0, 31, 1, datetime(2026, 1, 5, 0, 0, 1, tzinfo=utc), "{}", "not json {"),
        4: (1, 62, 2, datetime(2026, 1, 5, 0, 0, 2, 500000, utc), '{"a": [1, "x"], "b": 2}', '{"z": 1, "a": null}'),
        5: (None, None, None, None, None, impossible),
        6: (None, None, None, None, None, broken),
        7: (0, 155, 4, datetime(2026, 1, 5, 0, 0, 4, 1, utc), '{"k": "v"}', "caf\ufffd"),
    }
    header = '["TagName", "TimeStamp", "Value", "EngUnits", "Quality"]'
    csv_raw = {line: row[-1] for line, row in _bronze_by_line(lake, "historian").items()}
    assert csv_raw == {
        2: '{"TagName": "T1", "TimeStamp": "01/04/2026 10:00:00", "Value": "61.5", "EngUnits": "degC", "Quality": "Good"}',
        3: '{"TagName": "T2", "TimeStamp": "01/04/2026 10:00:00", "Value": null, "EngUnits": null, "Quality": "Good"}',
        4: '{"TagName": "T3", "TimeStamp": "01/04/2026 10:00:00", "Value": "173,2", "EngUnits": "m3/h", "Quality": "Good"}',
        5: '{"_unparsed": "ragged,line", "_header": ' + header + "}",
        7: '{"_unparsed": "T4,01/04/2026 10:05:00,\\"12,degC,Good", "_header": ' + header + "}",
        8: '{"TagName": "T5", "TimeStamp": "01/04/2026 10:05:00", "Value": "7", "EngUnits": "degC", "Quality": "Good"}',
    }
    record_ids = lake.read_arrow("bronze", "telemetry", columns=["_record_id"]).column(0).to_pylist()
    assert "eventhub/telemetry/partition=0/00000000000000000000.jsonl#7" in record_ids
    assert "historian/2026-01-04.csv#8" in record_ids
