"""The Azure side: validate offline, register, submit and schedule, through one ``AmlClient``.

Entities are built here from the same component YAML files and ``@dsl.pipeline`` functions the
local runner uses; the client only sends them. On Azure the lake and landing parameters must be
storage URIs (``abfss://``, ``azureml://``, ``https://``): a local folder would be uploaded as data.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import definitions
from pipelines.components import COMPONENTS_DIR, REPO_ROOT, load_all, quiet_azure_logs
from pipelines.contract import check as check_contract
from pipelines.environments import drift, environment_files
from pipelines.graph import check_graph, graph_from_job

DEFAULT_COMPUTE = "cpu-cluster"
CODE_BUNDLE = COMPONENTS_DIR / "_bundle" / "refinery_code.zip"
BUNDLED_PACKAGES = ("refinery", "data_prep", "training", "scoring", "monitoring", "pipelines")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?$")
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_ENV_REF = re.compile(r"^(?:azureml:)?([\w.-]+):([\w.-]+)$")


# ---------------------------------------------------------------------------- validate
@dataclass
class Report:
    """What ``validate`` found: one line per component, pipeline and environment, and the problems."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate(compute: str | None = DEFAULT_COMPUTE) -> Report:
    """Load every component, check its contract, build and validate every pipeline, check environments.

    Offline: nothing is sent anywhere. The pipelines are built with placeholder storage URIs.
    """
    quiet_azure_logs()
    report = Report()
    components = definitions.catalog()
    report.lines.append(f"components ({len(components)}):")
    for name, component in components.items():
        problems = check_contract(component)
        report.problems += problems
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        report.lines.append(f"  {name:<26} v{component.version:<4} {component.type:<8} {status}")
    report.lines.append(f"pipelines ({len(definitions.PIPELINES)}):")
    for name in definitions.PIPELINES:
        folders = {p: f"azureml://datastores/workspaceblobstore/paths/refinery/{p}/"
                   for p, spec in definitions.parameters(name).items() if spec.is_folder}
        job = definitions.build(name, definitions.resolve_parameters(name, folders, {}))
        job.settings.default_compute = compute
        result = job._validate()  # azure-ai-ml's offline validation (schema, bindings, compute, Spark resources)
        errors = [f"pipeline {name}: {path}: {message}" for path, message in result.error_messages.items()]
        try:
            check_graph(graph_from_job(job))
        except ValueError as exc:
            errors.append(f"pipeline {name}: {exc}")
        report.problems += errors
        report.lines.append(f"  {name:<26} {len(job.jobs)} nodes: {', '.join(job.jobs)}  {'ok' if not errors else 'INVALID'}")
    env_problems = drift()
    report.problems += env_problems
    names = [p.stem for p in environment_files()]
    report.lines.append(f"environments ({len(names)}): {', '.join(names)}  {'ok' if not env_problems else 'DRIFT'}")
    return report


# ---------------------------------------------------------------------------- register
def build_code_bundle(path: Path | None = None) -> Path:
    """Zip the project's packages for Spark's ``py_files`` (serverless Spark puts it on the PYTHONPATH)."""
    path = path or CODE_BUNDLE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in BUNDLED_PACKAGES:
            for file in sorted((REPO_ROOT / package).rglob("*.py")):
                if "__pycache__" not in file.parts:
                    zf.write(file, file.relative_to(REPO_ROOT).as_posix())
    tmp.replace(path)
    return path


def environments() -> list[Any]:
    """Every environment of ``environments/`` as an azure-ai-ml ``Environment``."""
    from azure.ai.ml import load_environment

    return [load_environment(source=str(p)) for p in environment_files()]


def _registry_environment(reference: str, registry: str) -> str:
    match = _ENV_REF.match(str(reference))
    if not match:
        raise ValueError(f"environment reference {reference!r} is not azureml:<name>:<version>")
    return f"azureml://registries/{registry}/environments/{match.group(1)}/versions/{match.group(2)}"


def register(client: Any, version: str | None = None, registry: str | None = None) -> list[str]:
    """Register environments, then components, then pipelines (wired to the registered components).

    ``version`` replaces every component's and pipeline's version; without it components keep
    their YAML version and pipelines get one derived from what they wire. Returns what was sent.
    """
    quiet_azure_logs()
    build_code_bundle()
    sent = []
    for env in environments():
        client.create_environment(env)
        sent.append(f"environment {env.name}:{env.version}")
    registered: dict[str, Any] = {}
    for name, component in load_all(COMPONENTS_DIR).items():  # fresh copies: versions may be changed below
        if version:
            component.version = version
        if registry:
            component.environment = _registry_environment(component.environment, registry)
        registered[name] = client.create_component(component) or component
        sent.append(f"component {name}:{component.version}")
    for name in definitions.PIPELINES:
        pipeline = definitions.pipeline_component(name, registered, version)
        client.create_component(pipeline)
        sent.append(f"pipeline {pipeline.name}:{pipeline.version}")
    return sent


# ---------------------------------------------------------------------------- submit, schedule
def _remote(name: str, value: str) -> str:
    if "://" in value and not value.startswith("file://") or value.startswith("azureml:"):
        return value
    raise ValueError(
        f"pipeline parameter {name}={value!r} is a local folder; on Azure it must be a storage URI "
        "(abfss://..., azureml://datastores/..., https://...): set lake_uri/landing_uri or --set"
    )


def azure_job(name: str, settings: Any, overrides: dict[str, str], compute: str) -> Any:
    """The ``PipelineJob`` to send: parameters from settings and ``--set``, command steps on ``compute``."""
    params = definitions.parameters(name)
    folders = {"lake": settings.lake_uri, "landing": settings.landing_uri}
    values = definitions.resolve_parameters(name, {k: v for k, v in folders.items() if k in params}, overrides)
    for key, spec in params.items():
        if spec.is_folder:
            _remote(key, str(values[key]))
    job = definitions.build(name, values)
    check_graph(graph_from_job(job))
    if not compute:
        raise ValueError("--compute is empty; name the AML compute cluster for the command steps")
    job.settings.default_compute = compute
    return job


def submit(client: Any, job: Any, experiment: str | None = None) -> Any:
    """Create the pipeline job on AML; returns what the client returned (the created job)."""
    build_code_bundle()
    return client.submit_job(job, experiment or job.experiment_name)


def check_cron(expression: str) -> str:
    """A five-field cron expression (minute hour day month weekday); ValueError naming the bad field."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"--cron {expression!r}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    for text, (label, low, high) in zip(fields, _CRON_RANGES):
        for part in text.split(","):
            if not _CRON_FIELD.match(part):
                raise ValueError(f"--cron {expression!r}: {label} field {text!r} is not a number, range, list, step or *")
            numbers = [int(n) for n in re.findall(r"\d+", part.split("/")[0])]
            if any(n < low or n > high for n in numbers):
                raise ValueError(f"--cron {expression!r}: {label} field {text!r} is outside {low}..{high}")
    return " ".join(fields)


def job_schedule(job: Any, cron: str, time_zone: str = "UTC", schedule_name: str | None = None) -> Any:
    """A ``JobSchedule`` that submits ``job`` on ``cron``; ValueError naming a bad cron field."""
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    trigger = CronTrigger(expression=check_cron(cron), time_zone=time_zone)
    return JobSchedule(name=schedule_name or f"refinery-{job.display_name}", trigger=trigger, create_job=job)


def schedule(client: Any, job_schedule: Any) -> Any:
    """Create (or update) the schedule on AML."""
    build_code_bundle()
    return client.create_schedule(job_schedule)
