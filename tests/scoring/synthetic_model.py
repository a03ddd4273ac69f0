"""A registered ``maintenance`` model without a plant: synthetic feature rows shaped like
``gold/asset_features`` (the real model's input columns, some values missing), the two real
training calls (risk classifier, RUL regressor) and the real MLflow logging and promotion.

Used by the online-scoring tests and ``benchmarks/online_endpoint.py``; nothing here needs Spark.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.model_bundle import ModelBundle, truncated
from training import build_features as bf
from training.lgbm import LgbmParams, train_classifier, train_regressor
from training.train_maintenance import MODEL_NAME, model_features

FEATURES = model_features(bf.NUMERIC_FEATURES)


def synthetic_rows(n: int, seed: int = 0, missing: float = 0.03) -> pd.DataFrame:
    """``n`` rows of the maintenance model's feature columns (float64, ``missing`` share NaN)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[rng.random(x.shape) < missing] = np.nan
    return pd.DataFrame(x, columns=FEATURES)


def train_bundle(seed: int = 0, rows: int = 3000, max_rounds: int = 60, learning_rate: float = 0.1) -> ModelBundle:
    """A maintenance bundle (``failure_risk`` + ``rul_hours``) trained on synthetic rows whose
    labels depend on a few deviations and slopes; ``seed`` changes data and trees."""
    rng = np.random.default_rng(seed + 1000)
    x = synthetic_rows(rows, seed)
    signal = (np.nan_to_num(x[FEATURES[6]]) + 0.7 * np.nan_to_num(x[FEATURES[10]])
              - 0.5 * np.nan_to_num(x[FEATURES[30]]) + rng.normal(0, 0.5, rows))
    risk = (signal > 1.2).astype("float64")
    rul = np.clip(60.0 - 25.0 * signal + rng.normal(0, 5.0, rows), 0.0, bf.RUL_CAP_HOURS)
    cut = int(rows * 0.8)
    params = LgbmParams(learning_rate=learning_rate, num_leaves=15, max_rounds=max_rounds, seed=seed,
                        min_data_in_leaf=10, early_stopping_rounds=max(10, max_rounds // 5))
    clf = train_classifier(x[:cut], risk[:cut], x[cut:], risk[cut:], params, metric="binary_logloss")
    reg = train_regressor(x[:cut], rul[:cut], x[cut:], rul[cut:], params)
    return ModelBundle(MODEL_NAME, "maintenance", list(FEATURES),
                       {"failure_risk": truncated(clf.booster, clf.best_iteration),
                        "rul_hours": truncated(reg.booster, reg.best_iteration)},
                       {"horizon_hours": float(bf.DEFAULT_HORIZON_HOURS), "rul_cap_hours": float(bf.RUL_CAP_HOURS)})


def register(tracking_uri: str, bundle: ModelBundle, promote: bool = True, slice_id: str = "synthetic"):
    """Log ``bundle`` as a new version of ``maintenance`` (its risk booster as the run's model) and,
    when ``promote``, make it champion. Returns the ``LoggedVersion``."""
    from training.lgbm import TrainedModel
    from training.tracking import log_trained_model, mlflow_tracking
    from training.tracking import promote as promote_version

    booster = bundle.boosters["failure_risk"]
    model = TrainedModel(booster, list(bundle.features), "classification", booster.current_iteration(), {}, 0.0)
    logged = log_trained_model(tracking_uri, MODEL_NAME, model, input_example=synthetic_rows(5, seed=99),
                               params={"synthetic": True}, metrics={"pr_auc": 0.5}, eval_slice_id=slice_id,
                               inputs={"gold/asset_features": 0}, bundle=bundle)
    if promote:
        with mlflow_tracking(tracking_uri) as client:
            promote_version(client, MODEL_NAME, logged.version, "synthetic model for online scoring")
    return logged
