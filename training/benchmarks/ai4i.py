"""AI4I 2020 predictive-maintenance benchmark: classify ``Machine failure`` (pure).

Leakage rules: the failure-mode columns (TWF, HDF, PWF, OSF, RNF) are parts of the target and
the identifiers (UDI, Product ID) name rows, so none of them is ever a feature.

Split: chronological by row order (UDI order), 60% train / 20% validation / 20% test. Early
stopping, the decision threshold (best F1 on validation) and nothing else are chosen on
validation; the test block is scored once. Features: the product quality ``Type`` (L/M/H as
0/1/2), every other numeric column, and three physical combinations of them when their
columns exist: power (torque x angular speed, W), process-air temperature difference (K),
and tool wear x torque (min·Nm).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training import metrics
from training.lgbm import LgbmParams, train_classifier
from training.splits import split_by_counts

TARGET = "Machine failure"
LEAKY_COLUMNS = ("TWF", "HDF", "PWF", "OSF", "RNF")
ID_COLUMNS = ("UDI", "Product ID")
TYPE_CODES = {"L": 0, "M": 1, "H": 2}
AIR, PROCESS, SPEED, TORQUE, WEAR = (
    "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]",
)

AI4I_PARAMS = LgbmParams(
    learning_rate=0.03,
    num_leaves=15,
    min_data_in_leaf=10,
    feature_fraction=0.9,
    bagging_fraction=0.8,
    bagging_freq=1,
    lambda_l2=1.0,
    max_rounds=3000,
    early_stopping_rounds=200,
)


@dataclass(frozen=True)
class Ai4iConfig:
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    alert_rate: float = 0.05
    seeds: tuple[int, ...] = (0, 1, 2)
    params: LgbmParams = field(default_factory=lambda: AI4I_PARAMS)


@dataclass
class Ai4iResult:
    pr_auc: float
    f1: float
    recall_at_alert_rate: float
    alert_rate: float
    threshold: float
    precision: float
    recall: float
    n_train: int
    n_valid: int
    n_test: int
    positives: tuple[int, int, int]
    features: list[str]
    best_iterations: list[int]


def build_ai4i_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(features, 0/1 target): drops the target, leaky failure modes and identifiers, encodes
    ``Type``, and adds the physical combinations. Row order is kept."""
    if TARGET not in frame.columns:
        raise ValueError(f"column {TARGET!r} not found (columns: {list(frame.columns)})")
    y = pd.to_numeric(frame[TARGET], errors="coerce")
    bad = ~y.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{TARGET!r} must be 0 or 1; data row {i + 1} has {frame[TARGET].iloc[i]}")
    x = frame.drop(columns=[c for c in (TARGET, *LEAKY_COLUMNS, *ID_COLUMNS) if c in frame.columns])
    if "Type" in x.columns:
        codes = x["Type"].astype(str).str.strip().map(TYPE_CODES)
        if codes.isna().any():
            i = int(np.flatnonzero(codes.isna().to_numpy())[0])
            raise ValueError(f"unknown product Type {str(x['Type'].iloc[i])!r} in data row {i + 1} (expected L, M or H)")
        x["Type"] = codes.astype("int64")
    for col in x.columns:
        if not pd.api.types.is_numeric_dtype(x[col]):
            raise ValueError(f"column {col!r} is not numeric (e.g. {x[col].iloc[0]}); cannot use it as a feature")
    if {SPEED, TORQUE} <= set(x.columns):
        x["power [W]"] = x[TORQUE] * x[SPEED] * 2 * np.pi / 60
    if {AIR, PROCESS} <= set(x.columns):
        x["temperature difference [K]"] = x[PROCESS] - x[AIR]
    if {WEAR, TORQUE} <= set(x.columns):
        x["wear x torque [min Nm]"] = x[WEAR] * x[TORQUE]
    if x.shape[1] == 0:
        raise ValueError("no feature columns left after removing target, failure modes and identifiers")
    # LightGBM rejects some characters in feature names; keep readable names, mapped safely.
    x.columns = [str(c).replace("[", "(").replace("]", ")").replace(":", "") for c in x.columns]
    return x.reset_index(drop=True), y.to_numpy(dtype="float64")


def run_ai4i(frame: pd.DataFrame, config: Ai4iConfig = Ai4iConfig()) -> Ai4iResult:
    """Train one classifier per seed on the chronological train block, average the scores, pick
    the F1-best threshold on validation and report test PR-AUC, F1 and recall at the alert rate."""
    x, y = build_ai4i_features(frame)
    if not (len(config.fractions) == 3 and all(0 < f < 1 for f in config.fractions) and sum(config.fractions) <= 1 + 1e-9):
        raise ValueError(f"fractions must be three numbers in (0, 1) summing to <= 1, got {config.fractions!r}")
    counts = [int(np.floor(f * len(x))) for f in config.fractions]
    tr, va, te = split_by_counts(len(x), counts)
    for name, idx in (("train", tr), ("validation", va), ("test", te)):
        if y[idx].sum() == 0:
            raise ValueError(f"the {name} block ({len(idx)} rows) has no failures; use more data")
    valid_scores, test_scores, iterations = [], [], []
    for seed in config.seeds:
        model = train_classifier(x.iloc[tr], y[tr], x.iloc[va], y[va], config.params.with_seed(seed))
        valid_scores.append(model.predict(x.iloc[va]))
        test_scores.append(model.predict(x.iloc[te]))
        iterations.append(model.best_iteration)
    sv, st = np.mean(valid_scores, axis=0), np.mean(test_scores, axis=0)
    threshold = best_f1_threshold(y[va], sv)
    alerts = (st >= threshold).astype(float)
    tp = float((alerts * y[te]).sum())
    return Ai4iResult(
        pr_auc=metrics.pr_auc(y[te], st),
        f1=metrics.f1(y[te], alerts),
        recall_at_alert_rate=metrics.recall_at_alert_rate(y[te], st, config.alert_rate),
        alert_rate=config.alert_rate,
        threshold=threshold,
        precision=tp / alerts.sum() if alerts.sum() else float("nan"),
        recall=tp / y[te].sum(),
        n_train=len(tr),
        n_valid=len(va),
        n_test=len(te),
        positives=(int(y[tr].sum()), int(y[va].sum()), int(y[te].sum())),
        features=list(x.columns),
        best_iterations=iterations,
    )


def best_f1_threshold(y_true: np.ndarray, score: np.ndarray) -> float:
    """The score threshold (alert when score >= it) with the highest F1 on these rows."""
    order = np.argsort(-score, kind="stable")
    s, yt = score[order], y_true[order]
    tp = np.cumsum(yt)
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + yt.sum())
    # Only cut between distinct scores: alerting on part of a tie is not a threshold.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last_of_tie, f1, -1.0)
    return float(s[int(np.argmax(f1))])
