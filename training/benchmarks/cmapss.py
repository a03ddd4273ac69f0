"""C-MAPSS remaining-useful-life benchmark under the standard protocol (pure).

1. Operating regimes are found on the train units only (``RegimeNormalizer``: the number of
   regimes is detected from the operating settings, so FD002/FD004 get six and FD001/FD003
   one) and every sensor is standardised per regime with train statistics; sensors that are
   then constant on train are dropped.
2. Point-in-time rolling features per unit (``build_rolling_features``) on train and test.
3. Target: min(RUL, cap) on train rows.
4. For each seed, a seeded fraction of the TRAIN units is held out for early stopping; the
   models of all seeds are averaged. No test row is used to train, stop or select anything.
5. One prediction per test unit at its last observed cycle, scored against the uncapped truth
   with RMSE and the PHM08 score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training import metrics
from training.benchmarks.readers import CMAPSS_SENSORS, CMAPSS_SETTINGS, CmapssSubset
from training.features import RegimeNormalizer, build_rolling_features, constant_columns, rul_labels
from training.lgbm import LgbmParams, train_regressor
from training.splits import split_by_entity

ENTITY, TIME = "unit", "cycle"

CMAPSS_PARAMS = LgbmParams(
    learning_rate=0.05,
    num_leaves=15,
    min_data_in_leaf=50,
    feature_fraction=0.5,
    bagging_fraction=0.8,
    bagging_freq=1,
    lambda_l2=1.0,
    max_rounds=3000,
    early_stopping_rounds=100,
    extra={"max_bin": 63},
)


@dataclass(frozen=True)
class CmapssConfig:
    """Defaults chosen by the mean validation RMSE over five seeded held-out sets of TRAIN units
    of FD001 and FD003 (window stats, baseline length, tree size); the test files played no part."""

    rul_cap: float = 125.0
    windows: tuple[int, ...] = (5, 10, 20, 30)
    stats: tuple[str, ...] = ("mean", "slope", "ewm", "mean_base_dev")
    baseline_rows: int = 40
    valid_fraction: float = 0.2
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    params: LgbmParams = field(default_factory=lambda: CMAPSS_PARAMS)


@dataclass
class CmapssResult:
    subset: str
    rmse: float
    phm_score: float
    n_test_units: int
    valid_rmse: float  # mean over seeds, capped target, all rows of the held-out train units
    n_regimes: int
    sensors: list[str]
    dropped_sensors: list[str]
    n_features: int
    best_iterations: list[int]
    predictions: pd.DataFrame  # unit, true_rul, predicted_rul


def prepare_cmapss_features(
    train: pd.DataFrame, test: pd.DataFrame, config: CmapssConfig
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], RegimeNormalizer, list[str]]:
    """(train features, test features, feature columns, fitted normaliser, sensors kept)."""
    normalizer = RegimeNormalizer(CMAPSS_SETTINGS, CMAPSS_SENSORS).fit(train)
    train_n, test_n = normalizer.transform(train), normalizer.transform(test)
    dropped = constant_columns(train_n, CMAPSS_SENSORS, rel_tol=1e-6)
    sensors = [c for c in CMAPSS_SENSORS if c not in dropped]
    if not sensors:
        raise ValueError("every sensor is constant on the train units; nothing to learn from")

    def features(frame: pd.DataFrame) -> pd.DataFrame:
        out = build_rolling_features(frame, ENTITY, TIME, sensors, config.windows, config.baseline_rows, config.stats)
        out[normalizer.regime_column] = frame[normalizer.regime_column].to_numpy()
        return out

    f_train, f_test = features(train_n), features(test_n)
    columns = [c for c in f_train.columns if c not in (ENTITY, TIME)]
    return f_train, f_test, columns, normalizer, sensors


def run_cmapss(data: CmapssSubset, config: CmapssConfig = CmapssConfig()) -> CmapssResult:
    """Train on ``data.train`` only and score the last cycle of every test unit."""
    train, test = data.train.reset_index(drop=True), data.test.reset_index(drop=True)
    f_train, f_test, columns, normalizer, sensors = prepare_cmapss_features(train, test, config)
    y = rul_labels(train, ENTITY, TIME, cap=config.rul_cap).to_numpy()
    last = f_test.sort_values([ENTITY, TIME]).groupby(ENTITY).tail(1)
    missing = sorted(set(last[ENTITY]) - set(data.test_rul.index))
    if missing:
        raise ValueError(f"test unit {missing[0]} has no true RUL")
    truth = data.test_rul.loc[last[ENTITY]].to_numpy()

    test_preds, valid_scores, iterations = [], [], []
    for seed in config.seeds:
        split = split_by_entity(f_train[ENTITY], config.valid_fraction, seed)
        tr, va = split.masks(f_train[ENTITY])
        model = train_regressor(
            f_train.loc[tr, columns], y[tr], f_train.loc[va, columns], y[va], config.params.with_seed(seed)
        )
        valid_scores.append(model.valid_score)
        iterations.append(model.best_iteration)
        test_preds.append(model.predict(last[columns]))
    pred = np.clip(np.mean(test_preds, axis=0), 0.0, None)
    return CmapssResult(
        subset=data.name,
        rmse=metrics.rmse(truth, pred),
        phm_score=metrics.phm08_score(truth, pred),
        n_test_units=len(truth),
        valid_rmse=float(np.mean(valid_scores)),
        n_regimes=normalizer.fitted_regimes,
        sensors=sensors,
        dropped_sensors=[c for c in CMAPSS_SENSORS if c not in sensors],
        n_features=len(columns),
        best_iterations=iterations,
        predictions=pd.DataFrame({ENTITY: last[ENTITY].to_numpy(), "true_rul": truth, "predicted_rul": pred}),
    )
