"""LightGBM wrappers: early stopping on the given validation slice, determinism, imbalance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.lgbm import LgbmParams, train_classifier, train_regressor

FAST = LgbmParams(learning_rate=0.1, num_leaves=7, min_data_in_leaf=5, max_rounds=200, early_stopping_rounds=20, num_threads=1)


def _regression(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n), "noise": rng.normal(size=n)})
    y = 3 * x["a"] - 2 * x["b"] ** 2 + rng.normal(0, 0.05, n)
    return x, y.to_numpy()


def test_regressor_is_deterministic_and_stops_on_validation():
    x, y = _regression()
    tr, va = x.iloc[:300], x.iloc[300:]
    m1 = train_regressor(tr, y[:300], va, y[300:], FAST)
    m2 = train_regressor(tr, y[:300], va, y[300:], FAST)
    np.testing.assert_array_equal(m1.predict(va), m2.predict(va))
    assert 1 <= m1.best_iteration <= FAST.max_rounds
    assert m1.valid_score == pytest.approx(np.sqrt(np.mean((m1.predict(va) - y[300:]) ** 2)), rel=1e-6)
    assert m1.params["deterministic"] is True and m1.params["num_threads"] == FAST.num_threads
    assert m1.feature_importance().index[0] == "a"


def test_monotone_constraint_holds():
    x, y = _regression()
    m = train_regressor(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST, monotone={"b": -1})
    grid = pd.DataFrame({"a": 0.5, "b": np.linspace(0, 1, 50), "noise": 0.0})
    assert np.all(np.diff(m.predict(grid)) <= 1e-12)
    with pytest.raises(ValueError, match="unknown feature"):
        train_regressor(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST, monotone={"zz": 1})


def test_quantile_models_bracket_the_median():
    x, y = _regression()
    lo = train_regressor(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST, "quantile", 0.1)
    hi = train_regressor(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST, "quantile", 0.9)
    assert np.mean(lo.predict(x.iloc[300:]) <= hi.predict(x.iloc[300:])) > 0.9
    with pytest.raises(ValueError, match="alpha"):
        train_regressor(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST, "quantile", 1.5)


def test_overlapping_train_and_validation_rows_are_refused():
    x, y = _regression()
    with pytest.raises(ValueError, match="overlap"):
        train_regressor(x.iloc[:300], y[:300], x.iloc[250:], y[250:], FAST)


def test_classifier_handles_imbalance_and_checks_labels():
    rng = np.random.default_rng(1)
    n = 1000
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = ((x["a"] + 0.3 * rng.normal(size=n)) > 1.8).astype(int).to_numpy()
    m = train_classifier(x.iloc[:700], y[:700], x.iloc[700:], y[700:], FAST)
    pos, neg = y[:700].sum(), 700 - y[:700].sum()
    assert m.params["scale_pos_weight"] == pytest.approx(neg / pos)
    assert m.task == "classification"
    p = m.predict(x.iloc[700:])
    assert p.min() >= 0 and p.max() <= 1
    assert train_classifier(x.iloc[:700], y[:700], x.iloc[700:], y[700:], FAST, "is_unbalance").params["is_unbalance"]
    with pytest.raises(ValueError, match="0 or 1, got 2.0"):
        train_classifier(x.iloc[:700], np.where(y[:700] == 1, 2, 0), x.iloc[700:], y[700:], FAST)
    with pytest.raises(ValueError, match="both classes"):
        train_classifier(x.iloc[:700], np.zeros(700), x.iloc[700:], y[700:], FAST)
