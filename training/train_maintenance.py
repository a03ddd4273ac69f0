"""Train the maintenance models on ``gold/asset_features``: failure within a horizon, and RUL.

Nothing in the lake changes. The pure core (``split_maintenance``, ``train_maintenance_model``)
takes the feature rows and returns boosters and metrics next to naive baselines; the shell logs
the run to MLflow with the Delta version of the table read, registers the classifier as a new
version of ``maintenance`` and (from ``refinery train``) runs the champion/challenger gate.

Split, by asset and by time: a seeded, stratified share of the assets (assets with and without
failures held out separately) is the test slice, never seen in training; the other assets' rows
before the time cut train the models and their rows after it decide early stopping.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training import build_features as bf
from training.features import RELATIVE_STATS
from training.lgbm import LgbmParams, TrainedModel, train_classifier, train_regressor
from training.metrics import (
    alert_budget_threshold, median_warning_lead_time, pr_auc, recall_at_alert_rate, rmse,
)

MODEL_NAME = "maintenance"
GATE_METRIC = "pr_auc"
ALERT_RATE = 0.05
TEST_ASSET_FRACTION = 0.25
TIME_CUT_QUANTILE = 0.7
BASELINE_FEATURE = "temperature_1__w24_mean_base_dev"
DEFAULT_MIN_IMPROVEMENT = 0.01
MIN_POSITIVE_ROWS = 12


@dataclass(frozen=True)
class MaintenanceSplit:
    """Row masks of the three slices and the held-out assets (the evaluation slice's identity)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    test_assets: tuple[str, ...]
    cut: pd.Timestamp

    def test_mask_all(self, rows: pd.DataFrame) -> np.ndarray:
        """Rows of the held-out assets, labelled or not."""
        return rows["asset_id"].isin(self.test_assets).to_numpy()

    @property
    def slice_id(self) -> str:
        return f"assets:{','.join(self.test_assets)}"


@dataclass
class MaintenanceResult:
    classifier: TrainedModel
    rul: TrainedModel
    metrics: dict[str, float]
    baseline: dict[str, float]
    split: MaintenanceSplit
    design: pd.DataFrame = field(repr=False)
    test_scores: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)


RELATIVE_SUFFIXES = tuple(f"_{stat}" for stat in RELATIVE_STATS)


def model_features(columns: Sequence[str]) -> list[str]:
    """The feature columns the maintenance models use: per tag role, the deviation from the
    asset's healthy reference in its current maintenance cycle, the slope and the spread, all as
    fractions of that reference (``bf.CYCLE_FEATURES``), and alarm counts.

    Absolute levels, the asset's age in the data and its attributes are left out: with few
    failing assets they identify *which* asset failed rather than *what* a failing asset looks
    like (measured on a 12-asset, 30-day plant: PR-AUC 0.05-0.15 with them, 0.09-0.42 without).
    Deviations in the tags' units are left out too: the same 10 % flow loss is 40 m3/h on one
    pump and 500 m3/h on a compressor, so a split learnt on one asset misses it on the next;
    and a reference kept from the first hours of the data is stale after a repair or PM, or
    was taken while the asset was already degrading (measured on 20 simulated 36-asset, 30-day
    plants: PR-AUC 0.50 with these features, 0.47 with the deviations in units)."""
    return [c for c in columns if c.endswith(RELATIVE_SUFFIXES) or c.startswith("alarms_")]


