"""Maintenance split and production models on tiny synthetic frames; the commands' errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refinery.cli import main
from training import train_maintenance as tm
from training import train_production as tp
from training.lgbm import LgbmParams

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _rows(failing: list[str], healthy: list[str], hours: int = 50) -> pd.DataFrame:
    out = []
    for asset in failing + healthy:
        for h in range(hours):
            label = 1.0 if asset in failing and h >= hours - 20 else 0.0
            out.append({"asset_id": asset, "ts": T0 + pd.Timedelta(hours=h), "label_failure": label})
    return pd.DataFrame(out)


def test_split_holds_out_failing_and_healthy_assets_deterministically():
    rows = _rows(["F1", "F2", "F3", "F4"], ["H1", "H2", "H3", "H4"])
    a, b = tm.split_maintenance(rows, seed=3), tm.split_maintenance(rows, seed=3)
    assert a.test_assets == b.test_assets
    held = set(a.test_assets)
    assert held & {"F1", "F2", "F3", "F4"} and held & {"H1", "H2", "H3", "H4"}
    assert not set(rows.loc[a.train | a.valid, "asset_id"]) & held
    assert (rows.loc[a.train, "ts"] < a.cut).all() and (rows.loc[a.valid, "ts"] >= a.cut).all()
    assert not (a.train & a.valid).any() and not (a.train & a.test).any()


def test_split_needs_two_assets_with_observed_failures():
    with pytest.raises(ValueError, match="at least 2 assets with a failure.*found 1 \\(F1\\)"):
        tm.split_maintenance(_rows(["F1"], ["H1", "H2"]), seed=0)


def test_maintenance_metrics_rank_a_perfect_score_first():
    rows = _rows(["F1"], ["H1"]).assign(life=0, label_rul_hours=np.nan,
                                        next_failure_at=lambda d: np.where(d["asset_id"] == "F1", T0 + pd.Timedelta(hours=50), pd.NaT))
    rows["next_failure_at"] = pd.to_datetime(rows["next_failure_at"], utc=True)
    m = tm.maintenance_metrics(rows, rows["label_failure"].to_numpy(), None)
    assert m["pr_auc"] == 1.0 and m["median_lead_time_h"] > 0


def _feature_rows(seed: int = 0) -> pd.DataFrame:
    """Feature rows of 8 failing and 8 healthy assets: noise everywhere, and in the 48 h before a
    failure a flow loss growing to 15 % of the reference (bf.CYCLE_FEATURES, scale-free)."""
    from training import build_features as bf

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(16):
        failing = i < 8
        end = 70 + 6 * i if failing else 120  # failures spread over time: some after the time cut
        ts = pd.date_range(T0 + pd.Timedelta(hours=1), periods=end, freq="h")
        frame = pd.DataFrame(rng.normal(0.0, 0.02, (end, len(bf.NUMERIC_FEATURES))), columns=bf.NUMERIC_FEATURES)
        fail_at = T0 + pd.Timedelta(hours=end + 1) if failing else pd.NaT
        if failing:
            to_fail = np.arange(end, 0, -1, dtype="float64")
            frame["flow_1__w6_mean_base_rel"] -= 0.15 * np.clip(1.0 - to_fail / 48.0, 0.0, 1.0)
        frame.insert(0, "asset_id", f"{'F' if failing else 'H'}{i}")
        frame.insert(1, "ts", ts)
        frames.append(frame.assign(life=0, in_repair=False, observed_until=ts.max(),
                                   next_failure_at=pd.Series(fail_at, index=frame.index, dtype="datetime64[ns, UTC]")))
    return pd.concat(frames, ignore_index=True)


def test_maintenance_classifier_stops_on_validation_pr_auc_without_reweighting():
    params = LgbmParams(learning_rate=0.1, num_leaves=7, max_rounds=60, min_data_in_leaf=10, early_stopping_rounds=20)
    result = tm.train_maintenance_model(_feature_rows(), 48.0, params)
    assert result.classifier.params["metric"] == "average_precision"
    assert "scale_pos_weight" not in result.classifier.params
    assert result.metrics["pr_auc"] > 0.8 > result.baseline["pr_auc"]


def _production(n: int = 160, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ts = [T0 + pd.Timedelta(hours=h) for h in range(n)]
    pressure = np.round(rng.uniform(8, 16, n), 1)
    h2 = np.round(rng.uniform(4, 6, n), 1)
    temp = np.round(rng.uniform(490, 510, n), 1)
    yld = 80 - 0.5 * (pressure - 12) - 0.5 * (h2 - 5) ** 2 + rng.normal(0, 0.05, n)
    frame = pd.DataFrame({
        "unit_id": "REF1", "ts": ts, "throughput_m3h": 100.0, "yield_pct": yld,
        "settings": [{"reactor_inlet_temp_c": t, "reactor_pressure_barg": p, "h2_hc_molar_ratio": h}
                     for t, p, h in zip(temp, pressure, h2)],
        "feed": [{"feed_n_plus_2a_vol_pct": 45.0}] * n, "quality": [{"reformate_ron": 95.0}] * n,
    })
    assets = pd.DataFrame({"asset_id": ["REF1-H-401"], "unit_id": ["REF1"], "unit_type": ["catalytic_reforming"]})
    return frame, assets


def test_production_model_beats_the_mean_and_recommends_inside_the_envelope():
    frame, assets = _production()
    params = LgbmParams(num_leaves=7, min_data_in_leaf=5, max_rounds=300, early_stopping_rounds=30)
    (res,) = tp.train_production_models(frame, assets, params)
    assert res.unit_type == "catalytic_reforming"
    assert res.metrics["r2"] > 0.5 > res.baseline["r2"]
    assert res.metrics["mean_predicted_gain"] >= 0.0 == res.baseline["mean_predicted_gain"]
    # lower pressure never lowers the predicted yield (monotone -1)
    row = res.design.iloc[[0]].copy()
    preds = []
    for p in (8.0, 10.0, 12.0, 14.0, 16.0):
        row["reactor_pressure_barg"] = p
        preds.append(float(res.models.predict(row)[0]))
    assert all(a >= b for a, b in zip(preds, preds[1:]))
    env = tp.envelope_for("catalytic_reforming", ["reactor_pressure_barg", "h2_hc_molar_ratio"])
    assert env.settings == ["reactor_pressure_barg", "h2_hc_molar_ratio"]


def test_unknown_unit_type_has_no_envelope():
    with pytest.raises(ValueError, match="'coker'"):
        tp.envelope_for("coker", ["x"])


def test_train_without_features_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--lake", str(tmp_path / "lake"), "--model", "maintenance"]) == 2
    err = capsys.readouterr().err
    assert "gold/asset_features" in err and "refinery features" in err


def test_promote_unknown_model_names_it(tmp_path, capsys):
    assert main(["promote", "--lake", str(tmp_path / "lake"), "--model", "nosuch", "--version", "1"]) == 2
    assert "no registered model 'nosuch'" in capsys.readouterr().err


def test_train_rejects_a_bad_flag_value(tmp_path, capsys):
    assert main(["train", "--lake", str(tmp_path / "lake"), "--model", "production", "--learning_rate", "0"]) == 2
    assert "--learning_rate must be in (0, 1], got 0.0" in capsys.readouterr().err
