"""Data commands: ``ingest``, ``prep``, ``tables`` and the one-command ``demo``."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pandas as pd

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
    to Azure ML: ingest, bronze to silver, silver to gold, features, both trainings, the gate,
    batch scoring into gold.
    """
    from data_prep.simulator import SimulationConfig, simulate
    from pipelines.commands import run_pipeline
    from training.commands import champion_lines

    from scoring.serve import check_serve_python

    check_serve_python(settings.resolved_serve_python())  # fail now, not after the pipeline
    work = Path(args.workdir).resolve()
    if work.exists() and args.fresh:
        shutil.rmtree(work)
    landing, lake_root = work / "landing", work / "lake"
    started = time.perf_counter()
    print(f"[1/3] simulate {args.assets} assets x {args.days} days ({args.interval_minutes}-minute readings) into {landing}")
    summary = simulate(landing, SimulationConfig(assets=args.assets, days=args.days, seed=args.seed,
                                                 bad_fraction=args.bad_fraction, interval_minutes=args.interval_minutes))
    for line in summary.report():
        print(f"      {line}")
    print(f"[2/3] pipeline end_to_end on the local runner (lake {lake_root})")
    run_pipeline("end_to_end", str(lake_root), str(landing), config=args.config)
    lake = Lake(lake_root)
    print_summary(lake)
    print("\nInjected faults and the rule that caught them")
    print(audit_faults(landing, lake).to_string(index=False))
    print("\nChampions and their test metrics next to the naive baselines")
    for line in champion_lines(settings.model_copy(update={"lake_uri": str(lake_root)}).resolved_mlflow_uri()):
        print(line)
    print("\nBatch scoring in gold (score_batch step)")
    for line in scoring_lines(lake):
        print(line)
    demo_settings = settings.model_copy(update={"lake_uri": str(lake_root), "serve_dir": str(work / "serving")})
    print("\n[3/3] the champion on a local online endpoint (score.py under azureml-inference-server-http)")
    for line in endpoint_lines(demo_settings, lake, work / "serving.log"):
        print(line)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; lake at {lake_root}, run records in {work / 'runs'}")
    return 0


def scoring_lines(lake: Lake, top: int = 3) -> list[str]:
    """Rows per model version in the prediction tables, the riskiest assets at the latest hour
    and the largest recommended gains."""
    from scoring.batch_score import PREDICTIONS, RECOMMENDATIONS

    lines = []
    if lake.exists(*PREDICTIONS):
        preds = lake.read_pandas(*PREDICTIONS)
        for (name, version), n in preds.groupby(["model_name", "model_version"]).size().items():
            lines.append(f"  {'/'.join(PREDICTIONS)}: {n} rows from {name} version {version}")
        latest = preds[preds["ts"] == preds["ts"].max()].nlargest(top, "failure_risk")
        for r in latest.itertuples():
            lines.append(f"    {r.asset_id} at {r.ts:%Y-%m-%d %H:%M}: failure risk {r.failure_risk:.3f} within "
                         f"{r.horizon_hours:.0f} h, remaining life {r.rul_hours:.0f} h")
    if lake.exists(*RECOMMENDATIONS):
        recs = lake.read_pandas(*RECOMMENDATIONS)
        lines.append(f"  {'/'.join(RECOMMENDATIONS)}: {len(recs)} rows for {recs['unit_id'].nunique()} units")
        for r in recs.nlargest(top, "predicted_gain").itertuples():
            moves = ", ".join(f"{k} {dict(r.current_settings)[k]:.3g}->{v:.3g}" for k, v in dict(r.recommended_settings).items()
                              if abs(v - dict(r.current_settings)[k]) > 1e-9)
            lines.append(f"    {r.unit_id} at {r.ts:%Y-%m-%d %H:%M}: {r.target} +{r.predicted_gain:.3f} "
                         f"(band {r.band_low:.2f}..{r.band_high:.2f}) by {moves or 'keeping the settings'}")
    return lines or ["  no prediction tables"]


def endpoint_lines(settings, lake: Lake, log_path: Path, assets: int = 3) -> list[str]:
    """Start the local endpoint on a free port, send it the latest feature rows of a few assets
    and one request with a wrong type, and describe both answers; the server is stopped after."""
    import json
    import urllib.error
    import urllib.request

    from scoring.model_bundle import ModelBundle
    from scoring.serve import free_port, local_endpoint

    def post(url: str, doc: dict) -> tuple[int, dict]:
        req = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    lines = []
    with local_endpoint(settings, port=free_port(), poll_seconds=30, log_path=log_path) as ep:
        names = ModelBundle.load(ep.serve_dir / ep.current.path).features
        # Only the model's inputs: the feature table has many more columns than any request needs.
        features = lake.read_pandas("gold", "asset_features", columns=["asset_id", "ts", *names])
        latest = features.sort_values("ts").groupby("asset_id").tail(1).head(assets)
        rows = [{"asset_id": r["asset_id"], "ts": r["ts"].isoformat(),
                 **{f: (None if pd.isna(r[f]) else float(r[f])) for f in names}}
                for r in latest.to_dict("records")]
        lines.append(f"  serving {ep.current.name} version {ep.current.version} ({ep.current.alias}) at {ep.url}; "
                     f"server log {log_path}")
        status, body = post(ep.url, {"rows": rows})
        lines.append(f"  POST {len(rows)} rows -> {status}")
        for p in body.get("predictions", []):
            lines.append(f"    {p['asset_id']} at {p.get('ts')}: failure risk {p['failure_risk']:.3f}, "
                         f"remaining life {p['rul_hours']:.0f} h ({p['model_name']} v{p['model_version']})")
        bad = dict(rows[0], **{names[0]: "high"})
        status, body = post(ep.url, {"rows": [bad]})
        lines.append(f"  POST a row whose {names[0]} is a string -> {status}: {body.get('message', body)}")
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    ingest.register(sub)
    prep.register(sub)
    t = sub.add_parser("tables", help="list the lake's tables with row counts and quarantine by rule")
    t.add_argument("--lake", help="lake root (default from settings)")
    t.set_defaults(func=run_tables)
    d = sub.add_parser("demo", help="simulate a small plant and run the whole flow on it")
    d.add_argument("--workdir", default=".refinery-demo", help="folder for the landing zone and the lake")
    # 48 assets x 30 days at 30-minute readings: enough failures (~tens) that the maintenance
    # model's test slice is more than one event; 12 x 10 days gave 2-6 failures, so its PR-AUC
    # was chance (measured over 20 simulated plants, see issue 3's notes).
    d.add_argument("--assets", type=int, default=48)
    d.add_argument("--days", type=int, default=30)
    d.add_argument("--interval-minutes", type=int, default=30, help="sensor sampling interval of the simulated plant")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--bad-fraction", type=float, default=0.02)
    d.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=True, help="start from an empty workdir")
    d.set_defaults(func=run_demo)
