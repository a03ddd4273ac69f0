"""gold/asset_features on tiny frames: tag roles, hourly grid, alarms, maintenance state, labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import build_features as bf

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _hourly(asset: str, hours: int, tags: dict[str, tuple[str, float]], skip: tuple[int, ...] = ()) -> pd.DataFrame:
    rows = []
    for h in range(hours):
        if h in skip:
            continue
        for tag, (measurement, base) in tags.items():
            rows.append({"asset_id": asset, "tag": tag, "measurement": measurement, "hour": T0 + pd.Timedelta(hours=h),
                         "mean": base + h, "min": base, "max": base, "std": 0.0, "n": 60})
    return pd.DataFrame(rows)


def _work_orders(rows: list[tuple[str, str, int, int | None]]) -> pd.DataFrame:
    return pd.DataFrame({
        "asset_id": [r[0] for r in rows], "wo_type": [r[1] for r in rows],
        "reported_at": [T0 + pd.Timedelta(hours=r[2]) for r in rows],
        "completed_at": [None if r[3] is None else T0 + pd.Timedelta(hours=r[3]) for r in rows],
    }).astype({"completed_at": "datetime64[us, UTC]"})


ASSETS = pd.DataFrame({"asset_id": ["A", "B"], "unit_id": ["U1", "U1"], "asset_type": ["pump", "furnace"],
                       "unit_type": ["hydrotreater"] * 2, "criticality": ["A", "B"]})
NO_ALARMS = pd.DataFrame({"ts": pd.Series(dtype="datetime64[us, UTC]"), "asset_id": pd.Series(dtype=object),
                          "alarm_class": pd.Series(dtype=object), "state": pd.Series(dtype=object)})


def test_tag_roles_number_tags_of_one_measurement_in_name_order():
    hourly = _hourly("A", 2, {"TI-2": ("temperature", 10.0), "TI-1": ("temperature", 20.0), "VI-1": ("vibration", 1.0)})
    roles = bf.tag_roles(hourly).set_index("tag")["role"].to_dict()
    assert roles == {"TI-1": "temperature_1", "TI-2": "temperature_2", "VI-1": "vibration_1"}


def test_hourly_grid_fills_missing_hours_with_nan_and_stamps_the_hour_end():
    grid = bf.hourly_grid(_hourly("A", 5, {"TI-1": ("temperature", 10.0)}, skip=(2,)))
    assert len(grid) == 5
    assert grid["ts"].iloc[0] == T0 + pd.Timedelta(hours=1)
    assert np.isnan(grid["temperature_1"].iloc[2]) and grid["temperature_1"].iloc[3] == 13.0
    assert grid["vibration_1"].isna().all()  # a role the asset lacks is NaN, not absent


def test_alarm_counts_only_count_the_past_window():
    grid = bf.hourly_grid(_hourly("A", 30, {"TI-1": ("temperature", 10.0)}))
    alarms = pd.DataFrame({"ts": [T0 + pd.Timedelta(hours=2, minutes=30)] * 2, "asset_id": ["A", "A"],
                           "alarm_class": ["PROCESS", "WEIRD"], "state": ["ACT", "ACT"]})
    counts = bf.alarm_counts(grid, alarms)
    proc = counts["alarms_24h_process"].to_numpy()
    # rows end at hour 1..30: the alarm at 02:30 is seen from the row ending 03:00 for 24 hours
    assert proc[:2].sum() == 0 and proc[2] == 1 and proc[25] == 1 and proc[26] == 0
    assert counts["alarms_24h_other"].iloc[2] == 1  # unknown class counted as OTHER


def test_maintenance_state_and_labels_follow_the_failure():
    grid = bf.hourly_grid(_hourly("A", 20, {"TI-1": ("temperature", 10.0)}))
    wo = _work_orders([("A", "CM", 10, 12)])
    state = bf.maintenance_state(grid, wo)
    hours = (grid["ts"] - T0) / pd.Timedelta(hours=1)
    assert (state.loc[hours < 10, "life"] == 0).all() and (state.loc[hours >= 10, "life"] == 1).all()
    assert state.loc[(hours >= 10) & (hours < 12), "in_repair"].all() and not state.loc[hours >= 12, "in_repair"].any()
    assert np.isnan(state.loc[hours < 12, "hours_since_maintenance"]).all()
    assert state.loc[hours == 15, "hours_since_maintenance"].iloc[0] == 3.0

    frame = grid[["asset_id", "ts"]].assign(
        life=state["life"], in_repair=state["in_repair"], observed_until=grid["ts"].max(),
        next_failure_at=pd.to_datetime(state["next_failure_h"] * 3600, unit="s", utc=True))
    labels = bf.maintenance_labels(frame, horizon_hours=4, rul_cap=5)
    lab = labels["label_failure"].to_numpy()
    assert list(lab[hours.to_numpy() < 6]) == [0.0] * 5 and list(lab[(hours >= 6) & (hours < 10)]) == [1.0] * 4
    assert np.isnan(lab[(hours >= 10) & (hours < 12)]).all()  # under repair: no label
    assert np.isnan(lab[hours > 16]).all()  # censored: less than the horizon seen after
    rul = labels["label_rul_hours"].to_numpy()
    assert rul[hours == 9][0] == 1.0 and rul[hours == 2][0] == 5.0  # capped


def test_a_failure_not_yet_repaired_keeps_the_asset_in_repair_to_the_end():
    grid = bf.hourly_grid(_hourly("A", 10, {"TI-1": ("temperature", 10.0)}))
    state = bf.maintenance_state(grid, _work_orders([("A", "CM", 6, None)]))
    hours = (grid["ts"] - T0) / pd.Timedelta(hours=1)
    assert state.loc[hours >= 6, "in_repair"].all() and not state.loc[hours < 6, "in_repair"].any()
    assert state["hours_since_maintenance"].isna().all()


def test_features_are_point_in_time():
    hourly = pd.concat([_hourly("A", 40, {"TI-1": ("temperature", 10.0)}), _hourly("B", 40, {"VI-1": ("vibration", 1.0)})])
    wo = _work_orders([("A", "CM", 30, 32)])
    base = bf.build_asset_features(hourly, wo, NO_ALARMS, ASSETS)
    changed = hourly.copy()
    changed.loc[changed["hour"] >= T0 + pd.Timedelta(hours=20), "mean"] += 100.0
    after = bf.build_asset_features(changed, wo, NO_ALARMS, ASSETS)
    past = base["ts"] <= T0 + pd.Timedelta(hours=20)
    features = bf.SENSOR_FEATURES + bf.CYCLE_FEATURES
    pd.testing.assert_frame_equal(base.loc[past, features], after.loc[past, features])
    assert not base.loc[~past, bf.SENSOR_FEATURES].equals(after.loc[~past, bf.SENSOR_FEATURES])
    assert not base.loc[~past, bf.CYCLE_FEATURES].equals(after.loc[~past, bf.CYCLE_FEATURES])
    assert list(base.columns) == bf.ASSET_FEATURES_SCHEMA.names
    assert base.loc[base["asset_id"] == "B", "asset_type"].eq("furnace").all()


def test_cycle_features_restart_after_maintenance_and_ignore_the_asset_size():
    # A and B run the same course at scales 1:10; a work order on A completes at hour 30 and
    # A comes back 20 % lower (say, a new impeller with a smaller trim).
    hours = 60
    a = _hourly("A", hours, {"FI-1": ("flow", 100.0)})
    a["mean"] = 100.0 + 3.0 * np.sin(np.arange(len(a)))
    a.loc[a["hour"] >= T0 + pd.Timedelta(hours=30), "mean"] *= 0.8
    b = a.assign(asset_id="B", mean=a["mean"] * 10.0)
    wo = _work_orders([("A", "PM", 28, 30)])
    rows = bf.build_asset_features(pd.concat([a, b]), wo, NO_ALARMS, ASSETS).set_index(["asset_id", "ts"])
    # The work order completes at 30:00: the row of hour 30 (ts 31:00) starts A's new cycle.
    first, later = T0 + pd.Timedelta(hours=31), T0 + pd.Timedelta(hours=45)
    # In the tags' units the asset-wide deviation keeps the pre-maintenance reference ...
    assert rows.loc[("A", later), "flow_1__w6_mean_base_dev"] == pytest.approx(-20.0, abs=2.0)
    # ... the cycle's reference starts afresh: one row, no deviation, no spread yet, then
    # deviations from the new level only.
    assert rows.loc[("A", first), "flow_1__w6_mean_base_rel"] == 0.0
    assert rows.loc[("A", first), "flow_1__w6_std_rel"] == 0.0
    assert abs(rows.loc[("A", later), "flow_1__w6_mean_base_rel"]) < 0.03
    # Without a work order B keeps its first reference and shows the 20 % step as a fraction.
    assert rows.loc[("B", later), "flow_1__w6_mean_base_rel"] == pytest.approx(-0.2, abs=0.03)
    # Before the work order both assets read the same scale-free features, ten times apart in units.
    before = T0 + pd.Timedelta(hours=20)
    for col in (c for c in bf.CYCLE_FEATURES if c.startswith("flow_1__")):
        assert rows.loc[("A", before), col] == pytest.approx(rows.loc[("B", before), col], rel=1e-9, abs=1e-12)
    assert rows.loc[("B", before), "flow_1__w6_mean_base_dev"] == pytest.approx(
        10.0 * rows.loc[("A", before), "flow_1__w6_mean_base_dev"])


def test_build_features_writes_once_then_leaves_an_unchanged_table(tmp_path):
    from data_prep.lake import Lake

    lake = Lake(tmp_path / "lake")
    hourly = _hourly("A", 30, {"TI-1": ("temperature", 10.0)})
    rows = bf.build_asset_features(hourly, _work_orders([("A", "CM", 20, 22)]), NO_ALARMS, ASSETS)
    assert not bf.unchanged(lake, rows)
    lake.overwrite(rows, *bf.FEATURES_TABLE)
    assert bf.unchanged(lake, rows)
    rows.loc[3, "age_hours"] += 1
    assert not bf.unchanged(lake, rows)


def test_missing_gold_table_is_a_one_line_error(tmp_path, capsys):
    assert bf.main(["--lake", str(tmp_path / "nolake")]) == 2
    err = capsys.readouterr().err
    assert "gold/asset_health_hourly" in err and "refinery prep" in err


def test_empty_hourly_is_an_error_naming_the_table():
    with pytest.raises(ValueError, match="asset_health_hourly is empty"):
        bf.build_asset_features(_hourly("A", 0, {}), _work_orders([]), NO_ALARMS, ASSETS)
