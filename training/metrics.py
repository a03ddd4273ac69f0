"""Evaluation metrics for maintenance and quality models (pure numpy/pandas).

Each function takes true values and predictions (or scores) and returns a number; none of
them changes its inputs. Inputs of different lengths, or with missing values, are an error.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score


def _pair(y_true, y_pred, names: tuple[str, str] = ("y_true", "y_pred")) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype="float64").ravel()
    b = np.asarray(y_pred, dtype="float64").ravel()
    if len(a) != len(b):
        raise ValueError(f"{names[0]} has {len(a)} values but {names[1]} has {len(b)}")
    if len(a) == 0:
        raise ValueError(f"{names[0]} is empty")
    for name, v in zip(names, (a, b)):
        if not np.isfinite(v).all():
            raise ValueError(f"{name} has a missing or infinite value at position {int(np.flatnonzero(~np.isfinite(v))[0])}")
    return a, b


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((b - a) ** 2)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination (1 - SSE/SST); NaN when y_true is constant."""
    a, b = _pair(y_true, y_pred)
    sst = float(np.sum((a - a.mean()) ** 2))
    return float("nan") if sst == 0 else 1.0 - float(np.sum((b - a) ** 2)) / sst


def phm08_score(y_true, y_pred) -> float:
    """PHM08 asymmetric RUL score: sum of exp(-d/13)-1 (early, d<0) or exp(d/10)-1 (late, d>=0),
    d = predicted - true. Late predictions cost more than early ones."""
    a, b = _pair(y_true, y_pred)
    d = b - a
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def _binary(y_true, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true, dtype="float64").ravel()
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"{name} must hold 0/1 labels, got {y[bad][0]} at position {int(np.flatnonzero(bad)[0])}")
    return y


def pr_auc(y_true, score) -> float:
    """Area under the precision-recall curve as average precision; NaN without positives."""
    y, s = _pair(_binary(y_true), score, ("y_true", "score"))
    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, s))


def f1(y_true, y_pred_label) -> float:
    """F1 of the positive class for 0/1 predictions."""
    y, p = _pair(_binary(y_true), _binary(y_pred_label, "y_pred"))
    return float(f1_score(y, p, zero_division=0.0))


def alert_budget_threshold(score, alert_rate: float) -> float:
    """The score above which the top ``alert_rate`` fraction of rows raise an alert."""
    s = np.asarray(score, dtype="float64").ravel()
    if not 0.0 < alert_rate <= 1.0:
        raise ValueError(f"alert_rate must be in (0, 1], got {alert_rate!r}")
    k = max(1, math.ceil(alert_rate * len(s)))
    return float(np.sort(s)[::-1][k - 1])


def recall_at_alert_rate(y_true, score, alert_rate: float) -> float:
    """Recall when only the ``alert_rate`` fraction of rows with the highest scores alert
    (exactly ceil(rate * n) rows; ties broken by row order). NaN without positives."""
    y, s = _pair(_binary(y_true), score, ("y_true", "score"))
    if not 0.0 < alert_rate <= 1.0:
        raise ValueError(f"alert_rate must be in (0, 1], got {alert_rate!r}")
    if y.sum() == 0:
        return float("nan")
    k = max(1, math.ceil(alert_rate * len(s)))
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].sum() / y.sum())


def warning_lead_times(
    entity, time, score, failure_time: Mapping | pd.Series, threshold: float, max_lead: float | None = None
) -> pd.Series:
    """Per failure event: failure time minus the time of the first alert (score >= threshold)
    at or before the failure; NaN when the event got no alert.

    ``failure_time`` maps entity -> failure time (NaN: no failure, not an event). Only alerts
    within ``max_lead`` before the failure count when it is given, so an unrelated alarm long
    before does not pass for a warning.
    """
    frame = pd.DataFrame({"entity": np.asarray(entity), "time": np.asarray(time, dtype="float64"),
                          "score": np.asarray(score, dtype="float64")})
    if frame[["time", "score"]].isna().any().any():
        raise ValueError("time and score must not contain missing values")
    events = pd.Series(failure_time, dtype="float64").dropna()
    frame["fail"] = frame["entity"].map(events)
    window = frame["fail"].notna() & (frame["time"] <= frame["fail"])
    if max_lead is not None:
        window &= frame["time"] >= frame["fail"] - max_lead
    alerts = frame[window & (frame["score"] >= threshold)]
    first_alert = alerts.groupby("entity")["time"].min()
    lead = events - first_alert.reindex(events.index)
    return lead.rename("lead_time")


def median_warning_lead_time(
    entity, time, score, failure_time: Mapping | pd.Series, threshold: float, max_lead: float | None = None
) -> float:
    """Median warning lead time over failure events that got an alert; NaN when none did."""
    lead = warning_lead_times(entity, time, score, failure_time, threshold, max_lead).dropna()
    return float(lead.median()) if len(lead) else float("nan")
