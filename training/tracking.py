"""MLflow logging, registration and the champion/challenger gate.

The tracking URI is always passed in (never read from the environment) and set only inside
``mlflow_tracking``, which restores the previous URIs on exit; no environment variable is
written. One experiment per model name. Each logged model is registered as a new version whose
tags say which evaluation slice its metrics come from (``eval_slice_id``), the metrics
themselves (``eval.<metric>``) and the Delta version of every input table
(``input.<table>``), so that promotions compare like with like and any version can be rebuilt
from time-travelled inputs.

Aliases: ``champion`` is the served version. ``promote`` records the champion it replaced in
the new version's ``previous_champion`` tag; ``rollback`` follows that tag back.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

from scoring.model_bundle import ModelBundle, truncated  # noqa: E402
from training.lgbm import TrainedModel  # noqa: E402

CHAMPION = "champion"
TAG_SLICE = "eval_slice_id"
TAG_PREVIOUS = "previous_champion"
TAG_METRIC_PREFIX = "eval."
TAG_INPUT_PREFIX = "input."


_URI_ENV_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def mlflow_tracking(
    tracking_uri: str, registry_uri: str | None = None, artifact_root: str | None = None
) -> Iterator[MlflowClient]:
    """Point the mlflow fluent API at ``tracking_uri`` for the duration of the block, then put
    back whatever was set before, also when the block raises. Yields a client on that URI.

    ``mlflow.set_tracking_uri`` also exports MLFLOW_TRACKING_URI (and the registry setter
    MLFLOW_REGISTRY_URI) into ``os.environ`` for subprocesses; both variables are restored to
    their previous state (value or absence) on exit, so nothing leaks to later code. A SQLite
    store's default artifact root is ``artifact_root`` (default: beside the database) instead
    of ``./mlruns`` in whatever the working directory happens to be.
    """
    if not tracking_uri:
        raise ValueError("tracking_uri must be given (e.g. sqlite:///path/mlflow.db)")
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    _open_store(tracking_uri, artifact_root or default_artifact_root(tracking_uri))
    saved_env = {name: os.environ.get(name) for name in _URI_ENV_VARS}
    saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
    saved_registry = getattr(registry_utils, "_registry_uri", None)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED")
        mlflow.set_tracking_uri(saved_tracking)  # None puts back "unset" (and resets tracing)
        registry_utils._registry_uri = saved_registry  # the public setter cannot unset
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _open_store(tracking_uri: str, artifact_root: str | None) -> None:
    """Build (and so cache) mlflow's store for a database URI with our default artifact root.

    mlflow builds a SQL store with the default artifact root ``./mlruns`` and creates that
    folder in the current directory; there is no public way to pass another root to a client.
    The store is cached per URI, so building it once here, with the module default pointed at
    ``artifact_root``, is what every later client on this URI gets.
    """
    if artifact_root is None or urlparse(tracking_uri).scheme.split("+")[0] not in ("sqlite", "postgresql", "mysql", "mssql"):
        return
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = tracking_utils.DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    tracking_utils.DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH = artifact_root
    try:
        tracking_utils._get_store(tracking_uri)
    finally:
        tracking_utils.DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH = saved


def default_artifact_root(tracking_uri: str) -> str | None:
    """For a SQLite store, a folder beside the database; None for servers (they choose)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The id of experiment ``name``, creating it (artifacts under ``artifact_root/name``)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


def serving_requirements() -> list[str]:
    """Pinned packages a served LightGBM booster needs: the versions training ran with.

    Given explicitly because MLflow's inference of them runs a subprocess that imports the
    model (seconds per logged model) and may pick up unrelated packages.
    """
    return [f"mlflow=={mlflow.__version__}", f"lightgbm=={lgb.__version__}",
            f"numpy=={np.__version__}", f"pandas=={pd.__version__}"]


class BundleModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a ``ModelBundle``: ``predict`` takes a frame with the feature
    columns and returns one column per bundle output (e.g. failure_risk, rul_hours)."""

    def load_context(self, context) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        out = self.bundle.predict_matrix(self.bundle.matrix(model_input))
        return pd.DataFrame(out, index=model_input.index)


def single_bundle(name: str, model: TrainedModel, output: str = "prediction") -> ModelBundle:
    """A one-output bundle of ``model`` (its trees up to the early-stopping round)."""
    return ModelBundle(name, model.task, list(model.feature_names),
                       {output: truncated(model.booster, model.best_iteration)})


@dataclass(frozen=True)
class LoggedVersion:
    """Where a trained model went: its run and its registered version."""

    model_name: str
    run_id: str
    version: str
    model_uri: str


@dataclass(frozen=True)
class EvalData:
    """Evaluation-slice truth and predictions (scores for classifiers), for plots."""

    y_true: np.ndarray
    y_pred: np.ndarray


def _importance_figure(model: TrainedModel, top: int = 20):
    imp = model.feature_importance().head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(imp))))
    ax.barh(imp.index, imp.to_numpy())
    ax.set_xlabel("total gain")
    ax.set_title("feature importance")
    fig.tight_layout()
    return fig


def _pr_figure(data: EvalData):
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(data.y_true, data.y_pred)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall (evaluation slice)")
    fig.tight_layout()
    return fig


def _residual_figure(data: EvalData):
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(data.y_pred, data.y_true - data.y_pred, s=6, alpha=0.5)
    ax.axhline(0.0, color="k", linewidth=0.8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true - predicted")
    ax.set_title("residuals (evaluation slice)")
    fig.tight_layout()
    return fig


def _check_key(kind: str, key: str) -> None:
    if not key or not all(c.isalnum() or c in "_-. /" for c in key):
        raise ValueError(f"{kind} {key!r} may only hold letters, digits, '_', '-', '.', ' ' and '/'")


def log_trained_model(
    tracking_uri: str,
    model_name: str,
    model: TrainedModel,
    *,
    input_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    eval_slice_id: str,
    inputs: Mapping[str, int],
    eval_data: EvalData | None = None,
    artifact_root: str | None = None,
    tags: Mapping[str, str] | None = None,
    bundle: ModelBundle | None = None,
) -> LoggedVersion:
    """Log one training run in experiment ``model_name`` and register its model as a new version.

    Logged: ``params`` plus the booster's own parameters and stopping round, ``metrics``, the
    Delta version of each input table (param and tag ``input.<table>``), a feature-importance
    plot, a PR curve (classifiers) or residual plot (regressors) when ``eval_data`` is given,
    and the served model with its signature and input example: ``bundle`` (all boosters a
    consumer needs, see ``scoring.model_bundle``) or, without one, ``model`` alone, as an MLflow
    pyfunc whose ``predict`` returns one column per bundle output. The new version is tagged with
    ``eval_slice_id``, ``eval.<metric>`` for each metric, and the inputs.
    """
    _check_key("model name", model_name)
    if not eval_slice_id:
        raise ValueError("eval_slice_id must name the evaluation slice the metrics come from")
    for table, version in inputs.items():
        _check_key("input table name", table)
        if int(version) != version or version < 0:
            raise ValueError(f"Delta version of input table {table!r} must be an integer >= 0, got {version!r}")
    for key, value in metrics.items():
        _check_key("metric name", key)
        if not math.isfinite(float(value)):
            raise ValueError(f"metric {key!r} is not a finite number: {value!r}")
    example = input_example[bundle.features if bundle else model.feature_names].head(5)
    root = artifact_root or default_artifact_root(tracking_uri)
    with mlflow_tracking(tracking_uri, artifact_root=root) as client:
        experiment_id = ensure_experiment(client, model_name, root)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params({**{k: str(v) for k, v in params.items()},
                               "best_iteration": model.best_iteration,
                               "task": model.task,
                               **{f"lgbm.{k}": str(v) for k, v in model.params.items()},
                               **{f"{TAG_INPUT_PREFIX}{t}": int(v) for t, v in inputs.items()}})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags({**(dict(tags or {})), TAG_SLICE: eval_slice_id,
                             **{f"{TAG_INPUT_PREFIX}{t}": str(int(v)) for t, v in inputs.items()}})
            figures = {"plots/feature_importance.png": _importance_figure(model)}
            if eval_data is not None:
                name = "plots/pr_curve.png" if model.task == "classification" else "plots/residuals.png"
                figures[name] = _pr_figure(eval_data) if model.task == "classification" else _residual_figure(eval_data)
            for path, fig in figures.items():
                mlflow.log_figure(fig, path)
                plt.close(fig)
            # Only the trees up to the early-stopping round (see ``truncated``): a served model
            # must predict what was evaluated, and a reloaded booster forgets best_iteration.
            served = bundle or single_bundle(model_name, model)
            outputs = pd.DataFrame(served.predict_matrix(served.matrix(example)), index=example.index)
            with tempfile.TemporaryDirectory() as tmp:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=BundleModel(),
                    artifacts={"bundle": str(served.save(Path(tmp) / "bundle"))},
                    signature=infer_signature(example, outputs),
                    input_example=example,
                    registered_model_name=model_name,
                    pip_requirements=serving_requirements(),
                )
        version = str(info.registered_model_version)
        version_tags = {TAG_SLICE: eval_slice_id,
                        **{f"{TAG_METRIC_PREFIX}{k}": repr(float(v)) for k, v in metrics.items()},
                        **{f"{TAG_INPUT_PREFIX}{t}": str(int(v)) for t, v in inputs.items()},
                        "run_id": run.info.run_id}
        for key, value in version_tags.items():
            client.set_model_version_tag(model_name, version, key, value)
    return LoggedVersion(model_name, run.info.run_id, version, f"models:/{model_name}/{version}")


@dataclass(frozen=True)
class PromotionOutcome:
    """What a gate, promotion or rollback did; ``str()`` reads "promoted: ..." or
    "not promoted: <reason>"."""

    promoted: bool
    model_name: str
    version: str | None
    previous_champion: str | None
    reason: str
    action: str = "promote"

    def __str__(self) -> str:
        verb = {"promote": "promoted", "rollback": "rolled back"}[self.action]
        return f"{verb if self.promoted else 'not ' + verb}: {self.reason}"


def _champion(client: MlflowClient, model_name: str):
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def _version(client: MlflowClient, model_name: str, version: str | int):
    try:
        return client.get_model_version(model_name, str(version))
    except MlflowException:
        raise ValueError(f"model {model_name!r} has no version {version!r}") from None


def promote(client: MlflowClient, model_name: str, version: str | int, reason: str = "promoted by hand") -> PromotionOutcome:
    """Move alias ``champion`` to ``version`` and record the champion it replaces in the
    version's ``previous_champion`` tag (so ``rollback`` can return to it)."""
    target = _version(client, model_name, version)
    current = _champion(client, model_name)
    if current is not None and str(current.version) == str(target.version):
        return PromotionOutcome(False, model_name, str(target.version), str(current.version),
                                f"version {str(target.version)} is already {CHAMPION}")
    previous = str(current.version) if current is not None else None
    if previous is not None:
        client.set_model_version_tag(model_name, str(target.version), TAG_PREVIOUS, previous)
    elif TAG_PREVIOUS in target.tags:  # a stale record from an earlier reign
        client.delete_model_version_tag(model_name, str(target.version), TAG_PREVIOUS)
    client.set_model_version_tag(model_name, str(target.version), "promoted_at", datetime.now(timezone.utc).isoformat())
    client.set_registered_model_alias(model_name, CHAMPION, str(target.version))
    return PromotionOutcome(True, model_name, str(target.version), previous, f"version {str(target.version)} is {CHAMPION} ({reason})")


