"""Overhead of the training wrappers: ``train_regressor`` and ``log_trained_model`` against
plain ``lightgbm.train`` on the same data, parameters and early stopping, in one process.

    .venv/bin/python benchmarks/train_overhead.py [--rows 20000] [--features 50]

Prints seconds and ratios; the MLflow store is a SQLite file in a temporary folder.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.lgbm import LgbmParams, train_regressor  # noqa: E402
from training.tracking import EvalData, log_trained_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--features", type=int, default=50)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(args.rows, args.features)), columns=[f"f{i}" for i in range(args.features)])
    y = x["f0"] * 2 + np.sin(x["f1"] * 3) + rng.normal(0, 0.3, args.rows)
    cut = int(args.rows * 0.8)
    params = LgbmParams(max_rounds=500, early_stopping_rounds=50)

    t0 = time.perf_counter()
    raw = params.to_lightgbm() | {"objective": "regression", "metric": "rmse"}
    booster = lgb.train(raw, lgb.Dataset(x.iloc[:cut], y.iloc[:cut]), params.max_rounds,
                        valid_sets=[lgb.Dataset(x.iloc[cut:], y.iloc[cut:])],
                        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])
    t_raw = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = train_regressor(x.iloc[:cut], y.iloc[:cut], x.iloc[cut:], y.iloc[cut:], params)
    t_wrap = time.perf_counter() - t0
    same = booster.best_iteration == model.best_iteration and np.allclose(
        booster.predict(x.iloc[cut:], num_iteration=booster.best_iteration), model.predict(x.iloc[cut:]))

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        pred = model.predict(x.iloc[cut:])
        log = lambda: log_trained_model(  # noqa: E731
            uri, "overhead_model", model, input_example=x, params={}, metrics={"rmse": 1.0},
            eval_slice_id="bench", inputs={"gold.features": 1}, eval_data=EvalData(y.iloc[cut:].to_numpy(), pred),
            artifact_root=Path(tmp, "artifacts").as_uri())
        t0 = time.perf_counter()
        log()  # first call also creates the SQLite schema
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        log()
        t_log = time.perf_counter() - t0

    print(f"rows {args.rows}, features {args.features}, best iteration {model.best_iteration}")
    print(f"lightgbm.train                 {t_raw:7.3f} s")
    print(f"train_regressor                {t_wrap:7.3f} s   ratio {t_wrap / t_raw:5.2f} x   same model: {same}")
    print(f"log_trained_model (new store)  {t_first:7.3f} s   ratio {t_first / t_raw:5.2f} x training")
    print(f"log_trained_model (next)       {t_log:7.3f} s   ratio {t_log / t_raw:5.2f} x training")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
