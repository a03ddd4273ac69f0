"""Point-in-time features and labels for assets observed as ordered series (pure pandas/numpy).

Every feature at row t of an entity is computed from rows <= t of that same entity only, so a
model trained on these features never sees the future. Windows count rows (cycles, samples), not
clock time: the series are assumed regularly sampled per entity.

What changes in the data:
- ``build_rolling_features`` adds, per input column and window, the rolling mean, std, min, max,
  least-squares slope and exponentially weighted mean, plus the last value and the deviation
  from the entity's own healthy baseline (mean of its first K rows), in the column's units or,
  on request, as a fraction of the baseline.
- ``RegimeNormalizer`` (fit on train, applied to any frame) adds a ``regime`` column found by
  clustering the operating settings and standardises each sensor with its regime's train
  mean and std.
- ``rul_labels`` / ``failure_within_horizon`` add the supervision targets.
- ``constant_columns`` names columns that carry no information on the train frame.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

DEFAULT_WINDOWS: tuple[int, ...] = (5, 10, 20, 30)
ROLLING_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "slope", "ewm", "mean_base_dev")
# Scale-free stats, asked for by name (not in the default set): fractions of the baseline's magnitude.
RELATIVE_STATS: tuple[str, ...] = ("mean_base_rel", "slope_rel", "std_rel")


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} not in frame (have {list(frame.columns)})")


def _sorted_positions(frame: pd.DataFrame, entity: str, time: str) -> np.ndarray:
    """Row positions that order the frame by (entity, time); duplicates are an error."""
    _require_columns(frame, [entity, time], "series key")
    if frame[time].isna().any():
        bad = frame.index[frame[time].isna()][0]
        raise ValueError(f"time column {time!r} is missing at row {bad!r}")
    order = np.lexsort((frame[time].to_numpy(), frame[entity].to_numpy()))
    keys = frame[[entity, time]].iloc[order]
    dup = keys.duplicated()
    if dup.any():
        ent, t = keys[dup].iloc[0]
        raise ValueError(f"duplicate row for {entity}={ent!r}, {time}={t!r}")
    return order


class _EntityWindow(BaseIndexer):
    """Precomputed [start, end) row bounds for a rolling window that never crosses entities."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self._start = start.astype("int64")
        self._end = end.astype("int64")

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        return self._start, self._end


def feature_names(
    columns: Sequence[str], windows: Sequence[int] = DEFAULT_WINDOWS, stats: Sequence[str] = ROLLING_STATS
) -> list[str]:
    """The feature columns ``build_rolling_features`` returns after its key and age columns."""
    names: list[str] = []
    for col in columns:
        names += [f"{col}__last", f"{col}__base_dev"]
        for w in windows:
            names += [f"{col}__w{int(w)}_{stat}" for stat in stats]
    return names


