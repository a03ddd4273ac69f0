"""The champion/challenger gate over registered versions, and the records that carry them.

A training step registers a new model version and writes ``registration.json`` into its output
folder: per registered model, the name, version, run id, the gate metric, its direction and the
evaluation metrics. ``gate`` reads such records and runs ``training.tracking.promote_if_better``
for each: alias ``champion`` moves to the new version only when it beats the champion on the
same evaluation slice by at least the margin. Nothing in the lake changes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RECORD = "registration.json"


def registration_records(entries: Iterable[tuple[Any, str, bool, Mapping[str, float]]]) -> list[dict[str, Any]]:
    """Gate records for (LoggedVersion, gate metric, higher_is_better, metrics) entries; metrics
    that are not finite numbers (e.g. PR-AUC without positives) are left out."""
    return [{"model_name": lv.model_name, "version": lv.version, "run_id": lv.run_id, "model_uri": lv.model_uri,
             "metric": metric, "higher_is_better": higher,
             "metrics": {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}}
            for lv, metric, higher, metrics in entries]


def write_registration(folder: str | Path, entries: Iterable[tuple[Any, str, bool, Mapping[str, float]]]) -> Path:
    """Write ``registration.json`` (see ``registration_records``) into ``folder``."""
    records = registration_records(entries)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / RECORD).write_text(json.dumps(records, indent=1, sort_keys=True))
    return path / RECORD


def read_registration(folder: str | Path) -> list[dict[str, Any]]:
    path = Path(folder) / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"no {RECORD} in model folder {folder}: was it written by a training step?")
    return json.loads(path.read_text())


def gate(tracking_uri: str, records: Iterable[Mapping[str, Any]], margin: float) -> list[Any]:
    """``promote_if_better`` for each record; returns the outcomes in order."""
    from training.tracking import mlflow_tracking, promote_if_better

    outcomes = []
    with mlflow_tracking(tracking_uri) as client:
        for rec in records:
            outcomes.append(promote_if_better(client, rec["model_name"], rec["version"], rec["metric"],
                                              bool(rec["higher_is_better"]), margin, rec["metrics"]))
    return outcomes


def print_outcomes(outcomes: Iterable[Any]) -> None:
    for o in outcomes:
        print(f"  {o.model_name} version {o.version}: {o}")


def main(argv: Sequence[str] | None = None) -> int:
    """Component entry point: gate the versions recorded in the two model folders."""
    from refinery.settings import load_settings

    parser = argparse.ArgumentParser(prog="training.register")
    parser.add_argument("--lake", required=True, help="lake root (locates the MLflow store by default)")
    parser.add_argument("--maintenance_model", required=True, help="output folder of train_maintenance")
    parser.add_argument("--production_model", required=True, help="output folder of train_production")
    parser.add_argument("--min_improvement", type=float, default=0.01,
                        help="margin of the gate metric a challenger needs over the champion")
    args = parser.parse_args(argv)
    try:
        if not args.min_improvement >= 0:
            raise ValueError(f"--min_improvement must be >= 0, got {args.min_improvement}")
        settings = load_settings(lake_uri=args.lake)
        records = read_registration(args.maintenance_model) + read_registration(args.production_model)
        print_outcomes(gate(settings.resolved_mlflow_uri(), records, args.min_improvement))
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"training.register: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
