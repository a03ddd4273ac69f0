"""Build ``gold/asset_features``: one point-in-time feature row per asset and hour, with labels.

What changes in the data: ``gold/asset_health_hourly`` (one row per asset, tag and hour) is
pivoted to one row per asset and hour, the tags named by their role (measurement and position
among the asset's tags of that measurement: ``temperature_1``, ``temperature_2`` ...), put on a
complete hourly grid, and turned into rolling-window features with ``training.features`` (rows
<= t of the same asset only): over the asset's whole history in the tags' units, and within
its current maintenance cycle (since its last completed work order, whose first
``BASELINE_HOURS`` are the healthy reference) as fractions of that reference. Added per row:
hours since the last completed work order, alarm counts per class over the past 24 h, the
asset's master-data attributes, and the labels: the asset's next failure (``reported_at`` of a
corrective work order) after the row, whether it is within ``DEFAULT_HORIZON_HOURS`` and the
remaining useful life capped at ``RUL_CAP_HOURS``.

A row's ``ts`` is the end of its hour: everything in the row was known at ``ts``. Rows while
the asset is under repair (between a failure and its completion) carry no labels. The table
is overwritten as a whole (its schema too, when the code's columns changed), and not at all
when the rows equal what it holds: the same silver/gold inputs give the same rows and leave
the table at its version.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from data_prep import schemas
from data_prep.lake import Lake
from data_prep.units import MEASUREMENTS
from training.features import (
    RELATIVE_STATS, build_rolling_features, failure_within_horizon, feature_names, rul_labels,
)

FEATURES_TABLE = ("gold", "asset_features")
INPUT_TABLES = (("gold", "asset_health_hourly"), ("silver", "work_orders"), ("silver", "alarms"), ("silver", "assets"))
TAGS_PER_MEASUREMENT = 2
ROLES: tuple[str, ...] = tuple(f"{m}_{i}" for m in MEASUREMENTS for i in range(1, TAGS_PER_MEASUREMENT + 1))
WINDOWS: tuple[int, ...] = (6, 24, 72)
STATS: tuple[str, ...] = ("mean", "std", "slope", "mean_base_dev")
BASELINE_HOURS = 24
ALARM_CLASSES: tuple[str, ...] = ("PROCESS", "EQUIPMENT", "SAFETY", "SYSTEM", "NOTE", "OTHER")
ALARM_WINDOW_HOURS = 24
DEFAULT_HORIZON_HOURS = 48
RUL_CAP_HOURS = 96.0
FAILURE_WO_TYPE = "CM"

SENSOR_FEATURES: list[str] = feature_names(ROLES, WINDOWS, STATS)
# Within the maintenance cycle, scale-free: a repair or a PM restores the asset, so its healthy
# reference is re-measured after each one instead of kept from the first hours of the data.
CYCLE_FEATURES: list[str] = [f"{r}__w{w}_{st}" for r in ROLES for w in WINDOWS for st in RELATIVE_STATS]
ALARM_FEATURES: list[str] = [f"alarms_{ALARM_WINDOW_HOURS}h_{c.lower()}" for c in ALARM_CLASSES]
OTHER_FEATURES: list[str] = ["age_hours", "hours_since_maintenance"]
ATTRIBUTES: list[str] = ["asset_type", "unit_type", "criticality"]
NUMERIC_FEATURES: list[str] = OTHER_FEATURES + ALARM_FEATURES + SENSOR_FEATURES + CYCLE_FEATURES

_TS = pa.timestamp("us", tz="UTC")
ASSET_FEATURES_SCHEMA = pa.schema(
    [pa.field("asset_id", pa.string(), False), pa.field("ts", _TS, False), pa.field("event_date", pa.date32(), False),
     pa.field("unit_id", pa.string(), True)]
    + [pa.field(a, pa.string(), True) for a in ATTRIBUTES]
    + [pa.field(c, pa.float64(), True) for c in NUMERIC_FEATURES]
    + [pa.field("in_repair", pa.bool_(), False), pa.field("life", pa.int64(), False),
       pa.field("next_failure_at", _TS, True), pa.field("observed_until", _TS, False),
       pa.field("label_failure", pa.float64(), True), pa.field("label_rul_hours", pa.float64(), True)]
)
schemas.register(*FEATURES_TABLE, ASSET_FEATURES_SCHEMA, partition_by=["event_date"])


def epoch_hours(ts: pd.Series) -> pd.Series:
    """Hours since the Unix epoch, as float (labels and gaps are computed in hours)."""
    return (pd.to_datetime(ts, utc=True) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(hours=1)


def tag_roles(hourly: pd.DataFrame) -> pd.DataFrame:
    """(asset_id, tag, role): each tag's measurement and its position among the asset's tags of
    that measurement, in tag-name order. Tags beyond ``TAGS_PER_MEASUREMENT`` or of a measurement
    not in ``data_prep.units.MEASUREMENTS`` get no role (they are left out)."""
    tags = hourly[["asset_id", "tag", "measurement"]].drop_duplicates().sort_values(["asset_id", "measurement", "tag"])
    pos = tags.groupby(["asset_id", "measurement"]).cumcount() + 1
    tags = tags.assign(role=tags["measurement"] + "_" + pos.astype(str))
    return tags[tags["role"].isin(ROLES)][["asset_id", "tag", "role"]]


def hourly_grid(hourly: pd.DataFrame) -> pd.DataFrame:
    """One row per asset and hour from its first to its last hour in ``hourly``, with one column
    per tag role holding the hour's mean (NaN where the hour has no reading); ``ts`` = hour end."""
    roles = tag_roles(hourly)
    data = hourly.merge(roles, on=["asset_id", "tag"], how="inner")
    wide = data.pivot_table(index=["asset_id", "hour"], columns="role", values="mean", aggfunc="mean")
    wide = wide.reindex(columns=list(ROLES)).reset_index()
    frames = []
    for asset, rows in wide.groupby("asset_id", sort=True):
        hours = pd.date_range(rows["hour"].min(), rows["hour"].max(), freq="h")
        full = rows.set_index("hour").reindex(hours).drop(columns="asset_id")
        full.index.name = "hour"
        frames.append(full.reset_index().assign(asset_id=asset))
    grid = pd.concat(frames, ignore_index=True)
    grid["ts"] = grid["hour"] + pd.Timedelta(hours=1)
    return grid.drop(columns="hour")[["asset_id", "ts", *ROLES]]


