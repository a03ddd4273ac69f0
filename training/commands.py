"""``refinery benchmark ...``: the public-data benchmarks, run through the training package.

Thin shell: parse flags, read the files, call the pure pipeline in ``training.benchmarks``,
print a table and, as the last line, one JSON object with the headline figures. Bad input
(missing file, bad subset, unparseable line) raises ValueError naming it; the CLI turns that
into a one-line error and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from training.lgbm import LgbmParams


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``features``, ``train``, ``promote``, ``rollback`` and ``benchmark`` (``cmapss``,
    ``softsensor``, ``ai4i``)."""
    register_lifecycle(subparsers)
    bench = subparsers.add_parser("benchmark", help="score the models on public benchmark data")
    sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")

    cm = sub.add_parser("cmapss", help="NASA C-MAPSS turbofan RUL (standard protocol)")
    cm.add_argument("--data", required=True, help="folder with train_/test_/RUL_<subset>.txt")
    cm.add_argument("--subset", default="FD001", help="FD001..FD004 (default FD001)")
    cm.add_argument("--rul-cap", type=float, default=125.0, help="cap of the train target (default 125)")
    cm.add_argument("--seeds", type=int, default=5, help="models averaged, each with its own validation units (default 5)")
    _threads_flag(cm)
    cm.set_defaults(func=run_cmapss_command)

    ss = sub.add_parser("softsensor", help="soft sensor on a Fortuna-format file (e.g. debutanizer)")
    ss.add_argument("--data", required=True, help="whitespace-separated file with a header line")
    ss.add_argument("--target", required=True, help="the column to predict, e.g. y")
    ss.add_argument("--lags", default="0,1,2,3,4", help="lags of every input column (default 0,1,2,3,4)")
    ss.add_argument(
        "--target-lags",
        default="1,2,3,4",
        help="past target readings used as inputs, each >= 1, or 'none' for inputs only (default 1,2,3,4)",
    )
    ss.add_argument(
        "--split",
        default="0.5,0.17,0.33",
        help="train,validation,test as row counts (e.g. 1200,400,790) or fractions (default 0.5,0.17,0.33)",
    )
    ss.add_argument("--seeds", type=int, default=3, help="models averaged (default 3)")
    _threads_flag(ss)
    ss.set_defaults(func=run_softsensor_command)

    ai = sub.add_parser("ai4i", help="AI4I 2020 machine-failure classification")
    ai.add_argument("--data", required=True, help="ai4i2020.csv")
    ai.add_argument("--alert-rate", type=float, default=0.05, help="fraction of rows allowed to alert (default 0.05)")
    ai.add_argument("--seeds", type=int, default=3, help="models averaged (default 3)")
    _threads_flag(ai)
    ai.set_defaults(func=run_ai4i_command)


def _threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="LightGBM threads (default 1; results do not depend on it, and on a busy machine "
        "more threads can be much slower)",
    )


def _params(defaults: LgbmParams, threads: int) -> LgbmParams:
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    return replace(defaults, num_threads=threads)


def _number_list(text: str, flag: str, kind: type = int, allow_none: bool = False) -> tuple:
    if allow_none and text.strip().lower() in ("none", ""):
        return ()
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{flag} is empty: {text!r}")
    return values


def _seeds(n: int) -> tuple[int, ...]:
    if n < 1:
        raise ValueError(f"--seeds must be >= 1, got {n}")
    return tuple(range(n))


def _print_table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    print("-" * len(title))
    for key, value in rows:
        if isinstance(value, float):
            value = f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
        print(f"  {key:<{width}}  {value}")


def _json_line(payload: dict[str, Any]) -> None:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in payload.items()}
    print(json.dumps(clean, sort_keys=False))


def run_cmapss_command(args: argparse.Namespace, settings: Any) -> int:
    from training.benchmarks.cmapss import CMAPSS_PARAMS, CmapssConfig, run_cmapss
    from training.benchmarks.readers import read_cmapss

    if not args.rul_cap > 0:
        raise ValueError(f"--rul-cap must be positive, got {args.rul_cap}")
    started = time.perf_counter()
    data = read_cmapss(args.data, args.subset)
    result = run_cmapss(data, CmapssConfig(
        rul_cap=args.rul_cap, seeds=_seeds(args.seeds), params=_params(CMAPSS_PARAMS, args.threads)
    ))
    seconds = time.perf_counter() - started
    _print_table(
        f"C-MAPSS {result.subset}: LightGBM on rolling features, target min(RUL, {args.rul_cap:g})",
        [
            ("train units", int(data.train["unit"].nunique())),
            ("test units", result.n_test_units),
            ("operating regimes (found on train)", result.n_regimes),
            ("sensors used", len(result.sensors)),
            ("sensors dropped (constant on train)", ", ".join(result.dropped_sensors) or "-"),
            ("features", result.n_features),
            ("seeds averaged", len(result.best_iterations)),
            ("best iterations", ", ".join(map(str, result.best_iterations))),
            ("validation RMSE (train units held out, capped)", result.valid_rmse),
            ("TEST RMSE (last cycle vs RUL file)", result.rmse),
            ("TEST PHM08 score", result.phm_score),
            ("published DCNN (Li et al. 2018) FD001 / FD003", "12.61 / 12.64"),
            ("seconds", seconds),
        ],
    )
    _json_line({
        "benchmark": "cmapss", "subset": result.subset, "rmse": round(result.rmse, 4),
        "phm_score": round(result.phm_score, 2), "n_test_units": result.n_test_units,
        "valid_rmse": round(result.valid_rmse, 4), "n_regimes": result.n_regimes, "seconds": round(seconds, 1),
    })
    return 0


