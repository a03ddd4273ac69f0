"""Every file family of docs/landing_formats.md exists with the documented shape."""
from __future__ import annotations

import csv
import json
import re
from datetime import datetime

from landing_reader import parse_historian_time, parse_iso, read_events, read_faults, read_historian, read_plant

from data_prep.event_log import partition_for
from data_prep.simulator.production import mes_columns

FAMILIES = (
    "eventhub/telemetry/partition=*/*.jsonl", "historian/*.csv", "alarms/*.log", "iot/devices.json",
    "cmms/equipment.csv", "cmms/work_orders_*.csv", "mes/production_*.csv", "crm/accounts_*.json",
    "crm/orders_*.json", "_manifest/plant.json", "_manifest/injected_faults.jsonl",
)
ALARM_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| PRI=(LOW|MEDIUM|HIGH|CRITICAL) \| "
    r"CLASS=(PROCESS|EQUIPMENT|SAFETY|SYSTEM) \| TAG=[A-Z]+\d+\.[A-Z]\d+\.[A-Z]{2}\d+ \| STATE=(ACT|RTN|ACK) \| [^|]+$"
)
NOTE_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [^|]+$")


def _csv(path) -> list[dict]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_every_documented_family_is_written(tiny_landing):
    for pattern in FAMILIES:
        assert list(tiny_landing.glob(pattern)), pattern
    written = {p.relative_to(tiny_landing).parts[0] for p in tiny_landing.rglob("*") if p.is_file()}
    assert written == {"eventhub", "historian", "alarms", "iot", "cmms", "mes", "crm", "_manifest"}


def test_one_file_per_day_or_month(tiny_landing):
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert sorted(p.name for p in (tiny_landing / "historian").glob("*.csv")) == ["2026-01-01.csv"]
    assert sorted(p.name for p in (tiny_landing / "alarms").glob("*.log")) == [f"{d}.log" for d in days]
    assert sorted(p.name for p in (tiny_landing / "mes").glob("*.csv")) == [f"production_{d}.csv" for d in days]
    assert [p.name for p in (tiny_landing / "cmms").glob("work_orders_*.csv")] == ["work_orders_2026-01.csv"]


def test_event_envelopes_follow_the_event_log_and_the_partition_key(tiny_landing):
    events = read_events(tiny_landing)
    assert events
    per_partition: dict[int, int] = {}
    for ev in events:
        env = ev.envelope
        assert set(env) == {"partition", "offset", "sequence_number", "enqueued_time", "properties", "body"}
        assert env["properties"]["content-type"] == "application/json"
        device = env["properties"]["device_id"]
        assert env["partition"] == partition_for(device, 4)
        assert f"partition={env['partition']}/" in ev.file
        assert env["sequence_number"] == per_partition.get(env["partition"], 0)
        per_partition[env["partition"]] = env["sequence_number"] + 1
        assert isinstance(ev.body, str)
    # One send_batch per day of arrival: several segments per partition.
    segments = {ev.file for ev in events}
    assert len(segments) > len(per_partition)


def test_good_event_bodies_carry_the_documented_fields(tiny_landing):
    bad = {(f["file"], f["line"]) for f in read_faults(tiny_landing)}
    plant = read_plant(tiny_landing)
    tags = {(a["asset_id"], t["tag"]): t for a in plant["assets"] for t in a["tags"]}
    good = [ev for ev in read_events(tiny_landing) if (ev.file, ev.line) not in bad]
    assert good
    units_seen = set()
    for ev in good:
        body = json.loads(ev.body)
        assert set(body) - {"quality"} == {"asset_id", "tag", "ts", "value", "unit"}
        assert body.get("quality", "good") == "good"
        assert isinstance(body["value"], (int, float)) and not isinstance(body["value"], bool)
        assert (body["asset_id"], body["tag"]) in tags
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["ts"])
        assert ev.envelope["properties"]["device_id"] == body["asset_id"]
        units_seen.add(body["unit"])
    # Some devices legitimately report alternative (convertible) units.
    assert units_seen - {"degC", "barg", "m3/h", "mm/s", "A", "rpm"}


def test_historian_uses_its_own_spellings(tiny_landing):
    plant = read_plant(tiny_landing)
    spelled = {}
    for a in plant["assets"]:
        for t in a["tags"]:
            unit_id, letter, number = a["asset_id"].split("-")
            spelled[f"{unit_id}.{letter}{number}.{t['tag'].replace('-', '')}"] = (a["asset_id"], t["tag"])
    lines = (tiny_landing / "historian" / "2026-01-01.csv").read_text().splitlines()
    assert lines[0] == "TagName,TimeStamp,Value,EngUnits,Quality"
    bad = {(f["file"], f["line"]) for f in read_faults(tiny_landing)}
    good = [r for r in read_historian(tiny_landing) if (r.file, r.line) not in bad]
    assert good
    for rec in good:
        tag_name, stamp, value, unit, quality = rec.fields
        assert tag_name in spelled
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", stamp)
        assert parse_historian_time(stamp).date().isoformat() == "2026-01-01"
        float(value)
        assert quality in ("Good", "Bad", "Uncertain")


def test_alarm_journal_lines_are_structured_or_notes(tiny_landing):
    structured = notes = 0
    for path in sorted((tiny_landing / "alarms").glob("*.log")):
        stamps = []
        for line in path.read_text().splitlines():
            if ALARM_LINE.match(line):
                structured += 1
            else:
                assert NOTE_LINE.match(line), line
                notes += 1
            stamps.append(line[:23])
            assert line.startswith(path.stem)
        assert stamps == sorted(stamps)
    assert structured and notes


