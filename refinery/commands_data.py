"""Data commands: ``ingest``, ``prep``, ``tables`` and the one-command ``demo``."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from data_prep import ingest, prep  # noqa: F401  (their sub-commands register below)
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
    """Simulate a small plant, then run the end_to_end pipeline on it through the local runner.

    The runner executes the same component graph that `refinery pipeline submit end_to_end` sends
    to Azure ML: ingest, bronze to silver, silver to gold, features, both trainings, the gate.
    """
    from data_prep.simulator import SimulationConfig, simulate
    from pipelines.commands import run_pipeline
    from training.commands import champion_lines

    work = Path(args.workdir).resolve()
    if work.exists() and args.fresh:
        shutil.rmtree(work)
    landing, lake_root = work / "landing", work / "lake"
    started = time.perf_counter()
    print(f"[1/2] simulate {args.assets} assets x {args.days} days into {landing}")
    summary = simulate(landing, SimulationConfig(assets=args.assets, days=args.days, seed=args.seed, bad_fraction=args.bad_fraction))
    for line in summary.report():
        print(f"      {line}")
    print(f"[2/2] pipeline end_to_end on the local runner (lake {lake_root})")
    run_pipeline("end_to_end", str(lake_root), str(landing), config=args.config)
    lake = Lake(lake_root)
    print_summary(lake)
    print("\nInjected faults and the rule that caught them")
    print(audit_faults(landing, lake).to_string(index=False))
    print("\nChampions and their test metrics next to the naive baselines")
    for line in champion_lines(settings.model_copy(update={"lake_uri": str(lake_root)}).resolved_mlflow_uri()):
        print(line)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; lake at {lake_root}, run records in {work / 'runs'}")
    return 0


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
