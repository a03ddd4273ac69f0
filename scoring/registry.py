"""Registered models as scoring sees them: an alias resolved to a version, its bundle on disk.

Nothing here changes the registry. ``resolve`` names the exact version an alias points at (the
lineage every prediction row carries); ``download_version`` copies that version's model folder,
``fetch_bundle`` loads its ``ModelBundle``.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scoring.model_bundle import ModelBundle


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and the alias it was reached through."""

    name: str
    version: str
    alias: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.name} version {self.version} ({self.alias})"


def resolve(client, name: str, alias: str) -> ModelRef:
    """The version ``alias`` of registered model ``name`` points at; ValueError naming both
    when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ValueError(f"registered model {name!r} has no alias {alias!r}: train and promote it first "
                         f"(`refinery train`, `refinery promote`)") from None
    return ModelRef(name, str(mv.version), alias, mv.run_id or "")


def registered_names(client, prefix: str) -> list[str]:
    """Names of registered models starting with ``prefix``, sorted."""
    return sorted(m.name for m in client.search_registered_models() if m.name.startswith(prefix))


def download_version(client, ref: ModelRef, dst: str | Path) -> Path:
    """Download registered version ``ref`` (its MLflow model folder) into ``dst``; returns it.

    Through the version's own download URI, so no global MLflow state is touched (the serve
    poller calls this from a thread beside code that may point mlflow elsewhere).
    """
    import mlflow

    # A progress bar per download is noise in job and server logs; MLflow reads this switch from
    # the environment.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = client.get_model_version_download_uri(ref.name, ref.version)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))


def fetch_bundle(tracking_uri: str, ref: ModelRef) -> ModelBundle:
    """Load model ``ref``'s bundle from a temporary download, removed after loading."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        return ModelBundle.load(download_version(client, ref, tmp))
