"""Failures: they happen, they are announced by their signature, they stop the asset, and the
CMMS records them."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import numpy as np
import pytest
from landing_reader import parse_historian_time, parse_iso, read_events, read_faults, read_historian, read_plant, to_canonical

from data_prep.simulator.asset_history import simulate_asset_history
from data_prep.simulator.plant import FAILURE_MODES, build_plant
from data_prep.simulator.timegrid import TimeGrid


@pytest.fixture(scope="module")
def series(failing_landing) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(asset_id, tag) -> (timestamps as epoch seconds, canonical values), good readings only."""
    plant = read_plant(failing_landing)
    tags = {(a["asset_id"], t["tag"]): t for a in plant["assets"] for t in a["tags"]}
    by_historian = {t["historian_tag"]: key for key, t in tags.items()}
    bad = {(f["file"], f["line"]) for f in read_faults(failing_landing)}
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for ev in read_events(failing_landing):
        if (ev.file, ev.line) in bad:
            continue
        b = json.loads(ev.body)
        key = (b["asset_id"], b["tag"])
        rows.setdefault(key, []).append(
            (parse_iso(b["ts"]).timestamp(), to_canonical(b["value"], tags[key]["measurement"], b["unit"])))
    for rec in read_historian(failing_landing):
        if (rec.file, rec.line) in bad:
            continue
        key = by_historian[rec.fields[0]]
        rows.setdefault(key, []).append((parse_historian_time(rec.fields[1]).timestamp(),
                                         to_canonical(float(rec.fields[2]), tags[key]["measurement"], rec.fields[3])))
    out = {}
    for key, pairs in rows.items():
        arr = np.array(sorted(pairs))
        out[key] = (arr[:, 0], arr[:, 1])
    return out


def _mean(series, key, start, end) -> float:
    ts, values = series[key]
    mask = (ts >= start.timestamp()) & (ts < end.timestamp())
    assert mask.any(), (key, start, end)
    return float(values[mask].mean())


def test_the_plant_has_failures_with_corrective_work_orders(failing_landing):
    plant = read_plant(failing_landing)
    assert len(plant["failures"]) >= 3
    orders = [r for p in sorted((failing_landing / "cmms").glob("work_orders_*.csv"))
              for r in csv.DictReader(p.read_text().splitlines())]
    by_number = {o["WONumber"]: o for o in orders}
    cmms = {a["asset_id"]: a["cmms_equip_no"] for a in plant["assets"]}
    end = parse_iso(plant["period"]["end"])
    for f in plant["failures"]:
        wo = by_number[f["work_order"]]
        assert (wo["WOType"], wo["FailureCode"], wo["EquipNo"]) == ("CM", f["failure_code"], cmms[f["asset_id"]])
        failed = parse_iso(f["failed_at"])
        assert failed.strftime("%Y-%m-%d %H:%M") <= wo["ReportedAt"] <= (failed + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
        restarted = parse_iso(f["restarted_at"])
        assert wo["CompletedAt"] == (restarted.strftime("%Y-%m-%d %H:%M") if restarted <= end else "")
    pms = [m for m in plant["maintenance"] if m["work_order"]]
    assert pms and all(by_number[m["work_order"]]["WOType"] == "PM" for m in pms)
    assert len(orders) == len(plant["failures"]) + len(pms)


def test_failures_are_preceded_by_their_signature(failing_landing, series):
    """For failures whose degradation began inside the data: compared with the 12 h before onset,
    the last tenth of the lead time shows most signature tags moved the documented way."""
    plant = read_plant(failing_landing)
    start = parse_iso(plant["period"]["start"])
    assets = {a["asset_id"]: a for a in plant["assets"]}
    checked = 0
    for ep in plant["degradation_episodes"]:
        onset, fail = parse_iso(ep["onset"]), parse_iso(ep["would_fail_at"])
        if ep["outcome"] != "failure" or onset - start < timedelta(hours=12):
            continue
        asset = assets[ep["asset_id"]]
        lead = fail - onset
        scores = []
        for effect in ep["signature"]:
            tag = next(t for t in asset["tags"] if t["tag"] == effect["tag"])
            key = (asset["asset_id"], tag["tag"])
            before = _mean(series, key, onset - timedelta(hours=12), onset)
            late = _mean(series, key, fail - lead / 10, fail)
            if effect["kind"] == "mul":
                expected = effect["magnitude"] * tag["nominal"]
            elif effect["kind"] == "add":
                expected = effect["magnitude"]
            else:  # toward the inlet temperature
                expected = effect["magnitude"] * (asset["params"]["inlet_temp"] - tag["nominal"])
            scores.append((late - before) / expected)
        # Load and set point changes can mask one effect, never the signature as a whole.
        assert max(scores) >= 0.5, (ep, scores)
        assert sum(s >= 0.3 for s in scores) >= len(scores) / 2, (ep, scores)
        checked += 1
    assert checked >= 2


def test_a_failed_asset_stops_until_its_restart(failing_landing, series):
    plant = read_plant(failing_landing)
    idle_roles = {"flow", "fuel_flow"}
    checked = 0
    for f in plant["failures"]:
        asset = next(a for a in plant["assets"] if a["asset_id"] == f["asset_id"])
        failed, restarted = parse_iso(f["failed_at"]), parse_iso(f["restarted_at"])
        tag = next(t for t in asset["tags"] if t["role"] in idle_roles)
        key = (asset["asset_id"], tag["tag"])
        assert _mean(series, key, failed + timedelta(minutes=5), restarted) < 0.05 * tag["nominal"]
        assert _mean(series, key, failed - timedelta(hours=1), failed) > 0.3 * tag["nominal"]
        checked += 1
    assert checked


def test_failure_modes_have_distinct_signatures_and_lead_times():
    for asset_type, modes in FAILURE_MODES.items():
        assert len(modes) >= 2, asset_type
        signatures = {tuple((e.role, e.kind, e.low > 0) for e in m.signature) for m in modes}
        assert len(signatures) == len(modes), asset_type
        for m in modes:
            assert 0 < m.lead_days[0] < m.lead_days[1] and m.downtime_hours[0] > 0


def test_a_twenty_asset_two_week_plant_sees_a_handful_of_failures():
    grid = TimeGrid(date(2026, 1, 1), 14, 5)
    counts = []
    for seed in range(8):
        plant = build_plant(20, np.random.default_rng([seed, 1]))
        counts.append(sum(len(simulate_asset_history(a, grid, np.random.default_rng([seed, 2, i])).failures)
                          for i, a in enumerate(plant.assets)))
    assert 5 <= np.mean(counts) <= 15, counts
    assert min(counts) >= 1, counts


def test_preventive_maintenance_resets_wear():
    grid = TimeGrid(date(2026, 1, 1), 60, 15)
    plant = build_plant(12, np.random.default_rng(3))
    reset = 0
    for i, asset in enumerate(plant.assets):
        history = simulate_asset_history(asset, grid, np.random.default_rng([3, i]))
        for m in history.maintenance:
            for ep in history.episodes:
                if ep.end_step == m.start_step:
                    assert ep.outcome == "preventive_maintenance"
                    steps = np.arange(m.start_step, m.start_step + 50)
                    assert not ep.progress(steps).any()
                    reset += 1
    assert reset


def test_operators_have_words_for_every_failure_mode():
    from data_prep.simulator.alarms import _STOP_NOTES, _WARNING_NOTES

    assert set(_WARNING_NOTES) == {(t, m.code) for t, modes in FAILURE_MODES.items() for m in modes}
    assert set(_STOP_NOTES) == set(FAILURE_MODES)
