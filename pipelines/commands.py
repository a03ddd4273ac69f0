"""``refinery pipeline run|validate|register|submit|schedule``: one pipeline definition, two worlds.

``run`` executes a pipeline's graph on this machine; ``validate`` checks every component and
pipeline offline; ``register``, ``submit`` and ``schedule`` send the same entities to the AML
workspace the settings name (or to a registry), through ``pipelines.aml_client``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from refinery.settings import Settings

# Replaced by a recorder in tests; everything that reaches Azure goes through what this returns.
def client_factory(settings: Settings, registry: str | None = None):
    from pipelines.aml_client import AmlClient

    return AmlClient.from_settings(settings, registry=registry)


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """``key=value`` texts as a dict; ValueError naming a pair without ``=`` or with an empty key."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {pair!r}: expected key=value")
        out[key.strip()] = value
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pipeline", help="run pipelines locally; validate, register, submit, schedule them on AML",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")

    def params(q: argparse.ArgumentParser) -> None:
        q.add_argument("name", help="pipeline: data_prep, training, batch_scoring or end_to_end")
        q.add_argument("--lake", help="lake root (default from settings)")
        q.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="pipeline parameter, e.g. --set horizon=14 --set landing=PATH (repeatable)")

    q = sub.add_parser("run", help="execute a pipeline's graph on this machine, node by node")
    params(q)
    q.add_argument("--from", dest="from_node", metavar="NODE",
                   help="resume: run NODE and what follows it, take the other nodes' outputs from the last run")
    q.add_argument("--runs", help="where run records go (default: <lake>/../runs)")
    q.set_defaults(func=run)

    q = sub.add_parser("validate", help="offline: load every component, check its contract, build every pipeline")
    q.add_argument("--compute", default="cpu-cluster", help="compute the command steps are validated against")
    q.set_defaults(func=validate)

    q = sub.add_parser("register", help="register environments, components and pipelines in the workspace or a registry")
    q.add_argument("--registry", help="AML registry name (default: the settings' workspace)")
    q.add_argument("--version", help="version for every component and pipeline (default: YAML versions; pipelines by content)")
    q.set_defaults(func=register_assets)

    q = sub.add_parser("submit", help="create a pipeline job in the AML workspace")
    params(q)
    q.add_argument("--compute", default="cpu-cluster", help="AML compute cluster for the command steps")
    q.add_argument("--experiment", help="experiment name (default refinery-<pipeline>)")
    q.set_defaults(func=submit)

    q = sub.add_parser("schedule", help="create or update a schedule that submits a pipeline on a cron expression")
    params(q)
    q.add_argument("--cron", required=True, help='five-field cron, e.g. "0 2 * * *" (02:00 every day)')
    q.add_argument("--time-zone", default="UTC", help="time zone of the cron expression (default UTC)")
    q.add_argument("--schedule-name", help="schedule name (default refinery-<pipeline>)")
    q.add_argument("--compute", default="cpu-cluster", help="AML compute cluster for the command steps")
    q.set_defaults(func=schedule)


def run_pipeline(name: str, lake: str, landing: str | None, overrides: dict[str, str] | None = None, *,
                 runs: str | None = None, from_node: str | None = None, config: str | None = None,
                 started: float | None = None) -> dict:
    """Build pipeline ``name`` as it would be submitted and execute its graph here; returns the run record.

    Raises ``NodeFailed`` at the first failing node (its log tail attached).
    """
    from pipelines import definitions
    from pipelines.graph import graph_from_job
    from pipelines.runner import LocalRun, child_environment

    if "://" in lake and not lake.startswith("file://"):
        raise ValueError(f"--lake {lake!r}: the local runner needs a local folder")
    lake = lake.removeprefix("file://")
    params = definitions.parameters(name)
    folders = {k: v for k, v in {"lake": lake, "landing": landing}.items() if k in params and v}
    job = definitions.build(name, definitions.resolve_parameters(name, folders, overrides or {}))
    runs_root = Path(runs) if runs else Path(lake).resolve().parent / "runs"
    local = LocalRun(graph_from_job(job), runs_root, from_node=from_node, env=child_environment(config),
                     started=started, job_yaml=str(job))
    return local.run()


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.perf_counter()
    from pipelines.runner import NodeFailed

    try:
        run_pipeline(args.name, settings.lake_uri, settings.landing_uri, parse_sets(args.set), runs=args.runs,
                     from_node=args.from_node, config=args.config, started=started)
    except NodeFailed as exc:
        print(f"--- last lines of {exc.log}", file=sys.stderr)
        for line in exc.tail:
            print(f"    {line}", file=sys.stderr)
        print(f"refinery pipeline run: error: {exc}", file=sys.stderr)
        return 1
    return 0


def validate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import publish

    report = publish.validate(compute=args.compute)
    print("\n".join(report.lines))
    for problem in report.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    if report.problems:
        print(f"refinery pipeline validate: error: {len(report.problems)} problem(s), first: {report.problems[0]}", file=sys.stderr)
        return 1
    return 0


def register_assets(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import publish

    client = client_factory(settings, registry=args.registry)
    for line in publish.register(client, version=args.version, registry=args.registry):
        print(f"  registered {line}")
    print(f"registered into {getattr(client, 'target', 'AML')}")
    return 0


def submit(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import publish

    job = publish.azure_job(args.name, settings, parse_sets(args.set), args.compute)
    created = publish.submit(client_factory(settings), job, args.experiment)
    print(f"submitted {args.name}: job {getattr(created, 'name', '?')} {getattr(created, 'studio_url', '') or ''}".rstrip())
    return 0


def schedule(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import publish

    job = publish.azure_job(args.name, settings, parse_sets(args.set), args.compute)
    planned = publish.job_schedule(job, args.cron, args.time_zone, args.schedule_name)
    publish.schedule(client_factory(settings), planned)
    print(f"scheduled {args.name} as {planned.name}: cron {planned.trigger.expression!r} ({planned.trigger.time_zone})")
    return 0
