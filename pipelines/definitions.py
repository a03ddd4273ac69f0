"""The pipelines, as azure-ai-ml ``@dsl.pipeline`` functions: wiring only, no logic.

Every lake step takes the lake root as its ``lake`` input; a step that must wait for another's
Delta commits takes that step's ``committed`` output as its ``after`` input. The same
``PipelineJob`` these functions build is what ``refinery pipeline run`` executes locally and
what ``refinery pipeline submit`` sends to AML.
"""
# No `from __future__ import annotations`: azure-ai-ml reads the pipeline functions' annotations
# as objects (Input(...), int, float) to type the pipeline parameters.
import hashlib
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from pipelines.components import COMPONENTS_DIR, load_all, quiet_azure_logs

# AML serverless Spark for the Spark steps: Spark 3.5 runtime (Python 3.11, Java 17, Delta 3.2).
SPARK_RESOURCES = {"instance_type": "standard_e4s_v3", "runtime_version": "3.5"}


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """The components of ``components/``, loaded once per process."""
    return load_all(COMPONENTS_DIR)


def _spark(node: Any) -> Any:
    """Run a Spark node on serverless Spark (compute nodes use the pipeline's default compute)."""
    if node.type == "spark":
        node.resources = dict(SPARK_RESOURCES)
    return node


def _data_prep_steps(c: dict[str, Any], lake: Any, landing: Any) -> Any:
    """landing -> bronze -> silver (+ quarantine) -> gold; returns the last step."""
    ingest = c["ingest_landing"](landing=landing, lake=lake)
    silver = _spark(c["prep_lake"](lake=lake, stage="silver", after=ingest.outputs.committed))
    gold = _spark(c["prep_lake"](lake=lake, stage="gold", after=silver.outputs.committed))
    ingest.name, silver.name, gold.name = "ingest", "prep_silver", "prep_gold"
    return gold


def _training_steps(c: dict[str, Any], lake: Any, after: Any, horizon: Any, seed: Any, learning_rate: Any,
                    num_leaves: Any, max_rounds: Any, min_improvement: Any) -> Any:
    """features -> maintenance and production models -> evaluate, gate and register; returns the gate."""
    features = c["build_features"](lake=lake) if after is None else c["build_features"](lake=lake, after=after)
    hyper = dict(seed=seed, learning_rate=learning_rate, num_leaves=num_leaves, max_rounds=max_rounds)
    maintenance = c["train_maintenance_model"](lake=lake, horizon=horizon, after=features.outputs.committed, **hyper)
    production = c["train_production_model"](lake=lake, after=features.outputs.committed, **hyper)
    register = c["register_models"](
        lake=lake, maintenance_model=maintenance.outputs.model, production_model=production.outputs.model,
        min_improvement=min_improvement,
    )
    features.name, maintenance.name, production.name, register.name = (
        "build_features", "train_maintenance", "train_production", "register",
    )
    return register


def _scoring_step(c: dict[str, Any], lake: Any, after: Any, alias: Any, recent_hours: Any) -> Any:
    """Champion models -> gold predictions and recommendations."""
    kwargs = dict(lake=lake, alias=alias, recent_hours=recent_hours)
    step = c["score_batch"](**kwargs) if after is None else c["score_batch"](after=after, **kwargs)
    step.name = "score_batch"
    return step


def data_prep_pipeline(c: dict[str, Any]) -> Callable[..., Any]:
    from azure.ai.ml import Input, dsl

    @dsl.pipeline(name="data_prep", description="Landing files to bronze, silver (with quarantine) and gold.")
    def data_prep(lake: Input(type="uri_folder"), landing: Input(type="uri_folder")):
        _data_prep_steps(c, lake, landing)

    return data_prep


def training_pipeline(c: dict[str, Any]) -> Callable[..., Any]:
    from azure.ai.ml import Input, dsl

    @dsl.pipeline(name="training", description="Gold features to trained, gated and registered models.")
    def training(
        lake: Input(type="uri_folder"),
        horizon: int = 48, seed: int = 0, learning_rate: float = 0.05, num_leaves: int = 15,
        max_rounds: int = 500, min_improvement: float = 0.01,
    ):
        _training_steps(c, lake, None, horizon, seed, learning_rate, num_leaves, max_rounds, min_improvement)

    return training


def batch_scoring_pipeline(c: dict[str, Any]) -> Callable[..., Any]:
    from azure.ai.ml import Input, dsl

    @dsl.pipeline(name="batch_scoring", description="Champion models to gold predictions and recommendations.")
    def batch_scoring(lake: Input(type="uri_folder"), alias: str = "champion", recent_hours: int = 24):
        _scoring_step(c, lake, None, alias, recent_hours)

    return batch_scoring


