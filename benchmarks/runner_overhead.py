"""The local runner's own cost: a whole ``refinery pipeline run`` minus the time spent inside node commands.

Default: the real ``data_prep`` pipeline (ingest, Spark bronze->silver, Spark silver->gold) on a
freshly simulated plant. ``--synthetic``: a chain of nodes that only sleep, run once through the
runner and once as a bare loop of the same commands (the baseline, in this process).

The whole run is timed from before azure-ai-ml is imported to the end of the run, so it includes
what the console pays every time: importing azure-ai-ml, loading the component YAML files,
building the ``PipelineJob``, reuse keys, logs and run records. Target: overhead < 10% of the run.

    .venv/bin/python benchmarks/runner_overhead.py [--synthetic] [--nodes 6] [--node-seconds 2]
"""
# No `from __future__ import annotations`: azure-ai-ml reads the dsl pipeline annotation as an object.

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.10


def simulate_landing(landing: Path, assets: int, days: int) -> None:
    subprocess.run([sys.executable, "-m", "refinery.cli", "simulate", "--landing", str(landing),
                    "--assets", str(assets), "--days", str(days), "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)


def real_run(work: Path, assets: int, days: int) -> dict:
    landing, lake = work / "landing", work / "lake"
    simulate_landing(landing, assets, days)  # not timed: it only prepares the input
    t0 = time.perf_counter()
    from pipelines import definitions
    from pipelines.graph import graph_from_job
    from pipelines.runner import LocalRun

    job = definitions.build("data_prep", {"lake": str(lake), "landing": str(landing)})
    built = time.perf_counter() - t0
    record = LocalRun(graph_from_job(job), work / "runs", out=io.StringIO(), started=t0).run()
    whole = time.perf_counter() - t0
    return {"label": f"data_prep on a simulated plant ({assets} assets x {days} days)", "whole": whole,
            "inside": record["node_s"], "built": built, "nodes": len(record["nodes"]), "baseline": None}


def synthetic_run(work: Path, nodes: int, seconds: float) -> dict:
    import yaml

    code = work / "code"
    code.mkdir(parents=True)
    spec = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
        "type": "command", "name": "sleep", "version": "1", "code": ".", "environment": "azureml:bench:1",
        "is_deterministic": False,
        "command": f'python -c "import time; time.sleep({seconds})" ${{{{inputs.lake}}}}',
        "inputs": {"lake": {"type": "uri_folder", "mode": "direct"},
                   "after": {"type": "uri_folder", "mode": "direct", "optional": True}},
        "outputs": {"committed": {"type": "uri_folder", "mode": "direct"}},
    }
    (code / "sleep.yml").write_text(yaml.safe_dump(spec))
    (work / "lake").mkdir()

    t0 = time.perf_counter()
    from azure.ai.ml import Input, dsl, load_component

    from pipelines.components import quiet_azure_logs
    from pipelines.graph import graph_from_job
    from pipelines.runner import LocalRun

    quiet_azure_logs()
    sleep = load_component(source=str(code / "sleep.yml"))

    @dsl.pipeline(name="bench")
    def bench(lake: Input(type="uri_folder")):
        previous = None
        for i in range(nodes):
            step = sleep(lake=lake) if previous is None else sleep(lake=lake, after=previous.outputs.committed)
            step.name = f"step_{i + 1}"
            previous = step

    job = bench(lake=Input(type="uri_folder", path=str(work / "lake")))
    built = time.perf_counter() - t0
    record = LocalRun(graph_from_job(job), work / "runs", out=io.StringIO(), started=t0).run()
    whole = time.perf_counter() - t0

    b0 = time.perf_counter()  # baseline: the same commands, one after another, no runner
    for node in record["nodes"]:
        subprocess.run(node["command"], cwd=code, check=True, stdout=subprocess.DEVNULL)
    baseline = time.perf_counter() - b0
    return {"label": f"chain of {nodes} nodes sleeping {seconds:g} s", "whole": whole, "inside": record["node_s"],
            "built": built, "nodes": nodes, "baseline": baseline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="sleeping nodes instead of the real data_prep pipeline")
    parser.add_argument("--nodes", type=int, default=6, help="synthetic: number of nodes (default 6)")
    parser.add_argument("--node-seconds", type=float, default=2.0, help="synthetic: seconds each node sleeps (default 2)")
    parser.add_argument("--assets", type=int, default=5, help="real: simulated assets (default 5)")
    parser.add_argument("--days", type=int, default=3, help="real: simulated days (default 3)")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.node_seconds < 0:
        raise SystemExit(f"--nodes {args.nodes} / --node-seconds {args.node_seconds}: need at least one node and no negative time")

    work = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    try:
        result = synthetic_run(work, args.nodes, args.node_seconds) if args.synthetic else real_run(work, args.assets, args.days)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    overhead = result["whole"] - result["inside"]
    fraction = overhead / result["whole"]
    print(f"runner overhead: {result['label']}")
    print(f"  whole run (import, build, run, records)  {result['whole']:8.2f} s")
    print(f"  inside node commands                     {result['inside']:8.2f} s")
    print(f"  runner overhead                          {overhead:8.2f} s = {100 * fraction:.1f}% of the run "
          f"(target < {100 * TARGET:.0f}%: {'met' if fraction < TARGET else 'NOT met'})")
    print(f"    of which import azure-ai-ml + load components + build the PipelineJob  {result['built']:.2f} s")
    print(f"    the rest, per node (reuse key, subprocess, log, run record)          "
          f"{(overhead - result['built']) / result['nodes']:.3f} s")
    if result["baseline"] is not None:
        print(f"  baseline: the same commands as a bare subprocess loop {result['baseline']:8.2f} s; "
              f"runner / baseline = {result['whole'] / result['baseline']:.3f}")
    return 0 if fraction < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
