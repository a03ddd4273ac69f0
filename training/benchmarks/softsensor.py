"""Soft-sensor benchmark: predict a quality variable from time-lagged process values (pure).

Protocol (the Fortuna debutanizer benchmark): each row is one sample in time order; inputs are
the process columns at lags 0..L and, unless disabled, earlier readings of the target itself
(the analyser's past values, lag >= 1, never the current one; the usual 13-input debutanizer
set includes y(t-1..4)); rows whose lags reach before the first sample are dropped; then
consecutive train / validation / test blocks, no shuffling. Early stopping and the seed
ensemble see train and validation only.

When past target readings are inputs, the models learn the change since the most recent one
(y_t - y_{t-k}, k the smallest target lag) and add it back: trees cannot extrapolate a level
outside the training range, but changes are far more stationary.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training import metrics
from training.features import lagged_columns
from training.lgbm import LgbmParams, train_regressor
from training.splits import split_by_counts

SOFTSENSOR_PARAMS = LgbmParams(
    learning_rate=0.03,
    num_leaves=15,
    min_data_in_leaf=20,
    feature_fraction=0.8,
    bagging_fraction=0.8,
    bagging_freq=1,
    lambda_l2=1.0,
    max_rounds=3000,
    early_stopping_rounds=100,
)


@dataclass(frozen=True)
class SoftSensorConfig:
    target: str
    lags: tuple[int, ...] = (0, 1, 2, 3, 4)
    target_lags: tuple[int, ...] = (1, 2, 3, 4)
    split: tuple[float, ...] = (0.5, 0.17, 0.33)  # fractions of usable rows, or row counts
    seeds: tuple[int, ...] = (0, 1, 2)
    params: LgbmParams = field(default_factory=lambda: SOFTSENSOR_PARAMS)


@dataclass
class SoftSensorResult:
    rmse: float
    r2: float
    valid_rmse: float
    n_train: int
    n_valid: int
    n_test: int
    n_features: int
    persistence_rmse: float | None  # last target reading as the prediction, if target lags used
    best_iterations: list[int]


def split_sizes(split: Sequence[float], n_rows: int) -> list[int]:
    """Row counts for train/validation/test from counts (all >= 1) or fractions (sum <= 1)."""
    if len(split) != 3:
        raise ValueError(f"split must give train,validation,test sizes, got {list(split)}")
    if all(float(s).is_integer() and s >= 1 for s in split):
        return [int(s) for s in split]
    if all(0 < s < 1 for s in split) and sum(split) <= 1.0 + 1e-9:
        counts = [int(np.floor(s * n_rows)) for s in split]
        if min(counts) < 1:
            raise ValueError(f"split {list(split)} leaves an empty block on {n_rows} rows")
        return counts
    raise ValueError(f"split {list(split)} must be three row counts >= 1 or three fractions in (0, 1) summing to <= 1")


def build_lagged_design(frame: pd.DataFrame, config: SoftSensorConfig) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features, target, baseline) over the rows whose lags are all known.

    The baseline is the most recent past target reading when target lags are used (the model
    predicts target - baseline), else zeros.
    """
    if config.target not in frame.columns:
        raise ValueError(f"target {config.target!r} is not a column (columns: {list(frame.columns)})")
    if not config.lags:
        raise ValueError("lags must name at least one lag of the inputs")
    if any(k < 1 for k in config.target_lags):
        raise ValueError(f"target lags must be >= 1 (lag 0 is the value being predicted), got {list(config.target_lags)}")
    inputs = [c for c in frame.columns if c != config.target]
    if not inputs:
        raise ValueError(f"no input columns besides the target {config.target!r}")
    parts = [lagged_columns(frame, inputs, config.lags)]
    if config.target_lags:
        parts.append(lagged_columns(frame, [config.target], config.target_lags))
    x = pd.concat(parts, axis=1)
    start = max([*config.lags, *config.target_lags])
    if len(frame) <= start:
        raise ValueError(f"{len(frame)} rows are too few for lags up to {start}")
    x = x.iloc[start:].reset_index(drop=True)
    y = frame[config.target].to_numpy(dtype="float64")[start:]
    if config.target_lags:
        base = x[f"{config.target}_lag{min(config.target_lags)}"].to_numpy(dtype="float64")
    else:
        base = np.zeros(len(y))
    return x, y, base


def run_softsensor(frame: pd.DataFrame, config: SoftSensorConfig) -> SoftSensorResult:
    """Fit one model per seed on the train block (early stopping on validation), average their
    predictions on the test block and score them against the target as given."""
    x, y, base = build_lagged_design(frame, config)
    n_tr, n_va, n_te = split_sizes(config.split, len(x))
    if n_tr + n_va + n_te > len(x):
        raise ValueError(
            f"split {n_tr},{n_va},{n_te} needs {n_tr + n_va + n_te} rows, only {len(x)} have all lags "
            f"({len(frame)} rows minus the first {len(frame) - len(x)})"
        )
    tr, va, te = split_by_counts(len(x), [n_tr, n_va, n_te])
    delta = y - base
    valid_preds, test_preds, iterations = [], [], []
    for seed in config.seeds:
        model = train_regressor(x.iloc[tr], delta[tr], x.iloc[va], delta[va], config.params.with_seed(seed))
        valid_preds.append(model.predict(x.iloc[va]) + base[va])
        test_preds.append(model.predict(x.iloc[te]) + base[te])
        iterations.append(model.best_iteration)
    pred = np.mean(test_preds, axis=0)
    return SoftSensorResult(
        rmse=metrics.rmse(y[te], pred),
        r2=metrics.r2(y[te], pred),
        valid_rmse=metrics.rmse(y[va], np.mean(valid_preds, axis=0)),
        n_train=len(tr),
        n_valid=len(va),
        n_test=len(te),
        n_features=x.shape[1],
        persistence_rmse=metrics.rmse(y[te], base[te]) if config.target_lags else None,
        best_iterations=iterations,
    )