def end_to_end_pipeline(c: dict[str, Any]) -> Callable[..., Any]:
    from azure.ai.ml import Input, dsl

    @dsl.pipeline(name="end_to_end",
                  description="Landing files to scored gold: data_prep, training, then batch_scoring.")
    def end_to_end(
        lake: Input(type="uri_folder"), landing: Input(type="uri_folder"),
        horizon: int = 48, seed: int = 0, learning_rate: float = 0.05, num_leaves: int = 15,
        max_rounds: int = 500, min_improvement: float = 0.01, alias: str = "champion", recent_hours: int = 24,
    ):
        gold = _data_prep_steps(c, lake, landing)
        gate = _training_steps(c, lake, gold.outputs.committed, horizon, seed, learning_rate, num_leaves, max_rounds,
                               min_improvement)
        _scoring_step(c, lake, gate.outputs.committed, alias, recent_hours)

    return end_to_end


PIPELINES: dict[str, Callable[[dict[str, Any]], Callable[..., Any]]] = {
    "data_prep": data_prep_pipeline,
    "training": training_pipeline,
    "batch_scoring": batch_scoring_pipeline,
    "end_to_end": end_to_end_pipeline,
}


@dataclass(frozen=True)
class Parameter:
    """One pipeline parameter: a folder (given as a path or URI) or a typed literal with a default."""

    name: str
    kind: str  # "uri_folder" | "int" | "float" | "str" | "bool"
    default: Any = None

    @property
    def is_folder(self) -> bool:
        return self.kind == "uri_folder"

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ValueError naming the parameter and the text."""
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                return text.lower() in ("true", "1")
        except ValueError:
            raise ValueError(f"--set {self.name}={text!r}: not a valid {self.kind}") from None
        return text


def pipeline_function(name: str, components: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The ``@dsl.pipeline`` function called ``name``, wired with ``components`` (default: ``catalog()``).

    ValueError names an unknown pipeline.
    """
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; expected one of {', '.join(PIPELINES)}")
    quiet_azure_logs()
    return PIPELINES[name](catalog() if components is None else components)


def parameters(name: str) -> dict[str, Parameter]:
    """The pipeline's parameters in signature order."""
    func = pipeline_function(name)
    out: dict[str, Parameter] = {}
    for param in inspect.signature(func).parameters.values():
        annotation = param.annotation
        if getattr(annotation, "type", None) == "uri_folder":
            out[param.name] = Parameter(param.name, "uri_folder")
        else:
            kind = {int: "int", float: "float", bool: "bool"}.get(annotation, "str")
            default = None if param.default is inspect.Parameter.empty else param.default
            out[param.name] = Parameter(param.name, kind, default)
    return out


def resolve_parameters(name: str, folders: dict[str, str], overrides: dict[str, str]) -> dict[str, Any]:
    """Pipeline parameter values from folder paths/URIs and ``--set key=value`` texts.

    ValueError names an override key the pipeline does not have, or a folder parameter left unset.
    """
    params = parameters(name)
    values: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in params:
            raise ValueError(f"--set {key}: pipeline {name!r} has no parameter {key!r}; it has {', '.join(params)}")
        values[key] = params[key].parse(text)
    for key, path in folders.items():
        if key in params and key not in values:
            values[key] = path
    for p in params.values():
        if p.is_folder and not values.get(p.name):
            raise ValueError(f"pipeline {name!r} needs folder parameter {p.name!r} (--set {p.name}=PATH)")
    return values


def _folder(value: Any) -> str:
    """A folder parameter as the job carries it: URIs as given, local folders made absolute."""
    text = str(value)
    return text if "://" in text or text.startswith("azureml:") else str(Path(text).resolve())


def build(name: str, values: dict[str, Any], components: dict[str, Any] | None = None) -> Any:
    """The ``PipelineJob`` for pipeline ``name`` with the given parameter values."""
    from azure.ai.ml import Input

    params = parameters(name)
    kwargs = {
        key: Input(type="uri_folder", path=_folder(value)) if params[key].is_folder else value
        for key, value in values.items()
    }
    job = pipeline_function(name, components)(**kwargs)
    job.display_name = name
    job.experiment_name = f"refinery-{name}"
    return job


def pipeline_component(name: str, components: dict[str, Any], version: str | None = None) -> Any:
    """Pipeline ``name`` as a ``PipelineComponent`` to register, its parameters left open.

    Without ``version`` the version is derived from what it wires (each node's component name and
    version, the parameters and their defaults), so registering an unchanged pipeline again is a no-op
    and a changed one gets a new version.
    """
    func = pipeline_function(name, components)
    component = func._pipeline_builder.build()  # what MLClient.components.create_or_update(func) does
    if version is None:
        wiring = sorted((n, j.component.name, str(j.component.version)) for n, j in component.jobs.items())
        params = sorted((p.name, p.kind, repr(p.default)) for p in parameters(name).values())
        version = hashlib.sha256(repr((wiring, params)).encode()).hexdigest()[:12]
    component.version = version
    return component