def design_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Model inputs (see ``model_features``), as float64, same index as ``rows``."""
    return rows[model_features(bf.NUMERIC_FEATURES)].astype("float64")


def split_maintenance(rows: pd.DataFrame, seed: int, test_fraction: float = TEST_ASSET_FRACTION,
                      cut_quantile: float = TIME_CUT_QUANTILE) -> MaintenanceSplit:
    """Stratified asset hold-out plus a time cut over labelled rows (see the module docstring)."""
    labelled = rows["label_failure"].notna().to_numpy()
    # An asset counts as failing when at least MIN_POSITIVE_ROWS rows before a failure were
    # observed: a failure in the first hours of the data is no test of a warning.
    positives = rows.loc[rows["label_failure"] == 1.0, "asset_id"].value_counts()
    failing = set(positives[positives >= MIN_POSITIVE_ROWS].index)
    healthy = sorted(set(rows["asset_id"]) - failing)
    if len(failing) < 2:
        raise ValueError(f"need at least 2 assets with a failure to train and test, found {len(failing)} "
                         f"({', '.join(sorted(failing)) or 'none'}); simulate more days or assets")
    rng = np.random.default_rng(seed)
    held: list[str] = []
    for group in (sorted(failing), healthy):
        if not group:
            continue
        n = min(max(1, round(test_fraction * len(group))), len(group) - 1) if len(group) > 1 else 0
        held += [group[i] for i in sorted(rng.permutation(len(group))[:n])]
    is_test = rows["asset_id"].isin(held).to_numpy()
    cut = rows.loc[~is_test, "ts"].quantile(cut_quantile)
    before = (rows["ts"] < cut).to_numpy()
    return MaintenanceSplit(train=labelled & ~is_test & before, valid=labelled & ~is_test & ~before,
                            test=labelled & is_test, test_assets=tuple(sorted(held)), cut=cut)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def maintenance_metrics(rows: pd.DataFrame, score: np.ndarray, rul_pred: np.ndarray | None) -> dict[str, float]:
    """PR-AUC, recall at the alert budget, median warning lead time (hours) and RUL RMSE on ``rows``."""
    y = rows["label_failure"].to_numpy()
    t = bf.epoch_hours(rows["ts"]).to_numpy()
    life = (rows["asset_id"].astype(str) + "#" + rows["life"].astype(str)).to_numpy()
    fail = pd.Series(bf.epoch_hours(rows["next_failure_at"]).to_numpy(), index=life).groupby(level=0).first()
    out = {
        "pr_auc": pr_auc(y, score),
        "recall_at_alert_budget": recall_at_alert_rate(y, score, ALERT_RATE),
        "median_lead_time_h": median_warning_lead_time(life, t, score, fail, alert_budget_threshold(score, ALERT_RATE),
                                                       max_lead=bf.RUL_CAP_HOURS),
        "base_rate": float(np.mean(y)),
    }
    known = rows["label_rul_hours"].notna().to_numpy()
    if rul_pred is not None and known.any():
        out["rul_rmse_h"] = rmse(rows["label_rul_hours"].to_numpy()[known], rul_pred[known])
    return out


def train_maintenance_model(rows: pd.DataFrame, horizon_hours: float, params: LgbmParams) -> MaintenanceResult:
    """Relabel for ``horizon_hours``, split, train classifier and RUL regressor, evaluate both and
    the naive baselines (a threshold on one temperature deviation; the train-mean RUL) on test."""
    if not horizon_hours > 0:
        raise ValueError(f"horizon must be a positive number of hours, got {horizon_hours!r}")
    rows = rows.sort_values(["asset_id", "ts"], ignore_index=True)
    rows[["label_failure", "label_rul_hours"]] = bf.maintenance_labels(rows, horizon_hours)
    split = split_maintenance(rows, params.seed)
    x = design_matrix(rows)
    y = rows["label_failure"]
    for name, mask in (("train", split.train), ("validation", split.valid), ("test", split.test)):
        if not mask.any():
            raise ValueError(f"the {name} slice is empty (test assets {', '.join(split.test_assets)}, cut {split.cut})")
    # Early stopping watches the validation slice's PR-AUC, the figure the model is judged by
    # (log loss when that slice holds no failure window and PR-AUC is undefined). Unweighted: a
    # ranking needs no reweighting, and with positives weighted ~20x up the unweighted validation
    # log loss rose from the first rounds, so training stopped after a handful of trees
    # (20 simulated 48-asset, 30-day plants: PR-AUC 0.48, against 0.44 weighted on log loss).
    metric = "average_precision" if y[split.valid].sum() > 0 else "binary_logloss"
    clf = train_classifier(x[split.train], y[split.train], x[split.valid], y[split.valid], params,
                           imbalance="none", metric=metric)
    # Censored rows near the end of the data have no known RUL, so the RUL slices get their own
    # time cut, over the non-test rows whose RUL is known.
    known = rows["label_rul_hours"].notna().to_numpy() & ~split.test_mask_all(rows)
    rul_cut = rows.loc[known, "ts"].quantile(TIME_CUT_QUANTILE)
    rul_train = known & (rows["ts"] < rul_cut).to_numpy()
    rul_valid = known & (rows["ts"] >= rul_cut).to_numpy()
    rul = train_regressor(x[rul_train], rows.loc[rul_train, "label_rul_hours"], x[rul_valid],
                          rows.loc[rul_valid, "label_rul_hours"], params)
    test = rows[split.test]
    score = clf.predict(x[split.test])
    metrics = maintenance_metrics(test, score, rul.predict(x[split.test]))
    naive_score = np.nan_to_num(test[BASELINE_FEATURE].to_numpy(dtype="float64"), nan=0.0)
    naive_rul = np.full(len(test), float(rows.loc[rul_train, "label_rul_hours"].mean()))
    baseline = maintenance_metrics(test, naive_score, naive_rul)
    return MaintenanceResult(clf, rul, metrics, baseline, split, x, score, test["label_failure"].to_numpy())


def read_features(lake) -> tuple[pd.DataFrame, dict[str, int]]:
    """The feature rows at the table's current version, and that version."""
    layer, table = bf.FEATURES_TABLE
    if not lake.exists(layer, table):
        raise FileNotFoundError(f"no table {layer}/{table} in lake {lake.root}: run `refinery features` first")
    version = lake.version(layer, table)
    return lake.read_pandas(layer, table, version=version), {f"{layer}/{table}": version}