def promote_if_better(
    client: MlflowClient,
    model_name: str,
    new_version: str | int,
    metric: str,
    higher_is_better: bool,
    margin: float,
    eval_metrics: Mapping[str, float],
) -> PromotionOutcome:
    """Champion/challenger gate on one metric of one evaluation slice.

    ``eval_metrics`` are the new version's metrics on the slice named by its ``eval_slice_id``
    tag (they are stored on the version as ``eval.<metric>`` tags). The new version becomes
    champion when there is none, or when it beats the champion's value of ``metric`` on the
    same slice by at least ``margin``. Otherwise nothing moves and the outcome says why:
    different slices, no comparable champion metric, or not better by the margin.
    """
    if not math.isfinite(float(margin)) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if metric not in eval_metrics:
        raise ValueError(f"eval_metrics has no {metric!r} (has {sorted(eval_metrics)})")
    new_value = float(eval_metrics[metric])
    if not math.isfinite(new_value):
        raise ValueError(f"{metric} of version {new_version} is not a finite number: {eval_metrics[metric]!r}")
    candidate = _version(client, model_name, new_version)
    slice_id = candidate.tags.get(TAG_SLICE)
    if not slice_id:
        return PromotionOutcome(False, model_name, str(candidate.version), None,
                                f"version {str(candidate.version)} has no {TAG_SLICE} tag; its metrics cannot be compared")
    for key, value in eval_metrics.items():
        client.set_model_version_tag(model_name, str(candidate.version), f"{TAG_METRIC_PREFIX}{key}", repr(float(value)))
    champion = _champion(client, model_name)
    if champion is None:
        return promote(client, model_name, str(candidate.version), f"no {CHAMPION} yet; {metric}={new_value:g} on slice {slice_id!r}")
    if str(champion.version) == str(candidate.version):
        return PromotionOutcome(False, model_name, str(candidate.version), str(champion.version),
                                f"version {str(candidate.version)} is already {CHAMPION}")
    champion_slice = champion.tags.get(TAG_SLICE)
    if champion_slice != slice_id:
        return PromotionOutcome(False, model_name, str(candidate.version), str(champion.version),
                                f"{CHAMPION} version {str(champion.version)} was evaluated on slice {champion_slice!r}, "
                                f"version {str(candidate.version)} on {slice_id!r}; evaluate both on the same slice")
    raw = champion.tags.get(f"{TAG_METRIC_PREFIX}{metric}")
    if raw is None:
        return PromotionOutcome(False, model_name, str(candidate.version), str(champion.version),
                                f"{CHAMPION} version {str(champion.version)} has no {metric} on slice {slice_id!r}")
    champion_value = float(raw)
    better = new_value >= champion_value + margin if higher_is_better else new_value <= champion_value - margin
    direction = "higher" if higher_is_better else "lower"
    comparison = (f"{metric} {new_value:g} vs {CHAMPION} version {str(champion.version)}'s {champion_value:g} "
                  f"on slice {slice_id!r} ({direction} is better, margin {margin:g})")
    if not better:
        return PromotionOutcome(False, model_name, str(candidate.version), str(champion.version), f"{comparison}: not better by the margin")
    return promote(client, model_name, str(candidate.version), comparison)


def rollback(client: MlflowClient, model_name: str) -> PromotionOutcome:
    """Move ``champion`` back to the version recorded in the current champion's
    ``previous_champion`` tag; the demoted version gets a ``rolled_back_at`` tag."""
    current = _champion(client, model_name)
    if current is None:
        return PromotionOutcome(False, model_name, None, None, f"model {model_name!r} has no {CHAMPION}", "rollback")
    previous = current.tags.get(TAG_PREVIOUS)
    if not previous:
        return PromotionOutcome(False, model_name, str(current.version), None,
                                f"{CHAMPION} version {str(current.version)} records no previous champion", "rollback")
    _version(client, model_name, previous)
    client.set_registered_model_alias(model_name, CHAMPION, previous)
    client.set_model_version_tag(model_name, str(current.version), "rolled_back_at", datetime.now(timezone.utc).isoformat())
    client.set_registered_model_tag(model_name, "last_rollback", f"{str(current.version)}->{previous}")
    return PromotionOutcome(True, model_name, previous, str(current.version),
                            f"{CHAMPION} moved from version {str(current.version)} back to {previous}", "rollback")
