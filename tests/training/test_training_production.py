"""Quality models and the recommender: the recommendation never leaves the envelope."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.lgbm import LgbmParams
from training.production import Envelope, QualityModels, quality_design, recommend, train_quality_models

FAST = LgbmParams(learning_rate=0.1, num_leaves=7, min_data_in_leaf=5, max_rounds=150, early_stopping_rounds=20,
                  num_threads=1)
SETTINGS = ["reflux", "steam"]


@pytest.fixture(scope="module")
def models() -> QualityModels:
    """Yield rises with reflux (monotone +1), peaks at steam 5, falls with feed impurity."""
    rng = np.random.default_rng(0)
    n = 600
    x = pd.DataFrame({
        "reflux": rng.uniform(0, 10, n),
        "steam": rng.uniform(0, 10, n),
        "feed_impurity": rng.uniform(0, 1, n),
        "temp_lag1": rng.normal(80, 2, n),
    })
    y = 0.5 * x["reflux"] - 0.3 * (x["steam"] - 5) ** 2 - 2 * x["feed_impurity"] + rng.normal(0, 0.2, n)
    return train_quality_models(x.iloc[:450], y[:450], x.iloc[450:], y[450:], monotone={"reflux": 1},
                                quantiles=(0.1, 0.9), params=FAST)


def _state(reflux: float = 4.0, steam: float = 2.0) -> dict:
    return {"reflux": reflux, "steam": steam, "feed_impurity": 0.3, "temp_lag1": 80.0}


ENVELOPE = Envelope(bounds={"reflux": (2.0, 8.0), "steam": (1.0, 9.0)}, max_step={"reflux": 1.0, "steam": 2.0})


def test_monotone_constraint_and_band(models):
    grid = pd.DataFrame({"reflux": np.linspace(0, 10, 40), "steam": 5.0, "feed_impurity": 0.2, "temp_lag1": 80.0})
    assert np.all(np.diff(models.predict(grid)) >= -1e-12)
    low, high = models.band(grid)
    assert np.all(low <= high)


def test_recommendation_improves_within_steps(models):
    rec = recommend(models, _state(), ENVELOPE)
    assert 4.0 <= rec.settings["reflux"] <= 5.0 and 1.0 <= rec.settings["steam"] <= 4.0
    assert rec.settings["reflux"] > 4.5 and rec.settings["steam"] > 3.0  # toward the optimum
    assert rec.predicted_gain > 0
    assert rec.band[0] <= rec.band[1]
    assert rec.projected == []


def test_minimize_direction_flips_the_search(models):
    rec = recommend(models, _state(), ENVELOPE, direction="minimize")
    assert rec.settings["reflux"] < 4.0 and rec.predicted_gain >= 0


def test_state_outside_bounds_is_projected_into_the_envelope(models):
    rec = recommend(models, _state(reflux=50.0, steam=-20.0), ENVELOPE)
    assert rec.settings == {"reflux": 8.0, "steam": 1.0}
    assert rec.projected == ["reflux", "steam"]


def test_zero_step_and_fixed_bounds_keep_the_setting(models):
    env = Envelope(bounds={"reflux": (3.0, 3.0), "steam": (1.0, 9.0)}, max_step={"reflux": 1.0, "steam": 0.0})
    rec = recommend(models, _state(reflux=4.0, steam=2.5), env)
    assert rec.settings == {"reflux": 3.0, "steam": 2.5}


@pytest.mark.parametrize("value", [float("nan"), None, "abc", float("inf")])
def test_bad_setting_value_is_a_value_error_naming_the_setting(models, value):
    with pytest.raises(ValueError, match="'steam'"):
        recommend(models, {**_state(), "steam": value}, ENVELOPE)


def test_envelope_validation_names_the_setting():
    with pytest.raises(ValueError, match="'reflux' have lo 5.0 > hi 1.0"):
        Envelope(bounds={"reflux": (5.0, 1.0)}, max_step={"reflux": 1.0})
    with pytest.raises(ValueError, match="max_step for setting 'reflux'"):
        Envelope(bounds={"reflux": (0.0, 1.0)}, max_step={"reflux": -1.0})
    with pytest.raises(ValueError, match="no max_step for setting"):
        Envelope(bounds={"reflux": (0.0, 1.0)}, max_step={})
    with pytest.raises(ValueError, match="must be finite"):
        Envelope(bounds={"reflux": (float("nan"), 1.0)}, max_step={"reflux": 1.0})


def test_unknown_setting_or_missing_feature(models):
    with pytest.raises(ValueError, match="not model features"):
        recommend(models, _state(), Envelope(bounds={"valve": (0, 1)}, max_step={"valve": 1}))
    state = _state()
    del state["temp_lag1"]
    with pytest.raises(ValueError, match="temp_lag1"):
        recommend(models, state, ENVELOPE)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def envelopes(draw):
    bounds, steps = {}, {}
    for name in SETTINGS:
        lo = draw(st.floats(min_value=-100, max_value=100, allow_nan=False))
        width = draw(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=50, allow_nan=False)))
        bounds[name] = (lo, lo + width)
        steps[name] = draw(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=30, allow_nan=False)))
    return Envelope(bounds=bounds, max_step=steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=envelopes(), reflux=finite, steam=finite, seed=st.integers(0, 3))
def test_property_recommendation_never_leaves_the_envelope(models, env, reflux, steam, seed):
    state = _state(reflux, steam)
    rec = recommend(models, state, env, n_candidates=32, refine_rounds=1, seed=seed)
    for name in SETTINGS:
        lo, hi = env.bounds[name]
        value = rec.settings[name]
        assert lo <= value <= hi, (name, value, lo, hi)
        if lo <= state[name] <= hi:
            assert abs(value - state[name]) <= env.max_step[name] + 1e-9 * max(1.0, abs(state[name]))
        elif abs(value - state[name]) > env.max_step[name]:
            # Too far outside to reach with one step: the nearest bound (projection).
            assert value == (lo if state[name] < lo else hi)
    assert math.isfinite(rec.predicted_gain)
    if not rec.projected:  # moving back inside the bounds may cost yield; otherwise never worse
        assert rec.predicted_gain >= 0
    assert env.contains(state, rec.settings)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.sampled_from(SETTINGS), other=finite)
def test_property_nan_setting_is_always_named(models, bad, other):
    state = _state(other, other)
    state[bad] = float("nan")
    with pytest.raises(ValueError, match=repr(bad)):
        recommend(models, state, ENVELOPE)


def test_quality_design_uses_only_past_process_values():
    frame = pd.DataFrame({"reflux": [1.0, 2, 3], "feed_rvp": [5.0, 5, 6], "top_temp": [70.0, 71, 72]})
    x = quality_design(frame, ["reflux"], ["feed_rvp"], ["top_temp"], lags=(1, 2))
    assert list(x.columns) == ["reflux", "feed_rvp", "top_temp_lag1", "top_temp_lag2"]
    assert x["top_temp_lag1"].tolist()[1:] == [70.0, 71.0] and np.isnan(x["top_temp_lag2"].iloc[1])
    with pytest.raises(ValueError, match="lags must be >= 1"):
        quality_design(frame, ["reflux"], ["feed_rvp"], ["top_temp"], lags=(0,))
    with pytest.raises(ValueError, match="'reflux'"):
        quality_design(frame, ["reflux"], ["reflux"], ["top_temp"])