def run_softsensor_command(args: argparse.Namespace, settings: Any) -> int:
    from training.benchmarks.readers import read_fortuna
    from training.benchmarks.softsensor import SOFTSENSOR_PARAMS, SoftSensorConfig, run_softsensor

    config = SoftSensorConfig(
        target=args.target,
        lags=_number_list(args.lags, "--lags"),
        target_lags=_number_list(args.target_lags, "--target-lags", allow_none=True),
        split=_number_list(args.split, "--split", float),
        seeds=_seeds(args.seeds),
        params=_params(SOFTSENSOR_PARAMS, args.threads),
    )
    started = time.perf_counter()
    frame = read_fortuna(args.data)
    result = run_softsensor(frame, config)
    seconds = time.perf_counter() - started
    _print_table(
        f"Soft sensor for {args.target!r}: LightGBM on time-lagged inputs, chronological split",
        [
            ("rows in file", len(frame)),
            ("input lags", ",".join(map(str, config.lags))),
            ("target lags (past readings as inputs)", ",".join(map(str, config.target_lags)) or "none"),
            ("train / validation / test rows", f"{result.n_train} / {result.n_valid} / {result.n_test}"),
            ("features", result.n_features),
            ("best iterations", ", ".join(map(str, result.best_iterations))),
            ("validation RMSE", result.valid_rmse),
            ("persistence RMSE (last reading)", result.persistence_rmse if result.persistence_rmse is not None else "-"),
            ("TEST RMSE", result.rmse),
            ("TEST R2", result.r2),
            ("seconds", seconds),
        ],
    )
    _json_line({
        "benchmark": "softsensor", "target": args.target, "rmse": round(result.rmse, 5), "r2": round(result.r2, 4),
        "valid_rmse": round(result.valid_rmse, 5), "n_test": result.n_test,
        "target_lags": list(config.target_lags), "seconds": round(seconds, 1),
    })
    return 0


def run_ai4i_command(args: argparse.Namespace, settings: Any) -> int:
    from training.benchmarks.ai4i import AI4I_PARAMS, Ai4iConfig, run_ai4i
    from training.benchmarks.readers import read_ai4i

    if not 0 < args.alert_rate <= 1:
        raise ValueError(f"--alert-rate must be in (0, 1], got {args.alert_rate}")
    started = time.perf_counter()
    frame = read_ai4i(args.data)
    result = run_ai4i(frame, Ai4iConfig(
        alert_rate=args.alert_rate, seeds=_seeds(args.seeds), params=_params(AI4I_PARAMS, args.threads)
    ))
    seconds = time.perf_counter() - started
    _print_table(
        "AI4I 2020 machine failure: LightGBM, chronological 60/20/20 split (leaky failure modes excluded)",
        [
            ("train / validation / test rows", f"{result.n_train} / {result.n_valid} / {result.n_test}"),
            ("failures in train / validation / test", " / ".join(map(str, result.positives))),
            ("features", ", ".join(result.features)),
            ("best iterations", ", ".join(map(str, result.best_iterations))),
            ("threshold (best F1 on validation)", result.threshold),
            ("TEST PR-AUC (average precision)", result.pr_auc),
            ("TEST F1 at that threshold", result.f1),
            ("TEST precision / recall", f"{result.precision:.4f} / {result.recall:.4f}"),
            (f"TEST recall with {result.alert_rate:.0%} of rows alerting", result.recall_at_alert_rate),
            ("test base rate", result.positives[2] / result.n_test),
            ("seconds", seconds),
        ],
    )
    _json_line({
        "benchmark": "ai4i", "pr_auc": round(result.pr_auc, 4), "f1": round(result.f1, 4),
        "recall_at_alert_rate": round(result.recall_at_alert_rate, 4), "alert_rate": result.alert_rate,
        "n_test": result.n_test, "seconds": round(seconds, 1),
    })
    return 0


