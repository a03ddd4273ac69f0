"""Production-configuration models and the safe settings recommender (pure).

``train_quality_models`` fits a LightGBM regressor of a quality or yield target from settings,
feed properties and lagged process values, with optional monotone constraints, plus two
quantile models for an uncertainty band. ``recommend`` searches for better settings only inside
the operating envelope: hard bounds per setting and a maximum step from the current value.
Whatever the model says, the returned settings never leave that envelope.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from training.features import lagged_columns
from training.lgbm import LgbmParams, TrainedModel, train_regressor


def quality_design(
    frame: pd.DataFrame,
    settings: Sequence[str],
    feed_properties: Sequence[str],
    process_values: Sequence[str],
    lags: Sequence[int] = (1, 2, 3),
) -> pd.DataFrame:
    """Model inputs for one unit's time-ordered rows: current settings and feed properties as
    they are, process values only at past lags (>= 1: the current ones are partly the result
    of the settings being chosen). Same index as ``frame``; early rows hold NaN lags."""
    if any(int(k) < 1 for k in lags):
        raise ValueError(f"process value lags must be >= 1, got {list(lags)}")
    overlap = set(settings) & (set(feed_properties) | set(process_values))
    if overlap:
        raise ValueError(f"column(s) {sorted(overlap)} cannot be both a setting and an input")
    missing = [c for c in (*settings, *feed_properties, *process_values) if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in frame")
    current = frame[[*settings, *feed_properties]].astype("float64")
    return pd.concat([current, lagged_columns(frame, process_values, lags)], axis=1)


@dataclass
class QualityModels:
    """A point model and optional lower/upper quantile models over the same features."""

    point: TrainedModel
    lower: TrainedModel | None = None
    upper: TrainedModel | None = None
    quantiles: tuple[float, float] | None = None

    @property
    def feature_names(self) -> list[str]:
        return self.point.feature_names

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.point.predict(features)

    def band(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per row; the point prediction on both sides without quantile models.
        Crossed quantiles are swapped so that low <= high."""
        if self.lower is None or self.upper is None:
            p = self.point.predict(features)
            return p, p
        lo = self.lower.predict(features)
        hi = self.upper.predict(features)
        return np.minimum(lo, hi), np.maximum(lo, hi)


def train_quality_models(
    x_train: pd.DataFrame,
    y_train,
    x_valid: pd.DataFrame,
    y_valid,
    monotone: Mapping[str, int] | None = None,
    quantiles: tuple[float, float] | None = (0.1, 0.9),
    params: LgbmParams = LgbmParams(),
) -> QualityModels:
    """Fit the point model (squared loss, with the ``monotone`` constraints) and, if ``quantiles``
    is given, one quantile model per alpha; all stop early on the validation slice.

    LightGBM refuses monotone constraints with the quantile objective, so the band models are
    unconstrained: the point prediction, which the recommender optimises, is the constrained one.
    """
    point = train_regressor(x_train, y_train, x_valid, y_valid, params, monotone=monotone)
    if quantiles is None:
        return QualityModels(point)
    lo_a, hi_a = quantiles
    if not 0.0 < lo_a < hi_a < 1.0:
        raise ValueError(f"quantiles must satisfy 0 < low < high < 1, got {quantiles!r}")
    lower = train_regressor(x_train, y_train, x_valid, y_valid, params, "quantile", lo_a)
    upper = train_regressor(x_train, y_train, x_valid, y_valid, params, "quantile", hi_a)
    return QualityModels(point, lower, upper, (lo_a, hi_a))


@dataclass(frozen=True)
class Envelope:
    """Safe operating envelope: hard (lo, hi) bounds and the largest allowed change per setting.

    Only settings named in ``bounds`` may be changed by a recommendation; each needs a step.
    """

    bounds: Mapping[str, tuple[float, float]]
    max_step: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.bounds:
            raise ValueError("envelope needs bounds for at least one setting")
        for name, pair in self.bounds.items():
            if len(pair) != 2:
                raise ValueError(f"bounds for setting {name!r} must be (lo, hi), got {pair!r}")
            lo, hi = (float(v) for v in pair)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"bounds for setting {name!r} must be finite, got {pair!r}")
            if lo > hi:
                raise ValueError(f"bounds for setting {name!r} have lo {lo} > hi {hi}")
        missing = [n for n in self.bounds if n not in self.max_step]
        if missing:
            raise ValueError(f"envelope has no max_step for setting(s) {missing}")
        extra = [n for n in self.max_step if n not in self.bounds]
        if extra:
            raise ValueError(f"max_step names setting(s) {extra} that have no bounds")
        for name, step in self.max_step.items():
            if not (math.isfinite(float(step)) and float(step) >= 0):
                raise ValueError(f"max_step for setting {name!r} must be a finite number >= 0, got {step!r}")

    @property
    def settings(self) -> list[str]:
        return list(self.bounds)

    def feasible_box(self, current: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """Per setting, the interval [lo, hi] ∩ [current - step, current + step].

        When the current value is so far outside the bounds that this is empty, the box is the
        single point nearest to it inside the bounds: the hard bounds win over the step limit.
        """
        box = {}
        for name, (lo, hi) in self.bounds.items():
            cur, step = float(current[name]), float(self.max_step[name])
            lo_e, hi_e = max(float(lo), cur - step), min(float(hi), cur + step)
            if lo_e > hi_e:
                proj = min(max(cur, float(lo)), float(hi))
                lo_e = hi_e = proj
            box[name] = (lo_e, hi_e)
        return box

    def contains(self, current: Mapping[str, float], proposed: Mapping[str, float]) -> bool:
        """True when ``proposed`` lies in the feasible box around ``current``."""
        box = self.feasible_box(current)
        return all(box[n][0] <= float(proposed[n]) <= box[n][1] for n in box)


@dataclass(frozen=True)
class Recommendation:
    """Settings to move to, the predicted gain over the current state, and the quantile band
    of the target at the recommended settings."""

    settings: dict[str, float]
    predicted_gain: float
    band: tuple[float, float]
    current_prediction: float
    predicted: float
    projected: list[str] = field(default_factory=list)  # settings that started outside bounds


def _validate_state(models: QualityModels, current_state: Mapping[str, float], envelope: Envelope) -> dict[str, float]:
    features = models.feature_names
    not_features = [n for n in envelope.settings if n not in features]
    if not_features:
        raise ValueError(f"envelope setting(s) {not_features} are not model features")
    missing = [f for f in features if f not in current_state]
    if missing:
        raise ValueError(f"current state lacks model feature(s) {missing}")
    state: dict[str, float] = {}
    for name in features:
        raw = current_state[name]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"current value of {name!r} is not a number: {raw!r}") from None
        if name in envelope.bounds and not math.isfinite(value):
            raise ValueError(f"current value of setting {name!r} is {raw!r}; a setting must be a finite number")
        state[name] = value
    return state