def test_device_registry_lists_assets_with_tags(tiny_landing):
    devices = json.loads((tiny_landing / "iot" / "devices.json").read_text())
    assert len(devices) == 4
    for d in devices:
        assert set(d) == {"asset_id", "asset_name", "asset_type", "unit_id", "unit_type", "site_id", "manufacturer", "tags"}
        assert re.fullmatch(r"[A-Z]+\d+-[A-Z]-\d{3}", d["asset_id"])
        for t in d["tags"]:
            assert set(t) == {"tag", "measurement", "unit", "normal_min", "normal_max"}
            assert t["normal_min"] < t["normal_max"]


def test_cmms_spells_equipment_its_own_way_and_has_extra_records(tiny_landing):
    text = (tiny_landing / "cmms" / "equipment.csv").read_text()
    assert text.splitlines()[0] == "EquipNo,Description,Manufacturer,Model,PlantCode,InstallDate,Criticality"
    rows = _csv(tiny_landing / "cmms" / "equipment.csv")
    plant = read_plant(tiny_landing)
    registry = {a["asset_id"] for a in plant["assets"]}
    cmms_ids = {a["cmms_equip_no"] for a in plant["assets"]}
    equip_nos = {r["EquipNo"] for r in rows}
    assert not equip_nos & registry
    assert cmms_ids <= equip_nos
    assert set(plant["cmms_extra_equipment"]) == equip_nos - cmms_ids and plant["cmms_extra_equipment"]
    for r in rows:
        datetime.strptime(r["InstallDate"], "%Y-%m-%d")
        assert r["Criticality"] in ("A", "B", "C")


def test_work_orders_have_documented_columns(failing_landing):
    path = failing_landing / "cmms" / "work_orders_2026-01.csv"
    assert path.read_text().splitlines()[0] == "WONumber,EquipNo,WOType,FailureCode,Priority,ReportedAt,CompletedAt,Description"
    equipment = {r["EquipNo"] for r in _csv(failing_landing / "cmms" / "equipment.csv")}
    rows = _csv(path)
    assert {r["WOType"] for r in rows} == {"CM", "PM"}
    for r in rows:
        assert r["EquipNo"] in equipment
        assert bool(r["FailureCode"]) == (r["WOType"] == "CM")
        reported = datetime.strptime(r["ReportedAt"], "%Y-%m-%d %H:%M")
        if r["CompletedAt"]:
            assert datetime.strptime(r["CompletedAt"], "%Y-%m-%d %H:%M") >= reported
    assert len({r["WONumber"] for r in rows}) == len(rows)


def test_mes_records_are_hourly_per_unit_with_the_unit_types_columns(tiny_landing):
    plant = read_plant(tiny_landing)
    units = {u["unit_id"]: u for u in plant["units"]}
    for path in sorted((tiny_landing / "mes").glob("production_*.csv")):
        header = path.read_text().splitlines()[0].split(",")
        assert header == mes_columns()
        assert header[:3] == ["unit_id", "ts", "throughput_m3h"] and header[-5] == "yield_pct"
        rows = _csv(path)
        assert len(rows) == 24 * len(units)
        for r in rows:
            unit = units[r["unit_id"]]
            assert parse_iso(r["ts"]).date().isoformat() == path.stem.split("_")[1]
            filled = {k for k, v in r.items() if v != ""}
            expected = {"unit_id", "ts", "throughput_m3h", "yield_pct", unit["quality"], *unit["settings"], *unit["feeds"]}
            assert filled == expected


def test_crm_accounts_have_name_variant_duplicates_and_orders_use_both_ids(failing_landing):
    accounts = [r for p in sorted((failing_landing / "crm").glob("accounts_*.json"))
                for r in json.loads(p.read_text())["records"]]
    orders = [r for p in sorted((failing_landing / "crm").glob("orders_*.json"))
              for r in json.loads(p.read_text())["records"]]
    for a in accounts:
        assert set(a) == {"Id", "Name", "BillingCountry", "Industry", "CreatedDate"}
        datetime.strptime(a["CreatedDate"], "%Y-%m-%dT%H:%M:%S.000+0000")
    dup = read_plant(failing_landing)["crm"]["duplicate_accounts"]
    duplicate_ids = {i for ids in dup.values() for i in ids}
    assert 25 <= len(accounts) - len(duplicate_ids) <= 35
    assert 0.1 <= len(dup) / (len(accounts) - len(duplicate_ids)) <= 0.3
    by_id = {a["Id"]: a for a in accounts}
    pairs = [(master, i) for master, ids in dup.items() for i in ids]
    assert all(by_id[i]["BillingCountry"] == by_id[m]["BillingCountry"] for m, i in pairs)
    assert all(i > m for m, i in pairs)  # the duplicate was created later
    assert sum(by_id[i]["Name"] != by_id[m]["Name"] for m, i in pairs) >= len(pairs) - 1
    referenced = {o["AccountId"] for o in orders}
    assert referenced <= set(by_id)
    assert referenced & set(dup) and referenced & duplicate_ids
    for o in orders:
        assert set(o) == {"OrderId", "AccountId", "Product", "QuantityBbl", "UnitPriceUsd", "OrderDate"}
        assert o["QuantityBbl"] > 0 and o["UnitPriceUsd"] > 0


def test_manifests_hold_the_truth(tiny_landing):
    plant = read_plant(tiny_landing)
    for key in ("assets", "failures", "maintenance", "degradation_episodes", "safe_envelopes", "drift"):
        assert key in plant
    faults = read_faults(tiny_landing)
    assert faults
    for f in faults:
        assert set(f) == {"kind", "source", "file", "line", "detail"}
        assert f["source"] in ("eventhub", "historian")
        assert (tiny_landing / f["file"]).is_file() and f["line"] >= 1
