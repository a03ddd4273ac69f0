"""Injected faults: every kind present, every manifest line points at a record of its kind, and
no good record looks like any fault."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import timedelta

import pytest
from landing_reader import (
    EventRecord,
    HistorianRecord,
    is_finite_number,
    is_number,
    parse_historian_time,
    parse_iso,
    read_events,
    read_faults,
    read_historian,
    read_plant,
    to_canonical,
    within_limits,
)
from simulated_plants import TINY

from data_prep.simulator import simulate
from data_prep.simulator.faults import EVENT_FAULT_KINDS, HISTORIAN_FAULT_KINDS
from data_prep.units import MEASUREMENTS

REQUIRED = ("asset_id", "tag", "ts", "value", "unit")


class Registry:
    def __init__(self, plant: dict) -> None:
        self.tags = {(a["asset_id"], t["tag"]): t for a in plant["assets"] for t in a["tags"]}
        self.assets = {a["asset_id"] for a in plant["assets"]}
        self.historian = {t["historian_tag"]: t for a in plant["assets"] for t in a["tags"]}


def event_faults(ev: EventRecord, reg: Registry, earlier_bodies: set[str]) -> set[str]:
    """Every fault kind a received event shows (empty for a good event)."""
    try:
        body = json.loads(ev.body)
    except ValueError:
        return {"malformed_json"}
    kinds = set()
    if any(k not in body for k in REQUIRED):
        kinds.add("missing_field")
    if ev.body in earlier_bodies:
        kinds.add("exact_duplicate")
    value = body.get("value")
    if "value" in body and not is_number(value):
        kinds.add("wrong_type")
    if is_number(value) and not math.isfinite(value):
        kinds.add("non_finite")
    if "asset_id" in body and body["asset_id"] not in reg.assets:
        kinds.add("unknown_asset")
    tag = reg.tags.get((body.get("asset_id"), body.get("tag")))
    if tag and "unit" in body:
        accepted = MEASUREMENTS[tag["measurement"]]["accepted"]
        if body["unit"] not in accepted:
            kinds.add("wrong_unit")
        elif is_finite_number(value) and not within_limits(to_canonical(value, tag["measurement"], body["unit"]), tag["measurement"]):
            kinds.add("impossible_value")
    if "ts" in body:
        lag = ev.enqueued - parse_iso(body["ts"])
        if lag > timedelta(hours=6):
            kinds.add("late_event")
        if lag < -timedelta(hours=1):
            kinds.add("future_timestamp")
    return kinds


def historian_faults(rec: HistorianRecord, reg: Registry, earlier_lines: set[str]) -> set[str]:
    kinds = set()
    tag_name, stamp, value, unit, _ = rec.fields
    if "" in rec.fields[:4]:
        kinds.add("missing_field")
    if rec.text in earlier_lines:
        kinds.add("exact_duplicate")
    if tag_name and tag_name not in reg.historian:
        kinds.add("unknown_asset")
    number = None
    if value:
        try:
            number = float(value)
        except ValueError:
            kinds.add("wrong_type")
    if number is not None and not math.isfinite(number):
        kinds.add("non_finite")
    tag = reg.historian.get(tag_name)
    if tag and unit:
        if unit not in MEASUREMENTS[tag["measurement"]]["accepted"]:
            kinds.add("wrong_unit")
        elif number is not None and math.isfinite(number) and not within_limits(
                to_canonical(number, tag["measurement"], unit), tag["measurement"]):
            kinds.add("impossible_value")
    return kinds


def _by_location(landing):
    return {(f["file"], f["line"]): f for f in read_faults(landing)}


def test_every_fault_kind_is_injected(tiny_landing):
    faults = read_faults(tiny_landing)
    assert {f["kind"] for f in faults if f["source"] == "eventhub"} == set(EVENT_FAULT_KINDS)
    assert {f["kind"] for f in faults if f["source"] == "historian"} == set(HISTORIAN_FAULT_KINDS)


def test_each_manifest_event_line_is_a_record_of_its_kind_and_the_rest_are_good(tiny_landing):
    reg = Registry(read_plant(tiny_landing))
    manifest = _by_location(tiny_landing)
    events = read_events(tiny_landing)
    seen_bodies_by_partition: dict[int, set[str]] = {}
    good_keys = set()
    # Arrival order per partition is file then line order.
    for ev in events:
        seen = seen_bodies_by_partition.setdefault(ev.envelope["partition"], set())
        kinds = event_faults(ev, reg, seen)
        entry = manifest.get((ev.file, ev.line))
        if entry is None:
            assert kinds == set(), (ev.file, ev.line, ev.body, kinds)
            body = json.loads(ev.body)
            lag = ev.enqueued - parse_iso(body["ts"])
            assert timedelta(0) <= lag <= timedelta(seconds=30), (ev.file, ev.line)
            key = (body["asset_id"], body["tag"], body["ts"])
            assert key not in good_keys
            good_keys.add(key)
        else:
            assert entry["kind"] in kinds, (entry, ev.body, kinds)
        seen.add(ev.body)
    # Good events arrive in order within a partition.
    for partition in {ev.envelope["partition"] for ev in events}:
        arrivals = [ev.enqueued for ev in events if ev.envelope["partition"] == partition]
        assert arrivals == sorted(arrivals)


def test_each_manifest_historian_line_is_a_record_of_its_kind_and_the_rest_are_good(tiny_landing):
    reg = Registry(read_plant(tiny_landing))
    manifest = _by_location(tiny_landing)
    seen: set[str] = set()
    good_keys = set()
    for rec in read_historian(tiny_landing):
        kinds = historian_faults(rec, reg, seen)
        entry = manifest.get((rec.file, rec.line))
        if entry is None:
            assert kinds == set(), (rec.file, rec.line, rec.text, kinds)
            key = (rec.fields[0], parse_historian_time(rec.fields[1]))
            assert key not in good_keys
            good_keys.add(key)
        else:
            assert entry["source"] == "historian"
            assert entry["kind"] in kinds, (entry, rec.text, kinds)
        seen.add(rec.text)


def test_bad_fraction_sets_the_share_of_bad_events(tiny_landing):
    events = read_events(tiny_landing)
    bad = [f for f in read_faults(tiny_landing) if f["source"] == "eventhub"]
    assert 0.8 * TINY.bad_fraction <= len(bad) / len(events) <= 1.2 * TINY.bad_fraction


def test_a_tiny_fraction_still_injects_every_kind(tmp_path):
    landing = tmp_path / "landing"
    simulate(landing, replace(TINY, assets=1, days=2, bad_fraction=1e-6))
    kinds = [f["kind"] for f in read_faults(landing) if f["source"] == "eventhub"]
    assert sorted(kinds) == sorted(EVENT_FAULT_KINDS)


@pytest.mark.parametrize("historian_days", [0, 2])
def test_no_faults_without_a_bad_fraction(tmp_path, historian_days):
    landing = tmp_path / "landing"
    simulate(landing, replace(TINY, assets=2, days=2, bad_fraction=0.0, historian_days=historian_days))
    assert read_faults(landing) == []
    reg = Registry(read_plant(landing))
    seen: set[str] = set()
    for ev in read_events(landing):
        assert event_faults(ev, reg, seen) == set()
        seen.add(ev.body)
    assert bool(read_events(landing)) == (historian_days < 2)
