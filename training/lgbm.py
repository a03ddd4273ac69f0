"""LightGBM training with early stopping on an explicitly given validation slice (pure).

The validation slice decides when to stop; the test slice is never passed here. Training is
deterministic: fixed seed, ``deterministic=True``, fixed thread count and row-wise histograms,
so the same inputs give the same booster bit for bit.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LgbmParams:
    """Hyper-parameters shared by every model; ``extra`` passes any other LightGBM parameter."""

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_rounds: int = 2000
    early_stopping_rounds: int = 100
    seed: int = 0
    num_threads: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_seed(self, seed: int) -> LgbmParams:
        return replace(self, seed=seed)

    def to_lightgbm(self) -> dict[str, Any]:
        params = {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        params.update(self.extra)
        return params


@dataclass
class TrainedModel:
    """A booster plus what is needed to use it: its feature order, task and stopping round."""

    booster: lgb.Booster
    feature_names: list[str]
    task: Literal["regression", "classification"]
    best_iteration: int
    params: dict[str, Any]
    valid_score: float

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predictions (values, or positive-class probabilities) for rows of ``features``."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(f"features lack model input column(s) {missing[:5]}")
        return self.booster.predict(
            features[self.feature_names],
            num_iteration=self.best_iteration,
            num_threads=int(self.params.get("num_threads", 1)),
        )

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        gain = self.booster.feature_importance(importance_type="gain", iteration=self.best_iteration)
        return pd.Series(gain, index=self.feature_names, name="gain").sort_values(ascending=False)


def _check_inputs(
    x_train: pd.DataFrame, y_train: Any, x_valid: pd.DataFrame, y_valid: Any
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(x_train, pd.DataFrame) or not isinstance(x_valid, pd.DataFrame):
        raise ValueError("features must be pandas DataFrames (their columns name the model inputs)")
    if list(x_train.columns) != list(x_valid.columns):
        raise ValueError(
            f"validation columns differ from train columns: {sorted(set(x_train.columns) ^ set(x_valid.columns))[:5]}"
        )
    if len(x_train) == 0 or len(x_valid) == 0:
        raise ValueError(f"empty slice: {len(x_train)} train rows, {len(x_valid)} validation rows")
    y_tr = np.asarray(y_train, dtype="float64")
    y_va = np.asarray(y_valid, dtype="float64")
    if len(y_tr) != len(x_train) or len(y_va) != len(x_valid):
        raise ValueError(
            f"labels and features differ in length: train {len(y_tr)} vs {len(x_train)}, "
            f"validation {len(y_va)} vs {len(x_valid)}"
        )
    for name, y in (("train", y_tr), ("validation", y_va)):
        if not np.isfinite(y).all():
            raise ValueError(f"{name} labels have a missing or infinite value at position {int(np.flatnonzero(~np.isfinite(y))[0])}")
    # Slices cut from one frame keep its index, so shared labels mean shared rows; two frames
    # that were each re-indexed from 0 say nothing, and are not checked.
    fresh = all(isinstance(i, pd.RangeIndex) and i.start == 0 for i in (x_train.index, x_valid.index))
    shared = x_train.index.intersection(x_valid.index)
    if len(shared) and not fresh:
        raise ValueError(f"validation rows overlap train rows (e.g. index {shared[0]}); pass disjoint slices (or reset a repeated index)")
    return y_tr, y_va


def _fit(
    params: dict[str, Any],
    settings: LgbmParams,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    task: Literal["regression", "classification"],
    weight: np.ndarray | None,
) -> TrainedModel:
    train_set = lgb.Dataset(x_train, label=y_train, weight=weight, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, label=y_valid, reference=train_set)
    evals: dict[str, Any] = {}
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(settings.early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(evals),
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    metric_name = next(iter(evals["valid"]))
    return TrainedModel(
        booster=booster,
        feature_names=list(x_train.columns),
        task=task,
        best_iteration=int(best),
        params=params,
        valid_score=float(evals["valid"][metric_name][best - 1]),
    )


def monotone_vector(feature_names: Sequence[str], monotone: Mapping[str, int] | None) -> list[int]:
    """LightGBM's per-feature monotone list from a {column: +1/-1} mapping (0 elsewhere)."""
    monotone = dict(monotone or {})
    unknown = [c for c in monotone if c not in feature_names]
    if unknown:
        raise ValueError(f"monotone constraint on unknown feature(s) {unknown}")
    for col, sign in monotone.items():
        if sign not in (-1, 0, 1):
            raise ValueError(f"monotone constraint for {col!r} must be +1, -1 or 0, got {sign!r}")
    return [int(monotone.get(c, 0)) for c in feature_names]