def alarm_counts(grid: pd.DataFrame, alarms: pd.DataFrame) -> pd.DataFrame:
    """Per grid row, alarms of each class raised in the ``ALARM_WINDOW_HOURS`` before ``ts``
    (activations only; a class not in ``ALARM_CLASSES`` counts as OTHER). Same index as ``grid``."""
    out = pd.DataFrame(0.0, index=grid.index, columns=ALARM_FEATURES)
    raised = alarms[alarms["asset_id"].notna()]
    if "state" in raised.columns:
        raised = raised[raised["state"] == "ACT"]
    if raised.empty:
        return out
    cls = raised["alarm_class"].where(raised["alarm_class"].isin(ALARM_CLASSES), "OTHER")
    t_grid = epoch_hours(grid["ts"]).to_numpy()
    window = float(ALARM_WINDOW_HOURS)
    for (asset, c), rows in raised.assign(cls=cls).groupby(["asset_id", "cls"]):
        at = np.sort(epoch_hours(rows["ts"]).to_numpy())
        mask = (grid["asset_id"] == asset).to_numpy()
        t = t_grid[mask]
        n = np.searchsorted(at, t, side="left") - np.searchsorted(at, t - window, side="left")
        out.loc[mask, f"alarms_{ALARM_WINDOW_HOURS}h_{c.lower()}"] = n.astype("float64")
    return out