def build_rolling_features(
    frame: pd.DataFrame,
    entity: str,
    time: str,
    columns: Sequence[str],
    windows: Sequence[int] = DEFAULT_WINDOWS,
    baseline_rows: int = 10,
    stats: Sequence[str] = ROLLING_STATS,
) -> pd.DataFrame:
    """Rolling window features per entity, computed point-in-time.

    Returns a new frame with the same index and row order as ``frame``: the ``entity`` and
    ``time`` columns, ``age_rows`` (1 for an entity's first row), then for each input column
    ``c``: ``c__last``, ``c__base_dev`` (last value minus the baseline) and, per window ``w``
    and requested stat, ``c__w{w}_{stat}``. Stats: ``mean``, ``std`` (population; 0 for one
    row), ``min``, ``max``, ``slope`` (least squares against the row position, per row),
    ``ewm`` (exponentially weighted mean, span ``w``, over the entity's whole past),
    ``mean_base_dev`` (rolling mean minus the baseline) and, from ``RELATIVE_STATS``,
    ``mean_base_rel``, ``slope_rel`` and ``std_rel``: the deviation, slope and std as fractions
    of the baseline's magnitude (NaN while the baseline is 0), so that a 10 % drop reads the same
    on a large and a small machine. A window holds the ``w`` most recent
    rows of the entity (fewer at its start). The baseline is the mean of the entity's first
    ``baseline_rows`` rows; before that many rows exist it is the mean of the rows seen so
    far, so it never looks ahead. NaN inputs are skipped by mean/std/min/max/ewm and
    propagate into slope and baseline deviations.
    """
    if not windows:
        raise ValueError("windows must name at least one window length")
    for w in windows:
        if int(w) != w or w < 1:
            raise ValueError(f"window length must be a positive integer, got {w!r}")
    unknown = [st for st in stats if st not in ROLLING_STATS + RELATIVE_STATS]
    if unknown:
        raise ValueError(f"unknown rolling stat(s) {unknown}; choose from {list(ROLLING_STATS + RELATIVE_STATS)}")
    if baseline_rows < 1:
        raise ValueError(f"baseline_rows must be >= 1, got {baseline_rows!r}")
    _require_columns(frame, list(columns), "feature input")
    order = _sorted_positions(frame, entity, time)
    data = frame.iloc[order]
    values = data[list(columns)].astype("float64").reset_index(drop=True)
    codes = pd.factorize(data[entity], sort=False)[0]
    pos = pd.Series(codes).groupby(codes).cumcount().to_numpy(dtype="float64")  # 0-based row in entity
    row = np.arange(len(values), dtype="int64")
    group_start = row - pos.astype("int64")

    # Baseline: running mean of the first K rows, then frozen.
    in_base = np.broadcast_to((pos < baseline_rows)[:, None], values.shape)
    base_sum = values.where(in_base, 0.0).groupby(codes).cumsum().to_numpy()
    baseline = base_sum / np.minimum(pos + 1, baseline_rows)[:, None]
    vals = values.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(baseline != 0.0, 1.0 / np.abs(baseline), np.nan)
    wanted = set(stats) | {s.removesuffix("_rel") for s in stats if s in ("slope_rel", "std_rel")}
    if "slope" in wanted:
        # Centre each entity on its first value so the slope's sums stay small (no
        # cancellation); the centring itself only uses the entity's first row.
        centred = values - values.groupby(codes).transform("first")
        centred_t = centred.mul(pos, axis=0)

    per_window: dict[int, dict[str, np.ndarray]] = {}
    for w in (int(w) for w in windows):
        # One ungrouped pass whose windows stop at the entity's first row: the same result as
        # a groupby-rolling without pandas' per-group, per-column Python loop.
        window = _EntityWindow(np.maximum(row - w + 1, group_start), row + 1)
        roll = values.rolling(window, min_periods=1)
        got: dict[str, np.ndarray] = {}
        if {"mean", "mean_base_dev", "mean_base_rel"} & wanted:
            got["mean"] = roll.mean().to_numpy()
        if "std" in wanted:
            got["std"] = roll.std(ddof=0).to_numpy()
        if "min" in stats:
            got["min"] = roll.min().to_numpy()
        if "max" in stats:
            got["max"] = roll.max().to_numpy()
        if "slope" in wanted:
            n = np.minimum(pos + 1, w)[:, None]
            mean_y = centred.rolling(window, min_periods=1).mean().to_numpy()
            mean_ty = centred_t.rolling(window, min_periods=1).mean().to_numpy()
            mean_t = pos[:, None] - (n - 1) / 2.0
            var_t = np.where(n > 1, (n * n - 1) / 12.0, 1.0)
            got["slope"] = np.where(n > 1, (mean_ty - mean_t * mean_y) / var_t, 0.0)
        if "ewm" in stats:
            ewm = values.groupby(codes).ewm(span=w, adjust=True, ignore_na=True).mean()
            got["ewm"] = ewm.reset_index(level=0, drop=True).sort_index().to_numpy()
        if "mean_base_dev" in stats:
            got["mean_base_dev"] = got["mean"] - baseline
        if "mean_base_rel" in stats:
            got["mean_base_rel"] = (got["mean"] - baseline) * scale
        for stat in ("slope", "std"):
            if f"{stat}_rel" in stats:
                got[f"{stat}_rel"] = got[stat] * scale
        per_window[w] = got

    out: dict[str, np.ndarray] = {}
    for j, col in enumerate(columns):
        out[f"{col}__last"] = vals[:, j]
        out[f"{col}__base_dev"] = vals[:, j] - baseline[:, j]
        for w in (int(w) for w in windows):
            for stat in stats:
                out[f"{col}__w{w}_{stat}"] = per_window[w][stat][:, j]

    result = pd.DataFrame(out)
    result.insert(0, "age_rows", pos + 1)
    result.insert(0, time, data[time].to_numpy())
    result.insert(0, entity, data[entity].to_numpy())
    # Back to the caller's row order and index.
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    result = result.iloc[inverse]
    result.index = frame.index
    return result


def lagged_columns(frame: pd.DataFrame, columns: Sequence[str], lags: Sequence[int]) -> pd.DataFrame:
    """Time-lagged copies of ``columns`` for a single series whose row order is time order.

    Returns a new frame, same index, with ``{col}_lag{k}`` = the value ``k`` rows earlier (lag 0
    is the current value); the first ``max(lags)`` rows hold NaN where the past is unknown.
    """
    _require_columns(frame, list(columns), "lag input")
    for k in lags:
        if int(k) != k or k < 0:
            raise ValueError(f"lags must be integers >= 0, got {k!r}")
    return pd.DataFrame(
        {f"{col}_lag{int(k)}": frame[col].shift(int(k)) for col in columns for k in lags},
        index=frame.index,
    )