def recommend(
    models: QualityModels,
    current_state: Mapping[str, float],
    envelope: Envelope,
    direction: Literal["maximize", "minimize"] = "maximize",
    n_candidates: int = 512,
    refine_rounds: int = 2,
    seed: int = 0,
) -> Recommendation:
    """Best predicted settings inside the envelope around ``current_state``.

    Candidates are the corners and centre of the feasible box, the current (projected) point
    and seeded uniform samples; every candidate is scored in one vectorised predict, then the
    search shrinks around the best one for ``refine_rounds`` more rounds. Features that are
    not envelope settings stay at their current values. The gain is the predicted target at the
    recommendation minus the prediction at the current state (sign flipped when minimising),
    so a gain is always "better". If nothing beats the current (projected) settings, they are
    returned unchanged.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if n_candidates < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates!r}")
    state = _validate_state(models, current_state, envelope)
    names = envelope.settings
    box = envelope.feasible_box(state)
    lo = np.array([box[n][0] for n in names])
    hi = np.array([box[n][1] for n in names])
    projected = [n for n in names if not envelope.bounds[n][0] <= state[n] <= envelope.bounds[n][1]]
    start = np.clip(np.array([state[n] for n in names]), lo, hi)
    sign = 1.0 if direction == "maximize" else -1.0
    features = models.feature_names
    base_row = pd.DataFrame([state], columns=features)

    def score(candidates: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(np.repeat(base_row.to_numpy(), len(candidates), axis=0), columns=features)
        frame[names] = candidates
        return models.predict(frame)

    rng = np.random.default_rng(seed)
    best, best_value = start, float(score(start[None, :])[0])
    cur_lo, cur_hi = lo.copy(), hi.copy()
    for _ in range(refine_rounds + 1):
        corners = _corners(cur_lo, cur_hi, limit=64)
        samples = cur_lo + rng.random((n_candidates, len(names))) * (cur_hi - cur_lo)
        candidates = np.clip(np.vstack([best[None, :], (cur_lo + cur_hi)[None, :] / 2, corners, samples]), lo, hi)
        values = score(candidates)
        i = int(np.argmax(sign * values))
        if sign * values[i] > sign * best_value:
            best, best_value = candidates[i], float(values[i])
        half = (cur_hi - cur_lo) / 4.0
        cur_lo, cur_hi = np.maximum(lo, best - half), np.minimum(hi, best + half)

    best = np.clip(best, lo, hi)  # belt and braces: never outside the envelope
    current_value = float(score(np.array([[state[n] for n in names]]))[0])
    final = pd.DataFrame([state], columns=features)
    final[names] = best[None, :]
    low, high = models.band(final)
    settings = {n: float(v) for n, v in zip(names, best)}
    return Recommendation(
        settings=settings,
        predicted_gain=sign * (best_value - current_value),
        band=(float(low[0]), float(high[0])),
        current_prediction=current_value,
        predicted=best_value,
        projected=projected,
    )


def _corners(lo: np.ndarray, hi: np.ndarray, limit: int) -> np.ndarray:
    """All 2^d corners of the box for small d; for larger d only the all-low/all-high ones and
    one-setting-at-a-time moves (coordinate search)."""
    d = len(lo)
    if 2**d <= limit:
        bits = (np.arange(2**d)[:, None] >> np.arange(d)) & 1
        return np.where(bits == 1, hi, lo)
    mid = (lo + hi) / 2
    rows = [lo, hi]
    for j in range(d):
        for v in (lo[j], hi[j]):
            r = mid.copy()
            r[j] = v
            rows.append(r)
    return np.array(rows)