def maintenance_state(grid: pd.DataFrame, work_orders: pd.DataFrame) -> pd.DataFrame:
    """Per grid row: hours since the asset's last completed work order (NaN if none yet), its
    maintenance ``cycle`` (work orders completed by the start of the row's hour, so the hour
    of a restart, part stopped, still closes the old cycle), whether it is under
    repair (a failure reported at or before ``ts``, not yet completed), its ``life`` (failures
    reported at or before ``ts``) and the time of its next failure after ``ts``."""
    t = epoch_hours(grid["ts"]).to_numpy()
    since = np.full(len(grid), np.nan)
    cycle = np.zeros(len(grid), dtype="int64")
    repair = np.zeros(len(grid), dtype=bool)
    life = np.zeros(len(grid), dtype="int64")
    next_fail = np.full(len(grid), np.nan)
    for asset, wos in work_orders.groupby("asset_id"):
        mask = (grid["asset_id"] == asset).to_numpy()
        tt = t[mask]
        done = np.sort(epoch_hours(wos["completed_at"].dropna()).to_numpy())
        if len(done):
            k = np.searchsorted(done, tt, side="right")
            cycle[mask] = np.searchsorted(done, tt - 1.0, side="right")
            since[mask] = np.where(k > 0, tt - done[np.maximum(k - 1, 0)], np.nan)
        cm = wos[wos["wo_type"] == FAILURE_WO_TYPE]
        if cm.empty:
            continue
        rep = epoch_hours(cm["reported_at"]).to_numpy()
        comp = epoch_hours(cm["completed_at"]).fillna(np.inf).to_numpy()
        order = np.argsort(rep)
        rep, comp = rep[order], comp[order]
        j = np.searchsorted(rep, tt, side="right")  # failures reported at or before ts
        life[mask] = j
        repair[mask] = (j > 0) & (tt < comp[np.maximum(j - 1, 0)])
        next_fail[mask] = np.where(j < len(rep), rep[np.minimum(j, len(rep) - 1)], np.nan)
    return pd.DataFrame({"hours_since_maintenance": since, "cycle": cycle, "in_repair": repair, "life": life,
                         "next_failure_h": next_fail}, index=grid.index)


def cycle_features(grid: pd.DataFrame, cycle: pd.Series) -> pd.DataFrame:
    """``CYCLE_FEATURES`` for the rows of ``grid``: each role's rolling deviation from its
    baseline, slope and spread as fractions of the baseline, where windows and baseline start
    afresh with each maintenance ``cycle`` of the asset. Same index as ``grid``."""
    key = grid["asset_id"].astype(str) + "#" + cycle.astype(str)
    rolled = build_rolling_features(grid.assign(cycle_key=key), "cycle_key", "ts", list(ROLES), WINDOWS,
                                    BASELINE_HOURS, RELATIVE_STATS)
    return rolled[CYCLE_FEATURES]


def maintenance_labels(frame: pd.DataFrame, horizon_hours: float, rul_cap: float = RUL_CAP_HOURS) -> pd.DataFrame:
    """(label_failure, label_rul_hours) for feature rows with ``asset_id``, ``ts``, ``life``,
    ``next_failure_at``, ``observed_until`` and ``in_repair``.

    Each (asset, life) is one series that ends in its next failure or is censored at
    ``observed_until``; labels come from ``training.features.failure_within_horizon`` and
    ``rul_labels``. A censored row's RUL is the cap when at least ``rul_cap`` hours were seen
    after it, else unknown (NaN). Rows under repair get NaN for both.
    """
    t = epoch_hours(frame["ts"])
    series = pd.DataFrame({"life_key": frame["asset_id"].astype(str) + "#" + frame["life"].astype(str), "t": t},
                          index=frame.index)
    fail = epoch_hours(frame["next_failure_at"])
    fail_by_life = fail.groupby(series["life_key"]).first()
    label = failure_within_horizon(series, "life_key", "t", float(horizon_hours), fail_by_life)
    # failure_within_horizon takes a censored series' last row as its last observation; the
    # data ran on to observed_until, so rows seen for at least the horizon after are known healthy.
    left = epoch_hours(frame["observed_until"]) - t
    label = label.where(~(fail.isna() & (left >= horizon_hours)), 0.0)
    rul = pd.Series(np.where(left >= rul_cap, rul_cap, np.nan), index=frame.index)
    failing = fail.notna()
    if failing.any():
        rul[failing] = rul_labels(series[failing], "life_key", "t", cap=rul_cap, failure_time=fail_by_life.dropna())
    repair = frame["in_repair"].to_numpy(dtype=bool)
    label[repair] = np.nan
    rul[repair] = np.nan
    return pd.DataFrame({"label_failure": label.to_numpy(), "label_rul_hours": rul.to_numpy()}, index=frame.index)