def format_metrics(metrics: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """One line per metric: model value next to the naive baseline's."""
    lines = []
    for key in metrics:
        m, b = metrics[key], baseline.get(key, float("nan"))
        fmt = (lambda v: "n/a" if v is None or not math.isfinite(v) else f"{v:.4f}")
        lines.append(f"  {key:<24} model {fmt(m):>10}   naive {fmt(b):>10}")
    return lines


def log_and_register(settings, result: MaintenanceResult, inputs: dict[str, int], params: LgbmParams,
                     horizon_hours: float):
    """Log the run (metrics, baseline metrics, input Delta versions) and register a new version."""
    from training.tracking import EvalData, log_trained_model

    bundle = maintenance_bundle(result, horizon_hours)
    metrics = {**_finite(result.metrics), **{f"naive_{k}": v for k, v in _finite(result.baseline).items()}}
    return log_trained_model(
        settings.resolved_mlflow_uri(), MODEL_NAME, result.classifier,
        input_example=result.design[result.split.test],
        params={"horizon_hours": horizon_hours, "seed": params.seed, "learning_rate": params.learning_rate,
                "num_leaves": params.num_leaves, "max_rounds": params.max_rounds, "alert_rate": ALERT_RATE,
                "test_assets": ",".join(result.split.test_assets), "time_cut": str(result.split.cut),
                "rul_best_iteration": result.rul.best_iteration},
        metrics=metrics, eval_slice_id=result.split.slice_id, inputs=inputs,
        eval_data=EvalData(result.test_labels, result.test_scores),
        tags={"model_kind": "maintenance", "horizon_hours": str(horizon_hours)}, bundle=bundle,
    )


def maintenance_bundle(result: MaintenanceResult, horizon_hours: float):
    """The served model: failure risk within the horizon and remaining useful life (hours,
    capped at the label cap) from the same feature row."""
    from scoring.model_bundle import ModelBundle, truncated

    return ModelBundle(
        MODEL_NAME, "maintenance", list(result.classifier.feature_names),
        {"failure_risk": truncated(result.classifier.booster, result.classifier.best_iteration),
         "rul_hours": truncated(result.rul.booster, result.rul.best_iteration)},
        {"horizon_hours": float(horizon_hours), "rul_cap_hours": float(bf.RUL_CAP_HOURS), "alert_rate": ALERT_RATE},
    )


def add_arguments(parser: argparse.ArgumentParser, horizon: bool = True) -> None:
    """The training flags, named as the component ports."""
    if horizon:
        parser.add_argument("--horizon", type=int, default=bf.DEFAULT_HORIZON_HOURS,
                            help="label horizon in hours: a row is positive when its asset fails within it")
    parser.add_argument("--seed", type=int, default=0, help="seed for the asset split and LightGBM")
    parser.add_argument("--learning_rate", type=float, default=0.05, help="LightGBM learning rate")
    parser.add_argument("--num_leaves", type=int, default=15, help="LightGBM leaves per tree")
    parser.add_argument("--max_rounds", type=int, default=500, help="upper bound on boosting rounds")


def params_from(args: argparse.Namespace) -> LgbmParams:
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not 0 < args.learning_rate <= 1:
        raise ValueError(f"--learning_rate must be in (0, 1], got {args.learning_rate}")
    if args.num_leaves < 2:
        raise ValueError(f"--num_leaves must be >= 2, got {args.num_leaves}")
    if args.max_rounds < 1:
        raise ValueError(f"--max_rounds must be >= 1, got {args.max_rounds}")
    return LgbmParams(learning_rate=args.learning_rate, num_leaves=args.num_leaves, max_rounds=args.max_rounds,
                      seed=args.seed, min_data_in_leaf=10, early_stopping_rounds=50)


def train(settings, args: argparse.Namespace) -> tuple[MaintenanceResult, object]:
    """Read features, train, print metrics beside the baseline, log and register. Returns (result, logged)."""
    from data_prep.lake import Lake

    params = params_from(args)
    rows, inputs = read_features(Lake(settings.lake_uri))
    result = train_maintenance_model(rows, float(args.horizon), params)
    logged = log_and_register(settings, result, inputs, params, float(args.horizon))
    print(f"maintenance: failure within {args.horizon} h; test assets {', '.join(result.split.test_assets)}; "
          f"read {', '.join(f'{k}@{v}' for k, v in inputs.items())}")
    for line in format_metrics(result.metrics, result.baseline):
        print(line)
    print(f"  registered {logged.model_name} version {logged.version} (run {logged.run_id})")
    return result, logged


def main(argv: Sequence[str] | None = None) -> int:
    """Component entry point: train, log, register a version, write the registration to --model."""
    from refinery.settings import load_settings
    from training.register import write_registration

    parser = argparse.ArgumentParser(prog="training.train_maintenance")
    parser.add_argument("--lake", required=True, help="lake root")
    add_arguments(parser)
    parser.add_argument("--model", required=True, help="output folder for the registered model's record")
    args = parser.parse_args(argv)
    try:
        result, logged = train(load_settings(lake_uri=args.lake), args)
        write_registration(args.model, [(logged, GATE_METRIC, True, result.metrics)])
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"training.train_maintenance: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
