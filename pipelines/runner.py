"""The local runner: a pipeline's graph executed node by node on this machine, as AML would.

Each node's command (its component's, ports filled in) runs in a subprocess with the same Python
interpreter, in the component's code folder (the repository root). Outputs are bound to folders
under the run; inputs to pipeline parameters or upstream outputs. A deterministic node whose
reuse key matches an earlier run is reported as reused and not run. The first failing node
stops the run. Everything lands in ``<runs>/<run-id>/``: ``run.json`` (parameters, nodes,
status, durations, overhead), one log per node, the nodes' outputs.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from pipelines.components import LAKE_INPUT, ORDERING_PORTS
from pipelines.graph import DATA_TYPES, Graph, Node, node_inputs, render_command
from pipelines.reuse import ReuseCache, code_fingerprint, folder_fingerprint, reuse_key, table_versions

LOG_TAIL_LINES = 15


class NodeFailed(RuntimeError):
    """A node's command exited non-zero; the message names the node, the exit code and the log."""

    def __init__(self, node: str, exit_code: int, log: Path, tail: list[str]):
        self.node, self.exit_code, self.log, self.tail = node, exit_code, log, tail
        last = next((line for line in reversed(tail) if line.strip()), "")
        super().__init__(f"node {node!r} failed with exit code {exit_code}: {last.strip()} (log: {log})")


@dataclass
class NodeRecord:
    name: str
    component: str
    version: str
    status: str = "not_run"  # completed | reused | previous | failed | not_run
    started: str | None = None
    duration_s: float = 0.0
    command: list[str] = field(default_factory=list)
    log: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    reuse_key: str | None = None
    from_run: str | None = None
    exit_code: int | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(pipeline: str) -> str:
    return f"{pipeline}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def latest_run(runs_root: Path, pipeline: str) -> dict[str, Any] | None:
    """The most recent run record of ``pipeline`` under ``runs_root``."""
    records = []
    for path in runs_root.glob("*/run.json") if runs_root.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if record.get("pipeline") == pipeline:
            records.append(record)
    return max(records, key=lambda r: (r.get("started", ""), r.get("run_id", "")), default=None)


def _local_path(value: Any) -> Path | None:
    if isinstance(value, str) and "://" not in value and not value.startswith("azureml:"):
        return Path(value)
    return None