def build_asset_features(
    hourly: pd.DataFrame, work_orders: pd.DataFrame, alarms: pd.DataFrame, assets: pd.DataFrame,
    horizon_hours: float = DEFAULT_HORIZON_HOURS,
) -> pd.DataFrame:
    """Rows of ``gold/asset_features`` from the hourly health, work orders, alarms and assets."""
    if hourly.empty:
        raise ValueError("gold/asset_health_hourly is empty; run `refinery prep` first")
    grid = hourly_grid(hourly)
    rolled = build_rolling_features(grid, "asset_id", "ts", list(ROLES), WINDOWS, BASELINE_HOURS, STATS)
    out = grid[["asset_id", "ts"]].copy()
    out["age_hours"] = rolled["age_rows"].astype("float64")
    state = maintenance_state(grid, work_orders)
    out = pd.concat([out, alarm_counts(grid, alarms), state, rolled[SENSOR_FEATURES],
                     cycle_features(grid, state["cycle"])], axis=1)
    attrs = assets.drop_duplicates("asset_id").set_index("asset_id")
    for col in ["unit_id", *ATTRIBUTES]:
        out[col] = out["asset_id"].map(attrs[col]) if col in attrs.columns else None
    out["observed_until"] = out.groupby("asset_id")["ts"].transform("max")
    out["next_failure_at"] = pd.to_datetime(out["next_failure_h"] * 3600.0, unit="s", utc=True)
    out = pd.concat([out, maintenance_labels(out, horizon_hours)], axis=1)
    out["event_date"] = out["ts"].dt.date
    return out[ASSET_FEATURES_SCHEMA.names].sort_values(["asset_id", "ts"], ignore_index=True)


def read_inputs(lake: Lake) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The input tables (empty frames for absent silver tables) and their Delta versions."""
    frames, versions = {}, {}
    for layer, table in INPUT_TABLES:
        key = f"{layer}/{table}"
        if lake.exists(layer, table):
            versions[key] = lake.version(layer, table)
            frames[table] = lake.read_pandas(layer, table, version=versions[key])
        elif layer == "gold":
            raise FileNotFoundError(f"no table {key} in lake {lake.root}: run `refinery prep` first")
        else:
            frames[table] = pd.DataFrame({c: pd.Series(dtype="object") for c in schemas.columns(layer, table)})
    return frames, versions


def run_build_features(lake: Lake) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """Read, build, overwrite ``gold/asset_features``; returns (rows, new version, input versions)."""
    frames, versions = read_inputs(lake)
    rows = build_asset_features(frames["asset_health_hourly"], frames["work_orders"], frames["alarms"], frames["assets"])
    if unchanged(lake, rows):
        # Same rows as the current version: no new commit, so models and pipeline nodes that
        # read this version stay valid (and the local runner can reuse them).
        return rows, lake.version(*FEATURES_TABLE), versions
    # The table is derived as a whole, so its columns follow the code: a lake built before a
    # feature was added takes the new schema (older versions keep theirs).
    version = lake.overwrite(rows, *FEATURES_TABLE, replace_schema=True)
    return rows, version, versions


def unchanged(lake: Lake, rows: pd.DataFrame) -> bool:
    """True when ``gold/asset_features`` already holds exactly ``rows`` (NaNs compare equal)."""
    if not lake.exists(*FEATURES_TABLE):
        return False
    current = lake.read_arrow(*FEATURES_TABLE)
    new = lake.to_arrow(rows, *FEATURES_TABLE)
    if current.num_rows != new.num_rows or current.schema.names != new.schema.names:
        return False
    keys = [("asset_id", "ascending"), ("ts", "ascending")]
    return current.sort_by(keys).to_pandas().equals(new.sort_by(keys).to_pandas())


def report(rows: pd.DataFrame, version: int, versions: dict[str, int]) -> str:
    labelled = rows["label_failure"].notna()
    return (f"gold/asset_features version {version}: {len(rows)} rows, {rows['asset_id'].nunique()} assets, "
            f"{len(NUMERIC_FEATURES)} features; {int(labelled.sum())} labelled rows, "
            f"{int(rows.loc[labelled, 'label_failure'].sum())} within {DEFAULT_HORIZON_HOURS} h of a failure; "
            f"read {', '.join(f'{k}@{v}' for k, v in sorted(versions.items()))}")


def run(args: argparse.Namespace, settings) -> int:
    lake = Lake(settings.lake_uri)
    rows, version, versions = run_build_features(lake)
    print(report(rows, version, versions))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="build gold/asset_features (point-in-time features and labels)")
    p.add_argument("--lake", help="lake root (default from settings)")
    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Component entry point: ``python -m training.build_features --lake ...``."""
    from refinery.settings import load_settings

    parser = argparse.ArgumentParser(prog="training.build_features")
    parser.add_argument("--lake", required=True, help="lake root")
    args = parser.parse_args(argv)
    try:
        return run(args, load_settings(lake_uri=args.lake))
    except (ValueError, FileNotFoundError) as exc:
        print(f"training.build_features: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