def constant_columns(frame: pd.DataFrame, columns: Sequence[str], rel_tol: float = 1e-8) -> list[str]:
    """Columns whose values do not vary on ``frame`` (std <= rel_tol * (|mean| + 1)), or all NaN."""
    _require_columns(frame, list(columns), "constant check")
    out = []
    for col in columns:
        s = frame[col].astype("float64")
        if s.notna().sum() == 0 or s.std(ddof=0) <= rel_tol * (abs(s.mean()) + 1.0):
            out.append(col)
    return out


@dataclass
class RegimeNormalizer:
    """Operating-regime clustering and per-regime sensor standardisation, fitted on train only.

    ``fit`` scales the setting columns (by their std, but at least ``scale_floor`` times their
    mean magnitude) and picks the number of regimes (unless
    ``n_regimes`` is given): KMeans for k in 2..``max_regimes``, keeping the k with the best
    silhouette if that silhouette is at least ``min_silhouette``, else one regime. Discrete
    operating conditions give tight, far-apart clusters (silhouette near 1 at the true k);
    noise around one operating point gives about 0.4 for any k, so it stays one regime. It
    then stores each sensor's mean and std per regime. ``transform`` adds a ``regime`` column and replaces each
    sensor by (value - regime mean) / regime std, with the train statistics; a sensor that is
    constant within a regime is only centred there.
    """

    setting_columns: Sequence[str]
    sensor_columns: Sequence[str]
    n_regimes: int | None = None
    max_regimes: int = 8
    min_silhouette: float = 0.8
    scale_floor: float = 0.01
    seed: int = 0
    max_fit_rows: int = 20_000
    silhouette_rows: int = 3_000
    regime_column: str = "regime"
    _kmeans: KMeans | None = field(default=None, init=False, repr=False)
    _setting_mean: np.ndarray | None = field(default=None, init=False, repr=False)
    _setting_scale: np.ndarray | None = field(default=None, init=False, repr=False)
    _mean: np.ndarray | None = field(default=None, init=False, repr=False)
    _std: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def fitted_regimes(self) -> int:
        if self._kmeans is None:
            raise ValueError("RegimeNormalizer is not fitted; call fit(train) first")
        return int(self._kmeans.n_clusters)

    def _scaled_settings(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[list(self.setting_columns)].to_numpy(dtype="float64")
        if np.isnan(x).any():
            col = list(self.setting_columns)[int(np.where(np.isnan(x))[1][0])]
            raise ValueError(f"operating setting {col!r} has missing values; regimes need all settings")
        return (x - self._setting_mean) / self._setting_scale

    def fit(self, train: pd.DataFrame) -> RegimeNormalizer:
        """Learn regimes and per-regime sensor statistics from the train frame."""
        _require_columns(train, [*self.setting_columns, *self.sensor_columns], "regime fit")
        if len(train) == 0:
            raise ValueError("cannot fit regimes on an empty train frame")
        if self.n_regimes is not None and self.n_regimes < 1:
            raise ValueError(f"n_regimes must be >= 1, got {self.n_regimes!r}")
        if not self.setting_columns:
            raise ValueError("setting_columns must name at least one operating setting")
        x = train[list(self.setting_columns)].to_numpy(dtype="float64")
        self._setting_mean = np.nanmean(x, axis=0)
        # A setting held at one value (say Mach 0.84 +- 0.0003) must not have its measurement
        # noise blown up to unit variance: its scale is at least 1% of its magnitude.
        scale = np.maximum(np.nanstd(x, axis=0), self.scale_floor * np.abs(self._setting_mean))
        self._setting_scale = np.where(scale > 0, scale, 1.0)
        xs = self._scaled_settings(train)
        # One thread: these fits are small, and OpenMP threads only fight other processes.
        with threadpool_limits(limits=1):
            return self._fit_scaled(train, xs)

    def _fit_scaled(self, train: pd.DataFrame, xs: np.ndarray) -> RegimeNormalizer:
        rng = np.random.default_rng(self.seed)
        sample = xs if len(xs) <= self.max_fit_rows else xs[rng.choice(len(xs), self.max_fit_rows, replace=False)]
        n_distinct = len(np.unique(np.round(sample, 9), axis=0))
        if self.n_regimes is not None:
            k = min(self.n_regimes, n_distinct)
            self._kmeans = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(sample)
        else:
            self._kmeans = self._choose_k(sample, n_distinct)
        labels = self._kmeans.predict(xs)
        sensors = train[list(self.sensor_columns)].to_numpy(dtype="float64")
        k = self._kmeans.n_clusters
        self._mean = np.zeros((k, sensors.shape[1]))
        self._std = np.ones((k, sensors.shape[1]))
        for r in range(k):
            block = sensors[labels == r]
            if len(block) == 0:
                continue
            self._mean[r] = np.nanmean(block, axis=0)
            std = np.nanstd(block, axis=0)
            self._std[r] = np.where(std > 1e-12 * (np.abs(self._mean[r]) + 1.0), std, 1.0)
        return self

    def _choose_k(self, sample: np.ndarray, n_distinct: int) -> KMeans:
        best, best_score = KMeans(n_clusters=1, n_init=1, random_state=self.seed).fit(sample), -1.0
        for k in range(2, min(self.max_regimes, n_distinct) + 1):
            km = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(sample)
            score = silhouette_score(sample, km.labels_, sample_size=min(self.silhouette_rows, len(sample)),
                                     random_state=self.seed)
            if score >= self.min_silhouette and score > best_score:
                best, best_score = km, float(score)
        return best

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with a ``regime`` column and sensors standardised per regime."""
        if self._kmeans is None:
            raise ValueError("RegimeNormalizer is not fitted; call fit(train) first")
        _require_columns(frame, [*self.setting_columns, *self.sensor_columns], "regime transform")
        with threadpool_limits(limits=1):
            labels = self._kmeans.predict(self._scaled_settings(frame)) if len(frame) else np.zeros(0, int)
        out = frame.copy()
        sensors = frame[list(self.sensor_columns)].to_numpy(dtype="float64")
        out[list(self.sensor_columns)] = (sensors - self._mean[labels]) / self._std[labels]
        out[self.regime_column] = labels.astype("int64")
        return out


def rul_labels(
    frame: pd.DataFrame,
    entity: str,
    time: str,
    cap: float | None = None,
    failure_time: Mapping | pd.Series | None = None,
) -> pd.Series:
    """Remaining useful life per row: failure time of its entity minus the row's time.

    Without ``failure_time`` every series is taken to run to failure at its last row (the
    run-to-failure training set). With it, each entity's failure time comes from the mapping
    (an entity missing from it is an error). ``cap`` clips the label from above (the piecewise
    linear target: early life counts as healthy).
    """
    _require_columns(frame, [entity, time], "RUL label")
    if cap is not None and not cap > 0:
        raise ValueError(f"RUL cap must be positive, got {cap!r}")
    if failure_time is None:
        end = frame.groupby(entity)[time].transform("max")
    else:
        ft = pd.Series(failure_time)
        missing = set(frame[entity].unique().tolist()) - set(ft.index.tolist())
        if missing:
            raise ValueError(f"failure_time has no entry for entity {sorted(missing, key=str)[0]!r}")
        end = frame[entity].map(ft)
    rul = (end - frame[time]).astype("float64")
    if (rul < 0).any():
        bad = frame.index[rul < 0][0]
        raise ValueError(f"row {bad!r} is after its entity's failure time (RUL {rul[bad]})")
    if cap is not None:
        rul = rul.clip(upper=cap)
    return rul.rename("rul")


def failure_within_horizon(
    frame: pd.DataFrame,
    entity: str,
    time: str,
    horizon: float,
    failure_time: Mapping | pd.Series | None = None,
) -> pd.Series:
    """1.0 where the entity fails within ``horizon`` after the row, 0.0 where it does not.

    ``failure_time`` maps entity -> failure time; NaN (or absent) means no failure was seen:
    such a series is censored, so rows within ``horizon`` of its last observation are NaN
    (unknown) rather than a false "healthy". Without ``failure_time`` every series runs to
    failure at its last row.
    """
    _require_columns(frame, [entity, time], "horizon label")
    if not horizon > 0:
        raise ValueError(f"horizon must be positive, got {horizon!r}")
    last = frame.groupby(entity)[time].transform("max")
    if failure_time is None:
        fail = last.astype("float64")
    else:
        fail = frame[entity].map(pd.Series(failure_time)).astype("float64")
    t = frame[time].astype("float64")
    label = pd.Series(np.where((fail - t) <= horizon, 1.0, 0.0), index=frame.index)
    censored = fail.isna()
    label[censored] = np.where((last[censored] - t[censored]) < horizon, np.nan, 0.0)
    if (t > fail).any():
        bad = frame.index[(t > fail).to_numpy()][0]
        raise ValueError(f"row {bad!r} is after its entity's failure time")
    return label.rename(f"fails_within_{horizon:g}")
