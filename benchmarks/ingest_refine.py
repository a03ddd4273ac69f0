"""Ingest + full refinement against a plain copy of the same raw telemetry, in one process.

Simulates a plant (not timed), then times:
  baseline  read every landed telemetry record (event-log lines and historian rows) and write them
            to one Delta table with delta-rs: no parsing of bodies, no checks, no master data;
            once record by record (json/csv modules), once column-wise (pyarrow's JSON reader for
            the envelopes, historian rows kept as CSV lines): the stricter of the two;
  refinery  `ingest` (all sources to bronze) + `prep` (bronze -> silver with expectations,
            quarantine, dedup, unit conformance, MDM -> gold KPIs), into a fresh lake per prep
            engine: duckdb (the embedded default) and spark (local Spark, started and warmed
            outside the timing).
Prints telemetry rows per second and the cost ratio (refinery time / baseline time) per engine.
Target: ratio <= 3.

    .venv/bin/python benchmarks/ingest_refine.py [--assets 60 --days 30 --engine both --keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pj
from deltalake import write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep import ingest, prep  # noqa: E402
from data_prep.lake import Lake  # noqa: E402
from data_prep.simulator import SimulationConfig, simulate  # noqa: E402
from data_prep.spark_session import get_spark  # noqa: E402
from refinery.settings import Settings  # noqa: E402


def plain_copy(landing: Path, target: Path) -> int:
    """The baseline: every telemetry record as text into one Delta table, nothing checked."""
    rows: dict[str, list] = {"source_file": [], "line": [], "record": []}
    for path in sorted(landing.glob("eventhub/*/partition=*/*.jsonl")):
        rel = path.relative_to(landing).as_posix()
        with path.open() as fh:
            for i, line in enumerate(fh, 1):
                env = json.loads(line)
                rows["source_file"].append(rel)
                rows["line"].append(i)
                rows["record"].append(env["body"])
    for path in sorted(landing.glob("historian/*.csv")):
        rel = path.relative_to(landing).as_posix()
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for i, fields in enumerate(reader, 1):
                rows["source_file"].append(rel)
                rows["line"].append(i)
                rows["record"].append(json.dumps(dict(zip(header, fields))))
    write_deltalake(str(target), pa.table(rows), mode="overwrite")
    return len(rows["record"])


def plain_copy_arrow(landing: Path, target: Path) -> int:
    """The stricter baseline: the same copy, column-wise. Event bodies come out of the envelopes
    with pyarrow's JSON reader; historian rows are kept as their CSV lines (not even split)."""
    parts = []
    body_only = pj.ParseOptions(explicit_schema=pa.schema([("body", pa.string())]), unexpected_field_behavior="ignore")
    for path in sorted(landing.glob("eventhub/*/partition=*/*.jsonl")):
        bodies = pj.read_json(path, parse_options=body_only).column("body")
        parts.append(_file_rows(landing, path, bodies))
    for path in sorted(landing.glob("historian/*.csv")):
        lines = path.read_text().splitlines()[1:]
        parts.append(_file_rows(landing, path, pa.array(lines, pa.string())))
    data = pa.concat_tables(parts)
    write_deltalake(str(target), data, mode="overwrite")
    return data.num_rows


def _file_rows(landing: Path, path: Path, records: pa.Array | pa.ChunkedArray) -> pa.Table:
    n = len(records)
    rel = path.relative_to(landing).as_posix()
    return pa.table({"source_file": pa.array([rel] * n, pa.string()), "line": pa.array(range(1, n + 1), pa.int64()),
                     "record": records})


def run_refinery(landing: Path, root: Path, engine: str, n_plain: int) -> tuple[float, float, dict]:
    """Ingest + prep into a fresh lake at ``root`` on ``engine``; returns (ingest s, total s, step seconds)."""
    spark = None
    if engine == "spark":
        spark = get_spark(Settings(spark_master="local[*]"))
        spark.range(1000).count()  # JVM start and warm-up outside the timing
    lake = Lake(root, spark=spark)
    t0 = time.perf_counter()
    ing = ingest.ingest(landing, lake)
    t_ingest = time.perf_counter() - t0
    result = prep.prep(lake, spark)
    t_total = time.perf_counter() - t0
    n_bronze = ing.rows_by_table["telemetry"]
    assert n_bronze == n_plain, (n_bronze, n_plain)
    accounted = result.silver_rows["telemetry"] + result.quarantined["telemetry"]
    assert accounted == n_bronze, f"silver + quarantine = {accounted} != bronze {n_bronze}"
    print(f"  {engine}: silver {result.silver_rows['telemetry']}, quarantined {result.quarantined['telemetry']}; "
          "steps " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()), flush=True)
    return t_ingest, t_total, result.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--engine", choices=["duckdb", "spark", "both"], default="both",
                        help="prep engine(s) to time (settings.prep_engine; duckdb is the embedded default)")
    parser.add_argument("--keep", help="work folder to keep (default: a temporary one, removed)")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    landing = work / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    print(f"simulating {args.assets} assets x {args.days} days ...", flush=True)
    simulate(landing, SimulationConfig(assets=args.assets, days=args.days, seed=args.seed, bad_fraction=0.02))

    t0 = time.perf_counter()
    n_plain = plain_copy(landing, work / "plain_copy")
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_arrow = plain_copy_arrow(landing, work / "plain_copy_arrow")
    t_arrow = time.perf_counter() - t0
    assert n_arrow == n_plain, (n_arrow, n_plain)

    engines = ["duckdb", "spark"] if args.engine == "both" else [args.engine]
    timings = {}
    for engine in engines:
        shutil.rmtree(work / f"lake_{engine}", ignore_errors=True)
        timings[engine] = run_refinery(landing, work / f"lake_{engine}", engine, n_plain)

    print(f"\ntelemetry records: {n_plain}")
    print(f"{'path':<44} {'seconds':>8} {'rows/s':>10}")
    print(f"{'baseline: plain copy to Delta':<44} {t_plain:>8.1f} {n_plain / t_plain:>10.0f}")
    print(f"{'stricter baseline: column-wise plain copy':<44} {t_arrow:>8.1f} {n_plain / t_arrow:>10.0f}")
    summary = {"rows": n_plain, "baseline_rows_per_s": round(n_plain / t_plain), "arrow_baseline_rows_per_s": round(n_plain / t_arrow)}
    for engine, (t_ingest, t_total, _) in timings.items():
        print(f"{'refinery: ingest':<44} {t_ingest:>8.1f} {n_plain / t_ingest:>10.0f}")
        print(f"{f'refinery: ingest + refine + gold ({engine})':<44} {t_total:>8.1f} {n_plain / t_total:>10.0f}")
        summary[f"{engine}_rows_per_s"] = round(n_plain / t_total)
        summary[f"{engine}_cost_ratio"] = round(t_total / t_plain, 2)
        summary[f"{engine}_cost_ratio_vs_arrow_copy"] = round(t_total / t_arrow, 2)
    print()
    for engine in timings:
        print(f"cost ratio (refinery on {engine} / plain copy): {summary[f'{engine}_cost_ratio']:.2f}  (target <= 3); "
              f"against the column-wise copy: {summary[f'{engine}_cost_ratio_vs_arrow_copy']:.2f}")
    print(json.dumps(summary))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