class LocalRun:
    """One execution of a graph; ``run()`` returns the run record (also written to run.json)."""

    def __init__(self, graph: Graph, runs_root: Path, *, from_node: str | None = None,
                 env: dict[str, str] | None = None, out: TextIO | None = None, started: float | None = None,
                 job_yaml: str | None = None):
        self.graph = graph
        self.job_yaml = job_yaml
        self.runs_root = runs_root
        self.env = env
        self.out = out or sys.stdout
        self.t0 = started if started is not None else time.perf_counter()
        self.rerun = graph.downstream_of(from_node) if from_node else list(graph.nodes)
        self.previous: dict[str, Any] | None = None
        if from_node:
            self.previous = latest_run(runs_root, graph.name)
            if self.previous is None:
                raise ValueError(f"--from {from_node}: no earlier run of pipeline {graph.name!r} under {runs_root}")
            self._check_previous()
        self.run_id = new_run_id(graph.name)
        self.run_dir = runs_root / self.run_id
        self.cache = ReuseCache(runs_root / "_reuse")
        self.records = {n: NodeRecord(n, node.component, node.version) for n, node in graph.nodes.items()}
        self.produced: dict[str, dict[str, str]] = {}
        self._code_fps: dict[Path, str] = {}
        self.record: dict[str, Any] = {
            "run_id": self.run_id, "pipeline": graph.name, "status": "running", "started": _now(),
            "from_node": from_node, "resumed_from": self.previous["run_id"] if self.previous else None,
            "parameters": graph.parameters, "python": sys.executable,
        }

    # ------------------------------------------------------------------ set-up
    def _check_previous(self) -> None:
        assert self.previous is not None
        earlier = {n["name"]: n for n in self.previous.get("nodes", [])}
        for name in self.graph.nodes:
            if name in self.rerun:
                continue
            node = earlier.get(name)
            if node is None or node.get("status") not in ("completed", "reused", "previous"):
                status = node.get("status") if node else "absent"
                raise ValueError(
                    f"--from {self.rerun[0]}: node {name!r} is {status} in run {self.previous['run_id']}, "
                    "so its outputs cannot be taken from there; run from an earlier node"
                )
            missing = [p for p in node.get("outputs", {}).values() if not Path(p).exists()]
            if missing:
                raise ValueError(f"--from {self.rerun[0]}: output {missing[0]} of node {name!r} no longer exists")

    # ------------------------------------------------------------------ per node
    def preflight(self) -> None:
        """Check every node to run: literal inputs and command, before anything runs (ValueError naming the node)."""
        for name in self.rerun:
            node = self.graph.nodes[name]
            render_command(node.name, node.template, node_inputs(self.graph, node), {p: f"<{p}>" for p in node.outputs})

    def _lake(self, inputs: dict[str, Any]) -> Path | None:
        return _local_path(inputs.get(LAKE_INPUT))

    def _key(self, node: Node, inputs: dict[str, Any]) -> str:
        if node.code_dir not in self._code_fps:
            skip = [self.runs_root] + ([self._lake(inputs)] if self._lake(inputs) else [])
            self._code_fps[node.code_dir] = code_fingerprint(node.code_dir, skip)
        literals: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for port, value in inputs.items():
            spec_type = node.input_specs[port].get("type")
            if port in ORDERING_PORTS:
                continue
            if spec_type not in DATA_TYPES:
                literals[port] = value
            elif value is None:
                data[port] = None
            elif port == LAKE_INPUT and (lake := _local_path(value)) is not None:
                data[port] = table_versions(lake, node.reads)
            elif (path := _local_path(value)) is not None:
                data[port] = folder_fingerprint(path)
            else:
                data[port] = str(value)  # a remote URI: its identity is all we can see
        return reuse_key(node.spec_text, self._code_fps[node.code_dir], literals, data)

    def _execute(self, node: Node, inputs: dict[str, Any], rec: NodeRecord) -> None:
        node_dir = self.run_dir / "nodes" / node.name
        outputs = {port: str(node_dir / "outputs" / port) for port in node.outputs}
        node_dir.mkdir(parents=True, exist_ok=True)
        for path in outputs.values():
            Path(path).mkdir(parents=True, exist_ok=True)
        argv = render_command(node.name, node.template, inputs, outputs)
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        log = node_dir / "log.txt"
        rec.command, rec.log, rec.outputs, rec.started = argv, str(log), outputs, _now()
        start = time.perf_counter()
        try:
            with open(log, "wb") as fh:
                proc = subprocess.run(argv, cwd=node.code_dir, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
            rec.exit_code = proc.returncode
        except OSError as exc:
            log.write_text(f"could not start {argv[0]}: {exc}\n")
            rec.exit_code = 127
        finally:
            rec.duration_s = round(time.perf_counter() - start, 3)
        if rec.exit_code != 0:
            rec.status = "failed"
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            raise NodeFailed(node.name, rec.exit_code, log, tail)
        rec.status = "completed"

    def _step(self, node: Node) -> None:
        rec = self.records[node.name]
        if node.name not in self.rerun:
            assert self.previous is not None
            earlier = next(n for n in self.previous["nodes"] if n["name"] == node.name)
            rec.status, rec.outputs = "previous", dict(earlier.get("outputs", {}))
            rec.from_run = earlier.get("from_run") or self.previous["run_id"]
            self.produced[node.name] = rec.outputs
            return
        inputs = node_inputs(self.graph, node, self.produced)
        forced = node.name == self.record["from_node"]
        if node.deterministic:
            rec.reuse_key = self._key(node, inputs)
            hit = None if forced else self.cache.get(rec.reuse_key, self._lake(inputs), node.writes)
            if hit is not None:
                rec.status, rec.outputs, rec.from_run = "reused", dict(hit["outputs"]), hit["run_id"]
                self.produced[node.name] = rec.outputs
                return
        try:
            self._execute(node, inputs, rec)
        except KeyboardInterrupt:
            rec.status = "failed"
            raise
        self.produced[node.name] = rec.outputs
        if node.deterministic and rec.reuse_key:
            self.cache.put(rec.reuse_key, self.run_id, node.name, rec.outputs, self._lake(inputs), node.writes)

    # ------------------------------------------------------------------ the run
    def _write_record(self) -> None:
        nodes = [asdict(r) for r in self.records.values()]
        node_s = sum(r["duration_s"] for r in nodes)
        wall = time.perf_counter() - self.t0
        self.record.update(
            nodes=nodes, wall_s=round(wall, 3), node_s=round(node_s, 3), overhead_s=round(wall - node_s, 3),
            overhead_fraction=round((wall - node_s) / wall, 4) if wall > 0 else 0.0,
        )
        path = self.run_dir / "run.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=1, default=str))
        tmp.replace(path)

    def _progress(self, i: int, node: Node) -> None:
        width = max(len(n) for n in self.graph.nodes)
        self.out.write(f"  [{i}/{len(self.graph.nodes)}] {node.name:<{width}}  ")
        self.out.flush()

    def _done(self, rec: NodeRecord) -> None:
        detail = {
            "completed": f"ok       {rec.duration_s:7.1f} s",
            "reused": f"reused   (run {rec.from_run})",
            "previous": f"skipped  (outputs of run {rec.from_run})",
            "failed": f"FAILED   {rec.duration_s:7.1f} s, exit code {rec.exit_code}",
        }[rec.status]
        self.out.write(detail + "\n")
        self.out.flush()

    def run(self) -> dict[str, Any]:
        self.preflight()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.job_yaml:
            (self.run_dir / "pipeline_job.yml").write_text(self.job_yaml)
        self.out.write(f"pipeline {self.graph.name}: run {self.run_id}\n")
        self._write_record()
        try:
            for i, node in enumerate(self.graph.nodes.values(), start=1):
                self._progress(i, node)
                try:
                    self._step(node)
                finally:
                    if self.records[node.name].status != "not_run":
                        self._done(self.records[node.name])
                    else:
                        self.out.write("\n")
                self._write_record()
        except NodeFailed as exc:
            self.record.update(status="failed", failed_node=exc.node, finished=_now())
            self._write_record()
            raise
        except BaseException:
            self.record.update(status="interrupted", finished=_now())
            self._write_record()
            raise
        self.record.update(status="completed", finished=_now())
        self._write_record()
        counts = {s: sum(r.status == s for r in self.records.values()) for s in ("completed", "reused", "previous")}
        self.out.write(
            f"pipeline {self.graph.name}: completed in {self.record['wall_s']:.1f} s "
            f"({counts['completed']} ran, {counts['reused']} reused, {counts['previous']} from the earlier run; "
            f"runner overhead {100 * self.record['overhead_fraction']:.1f}%); record {self.run_dir / 'run.json'}\n"
        )
        return self.record


def child_environment(config_file: str | None) -> dict[str, str] | None:
    """The environment node commands run with: this one, plus the settings file when one was given."""
    if not config_file:
        return None
    return {**os.environ, "REFINERY_CONFIG": str(Path(config_file).resolve())}