def train_regressor(
    x_train: pd.DataFrame,
    y_train: Any,
    x_valid: pd.DataFrame,
    y_valid: Any,
    params: LgbmParams = LgbmParams(),
    objective: str = "regression",
    alpha: float | None = None,
    monotone: Mapping[str, int] | None = None,
    weight: Any = None,
) -> TrainedModel:
    """Fit a LightGBM regressor; stop when the validation loss has not improved for a while.

    ``objective="quantile"`` with ``alpha`` fits a quantile model; ``monotone`` maps feature
    names to +1 (prediction never decreases as the feature grows) or -1.
    """
    y_tr, y_va = _check_inputs(x_train, y_train, x_valid, y_valid)
    lgb_params = params.to_lightgbm()
    lgb_params["objective"] = objective
    if objective == "quantile":
        if alpha is None or not 0.0 < alpha < 1.0:
            raise ValueError(f"quantile objective needs alpha in (0, 1), got {alpha!r}")
        if monotone:
            raise ValueError("LightGBM does not support monotone constraints with the quantile objective")
        lgb_params["alpha"] = alpha
        lgb_params["metric"] = "quantile"
    else:
        lgb_params.setdefault("metric", "rmse" if objective == "regression" else objective)
    if monotone:
        lgb_params["monotone_constraints"] = monotone_vector(list(x_train.columns), monotone)
        lgb_params["monotone_constraints_method"] = "advanced"
    w = None if weight is None else np.asarray(weight, dtype="float64")
    return _fit(lgb_params, params, x_train, y_tr, x_valid, y_va, "regression", w)


def train_classifier(
    x_train: pd.DataFrame,
    y_train: Any,
    x_valid: pd.DataFrame,
    y_valid: Any,
    params: LgbmParams = LgbmParams(),
    imbalance: Literal["scale_pos_weight", "is_unbalance", "none"] = "scale_pos_weight",
    metric: str = "average_precision",
) -> TrainedModel:
    """Fit a binary LightGBM classifier with early stopping on validation ``metric``.

    Class imbalance: ``scale_pos_weight`` weighs positives by negatives/positives counted on
    the train slice; ``is_unbalance`` lets LightGBM do the same; ``none`` leaves it alone.
    Labels must be 0/1 and both classes must appear in train.
    """
    y_tr, y_va = _check_inputs(x_train, y_train, x_valid, y_valid)
    for name, y in (("train", y_tr), ("validation", y_va)):
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise ValueError(f"{name} labels must be 0 or 1, got {y[bad][0]}")
    n_pos = float(y_tr.sum())
    n_neg = float(len(y_tr) - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"train slice needs both classes, got {int(n_pos)} positives and {int(n_neg)} negatives")
    lgb_params = params.to_lightgbm()
    lgb_params.update({"objective": "binary", "metric": metric})
    if imbalance == "scale_pos_weight":
        lgb_params["scale_pos_weight"] = n_neg / n_pos
    elif imbalance == "is_unbalance":
        lgb_params["is_unbalance"] = True
    elif imbalance != "none":
        raise ValueError(f"imbalance must be scale_pos_weight, is_unbalance or none, got {imbalance!r}")
    return _fit(lgb_params, params, x_train, y_tr, x_valid, y_va, "classification", None)