# ----------------------------------------------------------------------------- model lifecycle
TRAINABLE = ("maintenance", "production")


def register_lifecycle(subparsers: argparse._SubParsersAction) -> None:
    """``features``, ``train``, ``promote`` and ``rollback``."""
    from training import build_features
    from training.train_maintenance import DEFAULT_MIN_IMPROVEMENT, add_arguments

    build_features.register(subparsers)
    tr = subparsers.add_parser("train", help="train a model, log it to MLflow, register it and run the champion gate")
    tr.add_argument("--lake", help="lake root (default from settings)")
    tr.add_argument("--model", required=True, choices=TRAINABLE, help="which model to train")
    add_arguments(tr)
    tr.add_argument("--min-improvement", type=float, default=DEFAULT_MIN_IMPROVEMENT,
                    help=f"gate margin on the evaluation metric (default {DEFAULT_MIN_IMPROVEMENT})")
    tr.set_defaults(func=run_train_command)
    pr = subparsers.add_parser("promote", help="move alias champion to a registered model version")
    pr.add_argument("--lake", help="lake root (locates the MLflow store; default from settings)")
    pr.add_argument("--model", required=True, help="registered model name, e.g. maintenance")
    pr.add_argument("--version", required=True, help="model version to promote")
    pr.set_defaults(func=run_promote_command)
    rb = subparsers.add_parser("rollback", help="move alias champion back to the previous champion")
    rb.add_argument("--lake", help="lake root (locates the MLflow store; default from settings)")
    rb.add_argument("--model", required=True, help="registered model name, e.g. maintenance")
    rb.set_defaults(func=run_rollback_command)


def train_and_gate(settings: Any, args: argparse.Namespace) -> list[Any]:
    """Train ``args.model``, register its version(s), run the gate; returns the gate outcomes."""
    from training import train_maintenance, train_production
    from training.register import gate, registration_records

    if args.min_improvement < 0 or not math.isfinite(args.min_improvement):
        raise ValueError(f"--min-improvement must be a finite number >= 0, got {args.min_improvement}")
    if args.model == "maintenance":
        result, logged = train_maintenance.train(settings, args)
        records = registration_records([(logged, train_maintenance.GATE_METRIC, True, result.metrics)])
    else:
        records = registration_records([(lv, train_production.GATE_METRIC, True, res.metrics)
                                        for res, lv in train_production.train(settings, args)])
    return gate(settings.resolved_mlflow_uri(), records, args.min_improvement)


def run_train_command(args: argparse.Namespace, settings: Any) -> int:
    from training.register import print_outcomes

    print_outcomes(train_and_gate(settings, args))
    return 0


def _check_model_exists(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        raise ValueError(f"no registered model {name!r} in {client.tracking_uri}") from None


def run_promote_command(args: argparse.Namespace, settings: Any) -> int:
    from training.tracking import mlflow_tracking, promote

    with mlflow_tracking(settings.resolved_mlflow_uri()) as client:
        _check_model_exists(client, args.model)
        outcome = promote(client, args.model, args.version)
    print(f"{args.model}: {outcome}")
    return 0


def run_rollback_command(args: argparse.Namespace, settings: Any) -> int:
    from training.tracking import mlflow_tracking, rollback

    with mlflow_tracking(settings.resolved_mlflow_uri()) as client:
        _check_model_exists(client, args.model)
        outcome = rollback(client, args.model)
    print(f"{args.model}: {outcome}")
    return 0 if outcome.promoted else 1


def champion_lines(tracking_uri: str, prefixes: Sequence[str] = TRAINABLE) -> list[str]:
    """One block per registered model whose name starts with one of ``prefixes``: its champion
    version and the champion's evaluation metrics next to the naive baseline's."""
    from training.tracking import CHAMPION, TAG_METRIC_PREFIX, mlflow_tracking

    lines = []
    with mlflow_tracking(tracking_uri) as client:
        models = sorted(m.name for m in client.search_registered_models() if m.name.startswith(tuple(prefixes)))
        for name in models:
            try:
                champ = client.get_model_version_by_alias(name, CHAMPION)
            except Exception:  # noqa: BLE001 - a model without a champion is reported, not fatal
                lines.append(f"  {name}: no {CHAMPION}")
                continue
            tags = {k[len(TAG_METRIC_PREFIX):]: float(v) for k, v in champ.tags.items() if k.startswith(TAG_METRIC_PREFIX)}
            lines.append(f"  {name}: {CHAMPION} version {champ.version}")
            for key in sorted(k for k in tags if not k.startswith("naive_")):
                naive = tags.get(f"naive_{key}")
                lines.append(f"    {key:<24} model {tags[key]:>10.4f}   naive {'n/a' if naive is None else f'{naive:.4f}':>10}")
    return lines
