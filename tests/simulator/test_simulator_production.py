"""Production: operators stay inside the safe envelope, the response is sane and physically signed,
and the drift date changes the crude slate."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from landing_reader import read_plant

from data_prep.simulator import SAFE_ENVELOPES
from data_prep.simulator.plant import UNIT_TYPES
from data_prep.simulator.production import expected_yield_quality, feeds_from_crude, operator_setpoints

QUALITY_RANGES = {
    "quality_diesel_t95_c": (300.0, 400.0),
    "quality_gasoline_ron": (80.0, 100.0),
    "quality_product_sulfur_ppm": (0.0, 25000.0),
    "quality_reformate_ron": (80.0, 110.0),
}


def _mes(landing) -> list[dict]:
    return [r for p in sorted((landing / "mes").glob("production_*.csv"))
            for r in csv.DictReader(p.read_text().splitlines())]


def _at(unit_type: str, **settings: float) -> dict[str, np.ndarray]:
    env = SAFE_ENVELOPES[unit_type]
    values = {name: np.array([spec["nominal"]]) for name, spec in env.items()}
    values.update({k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in settings.items()})
    n = max(len(v) for v in values.values())
    return {k: np.broadcast_to(v, (n,)) for k, v in values.items()}


def _feeds(unit_type: str, api: float = 33.0, sulfur: float = 1.5) -> dict[str, np.ndarray]:
    return feeds_from_crude(unit_type, np.array(api), np.array(sulfur))


def test_recorded_settings_respect_the_safe_envelope(failing_landing):
    plant = read_plant(failing_landing)
    assert plant["safe_envelopes"] == SAFE_ENVELOPES
    unit_types = {u["unit_id"]: u["unit_type"] for u in plant["units"]}
    rows = _mes(failing_landing)
    for unit_id, unit_type in unit_types.items():
        mine = sorted((r for r in rows if r["unit_id"] == unit_id), key=lambda r: r["ts"])
        assert len(mine) == 24 * plant["config"]["days"]
        for setting, env in SAFE_ENVELOPES[unit_type].items():
            values = np.array([float(r[setting]) for r in mine])
            assert values.min() >= env["min"] - 1e-9 and values.max() <= env["max"] + 1e-9, (unit_id, setting)
            assert np.abs(np.diff(values)).max() <= env["max_step"] + 1e-9, (unit_id, setting)
            steps = values / env["resolution"]
            assert np.allclose(steps, np.round(steps), atol=1e-6), (unit_id, setting)
            assert len(np.unique(values)) > 3, (unit_id, setting)  # operators do move things


def test_operator_set_points_cover_the_envelope_over_time():
    for unit_type, settings in SAFE_ENVELOPES.items():
        for name, env in settings.items():
            values = operator_setpoints(env, 24 * 60, np.random.default_rng(1))
            span = env["max"] - env["min"]
            assert values.max() - values.min() >= 0.5 * span, (unit_type, name)


def test_recorded_production_is_sane(failing_landing):
    plant = read_plant(failing_landing)
    capacity = {u["unit_id"]: u["capacity_m3h"] for u in plant["units"]}
    quality_of = {u["unit_id"]: u["quality"] for u in plant["units"]}
    for r in _mes(failing_landing):
        assert 0.3 * capacity[r["unit_id"]] <= float(r["throughput_m3h"]) <= 1.1 * capacity[r["unit_id"]]
        assert 20.0 <= float(r["yield_pct"]) < 100.0
        low, high = QUALITY_RANGES[quality_of[r["unit_id"]]]
        assert low <= float(r[quality_of[r["unit_id"]]]) <= high


def test_cdu_yield_has_an_interior_optimum_in_furnace_temperature_and_quality_worsens():
    env = SAFE_ENVELOPES["crude_distillation"]["furnace_outlet_temp_c"]
    temps = np.linspace(env["min"], env["max"], 81)
    yld, t95 = expected_yield_quality("crude_distillation", _at("crude_distillation", furnace_outlet_temp_c=temps),
                                      _feeds("crude_distillation"), np.full(81, 0.9))
    best = int(np.argmax(yld))
    assert 0 < best < len(temps) - 1
    assert np.all(np.diff(t95) > 0)  # a hotter cut makes a heavier diesel


@pytest.mark.parametrize("unit_type", sorted(SAFE_ENVELOPES))
def test_every_unit_type_has_an_interior_yield_optimum(unit_type):
    env = SAFE_ENVELOPES[unit_type]
    interior = False
    for name, spec in env.items():
        grid = np.linspace(spec["min"], spec["max"], 61)
        yld, _ = expected_yield_quality(unit_type, _at(unit_type, **{name: grid}), _feeds(unit_type), np.full(61, 0.9))
        interior |= 0 < int(np.argmax(yld)) < len(grid) - 1
    assert interior


def test_physical_signs_of_the_response():
    hot = {"reactor_inlet_temp_c": [330.0, 350.0, 370.0]}
    _, sulfur = expected_yield_quality("hydrotreater", _at("hydrotreater", **hot), _feeds("hydrotreater"), np.full(3, 0.9))
    assert np.all(np.diff(sulfur) < 0)  # hotter reactor, deeper desulfurisation
    _, sulfur_sour = expected_yield_quality("hydrotreater", _at("hydrotreater", **hot),
                                            _feeds("hydrotreater", sulfur=3.0), np.full(3, 0.9))
    assert np.all(sulfur_sour >= sulfur) and sulfur_sour[0] > sulfur[0]  # sourer feed, more sulfur left (down to the analyser floor)
    temps = {"reactor_inlet_temp_c": [495.0, 510.0, 525.0]}
    yld, ron = expected_yield_quality("catalytic_reforming", _at("catalytic_reforming", **temps),
                                      _feeds("catalytic_reforming"), np.full(3, 0.9))
    assert np.all(np.diff(ron) > 0) and np.all(np.diff(yld) < 0)  # severity buys octane with yield
    light, _ = expected_yield_quality("crude_distillation", _at("crude_distillation"), _feeds("crude_distillation", api=40.0),
                                      np.full(1, 0.9))
    heavy, _ = expected_yield_quality("crude_distillation", _at("crude_distillation"), _feeds("crude_distillation", api=25.0),
                                      np.full(1, 0.9))
    assert light[0] > heavy[0]  # lighter crude, more distillate


def test_unit_types_declare_their_mes_columns():
    for unit_type, spec in UNIT_TYPES.items():
        assert spec.name == unit_type
        assert spec.quality.startswith("quality_")
        assert all(f.startswith("feed_") for f in spec.feeds)
        assert spec.settings == tuple(SAFE_ENVELOPES[unit_type])


def test_drift_changes_the_crude_slate_and_recalibrates_sensors(tiny_landing):
    drift = read_plant(tiny_landing)["drift"]
    assert drift["after"] == "2026-01-02T00:00:00Z"
    before, after = drift["feed_mean_before"], drift["feed_mean_after"]
    for unit_id, feeds in after.items():
        if "feed_api_gravity" in feeds:
            assert feeds["feed_api_gravity"] < before[unit_id]["feed_api_gravity"]  # heavier crude
    assert drift["sensor_recalibration"]
    assert all(abs(r["offset"]) >= 2.0 and r["unit"] == "degC" for r in drift["sensor_recalibration"])
    mes_before = [r for r in _mes(tiny_landing) if r["unit_id"].startswith("CDU") and r["ts"] < "2026-01-02"]
    mes_after = [r for r in _mes(tiny_landing) if r["unit_id"].startswith("CDU") and r["ts"] >= "2026-01-02"]
    assert np.mean([float(r["feed_sulfur_wt_pct"]) for r in mes_after]) > np.mean(
        [float(r["feed_sulfur_wt_pct"]) for r in mes_before])
