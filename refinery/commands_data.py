"""Data commands: ``ingest``, ``prep``, ``tables`` and the one-command ``demo``."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from data_prep import ingest, prep
from data_prep.fault_audit import audit_faults
from data_prep.lake import LAYERS, Lake


def lake_summary(lake: Lake) -> list[tuple[str, int, int]]:
    """(layer/table, rows, Delta version) for every table in the lake."""
    rows = []
    for layer in LAYERS:
        layer_dir = Path(lake.root) / layer
        if not layer_dir.is_dir():
            continue
        for table_dir in sorted(p for p in layer_dir.iterdir() if p.is_dir()):
            if lake.exists(layer, table_dir.name):
                data = lake.read_arrow(layer, table_dir.name, columns=[])
                rows.append((f"{layer}/{table_dir.name}", data.num_rows, lake.version(layer, table_dir.name)))
    return rows


def quarantine_by_rule(lake: Lake) -> list[tuple[str, str, int]]:
    """(table, rule, rows) for every quarantine table."""
    out = []
    qdir = Path(lake.root) / "quarantine"
    for table_dir in sorted(qdir.iterdir()) if qdir.is_dir() else []:
        q = lake.read_pandas("quarantine", table_dir.name, columns=["rule"])
        for rule, n in q["rule"].value_counts().sort_index().items():
            out.append((table_dir.name, rule, int(n)))
    return out


def print_summary(lake: Lake) -> None:
    print(f"\nLake {lake.root}")
    print(f"  {'table':<34} {'rows':>10} {'version':>8}")
    for name, n, version in lake_summary(lake):
        if not name.startswith("_meta"):
            print(f"  {name:<34} {n:>10} {version:>8}")
    print("\nQuarantined rows by rule")
    for table, rule, n in quarantine_by_rule(lake):
        print(f"  {table:<14} {rule:<28} {n:>8}")


def run_tables(args: argparse.Namespace, settings) -> int:
    lake = Lake(settings.lake_uri)
    if not Path(lake.root).is_dir():
        raise FileNotFoundError(f"lake not found: {settings.lake_uri}")
    print_summary(lake)
    return 0


def run_demo(args: argparse.Namespace, settings) -> int:
    """Simulate a small plant, ingest it, refine it, and print what the lake holds."""
    from data_prep.simulator import SimulationConfig, simulate
    from data_prep.spark_session import get_spark

    work = Path(args.workdir)
    if work.exists() and args.fresh:
        shutil.rmtree(work)
    landing, lake_root = work / "landing", work / "lake"
    started = time.perf_counter()
    print(f"[1/5] simulate {args.assets} assets x {args.days} days into {landing}")
    summary = simulate(landing, SimulationConfig(assets=args.assets, days=args.days, seed=args.seed, bad_fraction=args.bad_fraction))
    for line in summary.report():
        print(f"      {line}")
    print(f"[2/5] ingest into bronze ({lake_root})")
    spark = get_spark(settings)
    lake = Lake(lake_root, spark=spark)
    result = ingest.ingest(landing, lake)
    print(f"      batch {result.batch_id}: {result.files} files, {sum(result.rows_by_table.values())} rows")
    print("[3/5] refine bronze -> silver (+ quarantine) -> gold")
    refined = prep.prep(lake, spark)
    print(f"      silver +{sum(refined.silver_rows.values())} rows, quarantined {sum(refined.quarantined.values())}")
    print_summary(lake)
    audit = audit_faults(landing, lake)
    print("\nInjected faults and the rule that caught them")
    print(audit.to_string(index=False))
    train_demo_models(lake_root, settings)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; lake at {lake_root}")
    return 0


def train_demo_models(lake_root: Path, settings) -> None:
    """Build gold/asset_features, train, register and gate both models; print the champions."""
    from training.build_features import report, run_build_features
    from training.commands import champion_lines, train_and_gate
    from training.register import print_outcomes
    from training.train_maintenance import DEFAULT_MIN_IMPROVEMENT, add_arguments

    settings = settings.model_copy(update={"lake_uri": str(lake_root)})
    print("\n[4/5] build gold/asset_features")
    rows, version, versions = run_build_features(Lake(lake_root))
    print(f"      {report(rows, version, versions)}")
    print(f"[5/5] train, register and gate the models (MLflow {settings.resolved_mlflow_uri()})")
    defaults = argparse.ArgumentParser(add_help=False)
    add_arguments(defaults)
    for model in ("maintenance", "production"):
        args = defaults.parse_args([])
        args.model, args.min_improvement = model, DEFAULT_MIN_IMPROVEMENT
        print_outcomes(train_and_gate(settings, args))
    print("\nChampions and their test metrics next to the naive baselines")
    for line in champion_lines(settings.resolved_mlflow_uri()):
        print(line)


def register(sub: argparse._SubParsersAction) -> None:
    ingest.register(sub)
    prep.register(sub)
    t = sub.add_parser("tables", help="list the lake's tables with row counts and quarantine by rule")
    t.add_argument("--lake", help="lake root (default from settings)")
    t.set_defaults(func=run_tables)
    d = sub.add_parser("demo", help="simulate a small plant and run the whole flow on it")
    d.add_argument("--workdir", default=".refinery-demo", help="folder for the landing zone and the lake")
    d.add_argument("--assets", type=int, default=12)
    d.add_argument("--days", type=int, default=10)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--bad-fraction", type=float, default=0.02)
    d.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=True, help="start from an empty workdir")
    d.set_defaults(func=run_demo)
