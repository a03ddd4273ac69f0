"""Point-in-time rolling features, regime normalisation and labels on tiny synthetic series."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.features import (
    RegimeNormalizer,
    build_rolling_features,
    constant_columns,
    failure_within_horizon,
    feature_names,
    lagged_columns,
    rul_labels,
)


def _series(n_units: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(1, n_units + 1):
        life = 25 + 7 * unit
        for cycle in range(1, life + 1):
            rows.append({"unit": unit, "cycle": cycle,
                         "a": 100.0 + 0.3 * cycle + rng.normal(0, 0.5),
                         "b": 5.0 - 0.01 * cycle ** 1.5 + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def test_features_at_row_t_ignore_later_rows_of_the_same_entity():
    frame = _series()
    before = build_rolling_features(frame, "unit", "cycle", ["a", "b"], windows=(3, 5), baseline_rows=4)
    t = 12
    future = (frame["unit"] == 2) & (frame["cycle"] > t)
    perturbed = frame.copy()
    perturbed.loc[future, ["a", "b"]] = perturbed.loc[future, ["a", "b"]] * 50 + 1e6
    after = build_rolling_features(perturbed, "unit", "cycle", ["a", "b"], windows=(3, 5), baseline_rows=4)
    past = ~future
    pd.testing.assert_frame_equal(before[past], after[past])
    assert not before[future].equals(after[future])  # the perturbation did reach the future rows


def test_features_do_not_depend_on_input_row_order():
    frame = _series()
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = build_rolling_features(frame, "unit", "cycle", ["a"], windows=(4,))
    b = build_rolling_features(shuffled, "unit", "cycle", ["a"], windows=(4,))
    assert list(b.index) == list(shuffled.index)
    pd.testing.assert_frame_equal(a, b.loc[a.index], check_exact=False, rtol=1e-12)


def test_window_stats_match_direct_computation():
    frame = _series(n_units=2)
    feats = build_rolling_features(frame, "unit", "cycle", ["a"], windows=(5,), baseline_rows=3)
    unit = frame[frame["unit"] == 2].reset_index(drop=True)
    f = feats[frame["unit"] == 2].reset_index(drop=True)
    a = unit["a"].to_numpy()
    for i in (0, 1, 4, 10, len(a) - 1):
        window = a[max(0, i - 4): i + 1]
        assert f.loc[i, "a__w5_mean"] == pytest.approx(window.mean())
        assert f.loc[i, "a__w5_std"] == pytest.approx(window.std())
        assert f.loc[i, "a__w5_min"] == window.min()
        assert f.loc[i, "a__w5_max"] == window.max()
        slope = np.polyfit(np.arange(len(window)), window, 1)[0] if len(window) > 1 else 0.0
        assert f.loc[i, "a__w5_slope"] == pytest.approx(slope, abs=1e-9)
        base = a[: min(i + 1, 3)].mean()
        assert f.loc[i, "a__base_dev"] == pytest.approx(a[i] - base)
        assert f.loc[i, "a__w5_mean_base_dev"] == pytest.approx(window.mean() - base)
        assert f.loc[i, "a__last"] == a[i]
        assert f.loc[i, "age_rows"] == i + 1
    ewm = unit["a"].ewm(span=5, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(f["a__w5_ewm"], ewm)


def test_relative_stats_are_fractions_of_the_baseline_and_ignore_scale():
    frame = _series(n_units=2)
    stats = ("mean_base_dev", "slope", "std", "mean_base_rel", "slope_rel", "std_rel")
    feats = build_rolling_features(frame, "unit", "cycle", ["a"], windows=(5,), baseline_rows=3, stats=stats)
    base = (feats["a__last"] - feats["a__base_dev"]).abs()
    for stat, rel in (("mean_base_dev", "mean_base_rel"), ("slope", "slope_rel"), ("std", "std_rel")):
        np.testing.assert_allclose(feats[f"a__w5_{rel}"], feats[f"a__w5_{stat}"] / base)
    scaled = build_rolling_features(frame.assign(a=frame["a"] * 40.0), "unit", "cycle", ["a"], windows=(5,),
                                    baseline_rows=3, stats=stats)
    for rel in ("mean_base_rel", "slope_rel", "std_rel"):
        np.testing.assert_allclose(scaled[f"a__w5_{rel}"], feats[f"a__w5_{rel}"], atol=1e-12)
    zero = build_rolling_features(frame.assign(a=0.0), "unit", "cycle", ["a"], windows=(5,), stats=("std_rel",))
    assert zero["a__w5_std_rel"].isna().all()  # no reference to be a fraction of
    default = build_rolling_features(frame, "unit", "cycle", ["a"], windows=(5,))
    assert not any(c.endswith("_rel") for c in default.columns)  # asked for by name only


def test_output_columns_follow_feature_names_and_stats_selection():
    frame = _series(n_units=1)
    feats = build_rolling_features(frame, "unit", "cycle", ["a", "b"], windows=(2, 3), stats=("mean", "slope"))
    assert list(feats.columns) == ["unit", "cycle", "age_rows", *feature_names(["a", "b"], (2, 3), ("mean", "slope"))]


@pytest.mark.parametrize("kwargs, message", [
    ({"windows": (0,)}, "window length"),
    ({"windows": ()}, "windows"),
    ({"stats": ("median",)}, "median"),
    ({"baseline_rows": 0}, "baseline_rows"),
])
def test_bad_feature_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_rolling_features(_series(1), "unit", "cycle", ["a"], **kwargs)


def test_duplicate_rows_and_missing_columns_are_errors():
    frame = _series(1)
    with pytest.raises(ValueError, match="duplicate row for unit=1, cycle=3"):
        build_rolling_features(pd.concat([frame, frame.iloc[[2]]]), "unit", "cycle", ["a"])
    with pytest.raises(ValueError, match="nope"):
        build_rolling_features(frame, "unit", "cycle", ["nope"])


def _regime_frame(n_regimes: int, seed: int, rows: int = 600) -> pd.DataFrame:
    """Operating conditions like C-MAPSS FD002/FD004: altitude, Mach, throttle; two of them
    close together (35 and 42 kft at Mach 0.84), which a loose criterion merges."""
    rng = np.random.default_rng(seed)
    centres = np.array([[42, 0.84, 100], [35, 0.84, 100], [0, 0.0, 100], [10, 0.25, 100], [20, 0.7, 100],
                        [25, 0.62, 60]])[:n_regimes]
    regime = rng.integers(0, n_regimes, rows)
    settings = centres[regime] + rng.normal(0, [0.003, 0.0003, 0.0], (rows, 3))
    sensor = 500 + 40 * regime + rng.normal(0, 1.0, rows)
    return pd.DataFrame({"s1": settings[:, 0], "s2": settings[:, 1], "s3": settings[:, 2], "temp": sensor,
                         "true_regime": regime})


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_regime_count_is_detected_from_train_settings(n):
    train = _regime_frame(n, seed=1)
    norm = RegimeNormalizer(["s1", "s2", "s3"], ["temp"]).fit(train)
    assert norm.fitted_regimes == n
    out = norm.transform(train)
    # Found regimes are the true ones up to relabelling.
    assert pd.crosstab(out["regime"], out["true_regime"]).gt(0).sum(axis=1).eq(1).all()
    # Standardised per regime: mean 0, std 1 within each regime on train.
    stats = out.groupby("regime")["temp"].agg(["mean", "std"])
    np.testing.assert_allclose(stats["mean"], 0, atol=1e-9)
    np.testing.assert_allclose(stats["std"], 1, atol=0.05)


def test_test_frames_use_train_clusters_and_statistics():
    train, test = _regime_frame(3, seed=1), _regime_frame(3, seed=2, rows=50)
    norm = RegimeNormalizer(["s1", "s2", "s3"], ["temp"]).fit(train)
    out = norm.transform(test)
    t = norm.transform(train)
    for r in range(3):
        raw = train.loc[t["regime"] == r, "temp"]
        expected = (test.loc[out["regime"] == r, "temp"] - raw.mean()) / raw.std(ddof=0)
        np.testing.assert_allclose(out.loc[out["regime"] == r, "temp"], expected)
    assert set(test.columns) <= set(out.columns) and len(out) == len(test)


def test_regime_normalizer_errors_name_the_problem():
    with pytest.raises(ValueError, match="not fitted"):
        RegimeNormalizer(["s1"], ["temp"]).transform(_regime_frame(1, 0))
    bad = _regime_frame(2, 0)
    bad.loc[3, "s1"] = np.nan
    with pytest.raises(ValueError, match="'s1'"):
        RegimeNormalizer(["s1", "s2", "s3"], ["temp"]).fit(bad)


def test_constant_columns_found():
    frame = pd.DataFrame({"x": [1.0, 1.0, 1.0], "y": [1.0, 2.0, 3.0], "z": [np.nan] * 3, "w": [518.67] * 3})
    assert constant_columns(frame, ["x", "y", "z", "w"]) == ["x", "z", "w"]


def test_rul_labels_capped_and_with_known_failure_times():
    frame = pd.DataFrame({"unit": [1, 1, 1, 2, 2], "cycle": [1, 2, 3, 1, 2]})
    assert rul_labels(frame, "unit", "cycle").tolist() == [2, 1, 0, 1, 0]
    assert rul_labels(frame, "unit", "cycle", cap=1).tolist() == [1, 1, 0, 1, 0]
    assert rul_labels(frame, "unit", "cycle", failure_time={1: 10, 2: 4}).tolist() == [9, 8, 7, 3, 2]
    with pytest.raises(ValueError, match="no entry for entity 2"):
        rul_labels(frame, "unit", "cycle", failure_time={1: 10})


def test_failure_within_horizon_marks_censored_tails_unknown():
    frame = pd.DataFrame({"unit": [1] * 5 + [2] * 5, "cycle": list(range(5)) * 2})
    label = failure_within_horizon(frame, "unit", "cycle", horizon=2, failure_time={1: 4, 2: np.nan})
    assert label[:5].tolist() == [0, 0, 1, 1, 1]
    assert label[5:8].tolist() == [0, 0, 0] and label[8:].isna().all()


def test_lagged_columns_shift_within_the_series():
    frame = pd.DataFrame({"u": [1.0, 2.0, 3.0]})
    lagged = lagged_columns(frame, ["u"], [0, 2])
    assert lagged["u_lag0"].tolist() == [1, 2, 3]
    assert lagged["u_lag2"].isna().tolist() == [True, True, False] and lagged["u_lag2"].iloc[2] == 1
    with pytest.raises(ValueError, match="-1"):
        lagged_columns(frame, ["u"], [-1])
