"""The one settings object that selects the world: embedded default (laptop, CI) or Azure.

Sources, lowest to highest precedence: field defaults, an optional YAML file (``REFINERY_CONFIG``
or ``--config``), environment variables ``REFINERY_*``, then command-line overrides. No other
module reads environment variables; code receives a ``Settings`` and never asks where it runs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SettingsError(ValueError):
    """A setting has a bad value; the message names it."""


class Settings(BaseSettings):
    """Where the lake lives, which Spark, which event source, which MLflow, which endpoint."""

    model_config = SettingsConfigDict(env_prefix="REFINERY_", extra="forbid")

    lake_uri: str = Field("lake", description="Root of the Delta lake: a folder or abfss:// URI.")
    landing_uri: str = Field("landing", description="Where source systems drop their files.")
    spark_master: str = Field(
        "local[*]", description="Spark master; local mode by default, empty on a cluster where spark-submit sets it."
    )
    spark_shuffle_partitions: int = Field(4, ge=1, description="Shuffle partitions for local Spark.")
    prep_engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine of `refinery prep`: 'duckdb' in this process (one machine; no JVM), "
                              "'spark' the Spark session of spark_master (a cluster). Both apply the same "
                              "expectations and give the same silver, quarantine and gold rows.",
    )
    event_source: Literal["local", "eventhubs"] = Field(
        "local", description="'local': the on-disk event log; 'eventhubs': Azure Event Hubs."
    )
    eventhubs_namespace: str | None = Field(None, description="Event Hubs namespace (Azure only).")
    eventhub_name: str = Field("telemetry", description="Event hub (or local log) name for telemetry.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: SQLite file beside the lake."
    )
    endpoint_url: str = Field("http://127.0.0.1:5001/score", description="Online scoring endpoint.")
    endpoint_name: str | None = Field(
        None, description="AML managed online endpoint name (unique per Azure region); default: scoring/endpoint.yml's."
    )
    serve_dir: str | None = Field(
        None, description="Folder `refinery serve` works in (served model copies, server options); "
                          "default: 'serving' beside the lake."
    )
    serve_python: str = Field(
        ".venv-serve/bin/python",
        description="Python of the serving environment (azureml-inference-server-http, environments/serve.conda.yml); "
                    "a relative path is under the project root. `make .venv-serve/.installed` creates it.",
    )
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None

    @property
    def is_local_lake(self) -> bool:
        return "://" not in self.lake_uri or self.lake_uri.startswith("file://")

    def resolved_mlflow_uri(self) -> str:
        """The tracking URI; embedded default is SQLite in the lake's parent folder."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        root = Path(self.lake_uri).resolve().parent
        return f"sqlite:///{root / 'mlflow.db'}"

    def resolved_serve_dir(self) -> Path:
        """Where ``refinery serve`` keeps its files; embedded default is ``serving`` beside the lake."""
        if self.serve_dir:
            return Path(self.serve_dir).resolve()
        base = Path(self.lake_uri).resolve().parent if self.is_local_lake else Path.cwd()
        return base / "serving"

    def resolved_serve_python(self) -> Path:
        """The serving environment's Python; a relative setting is taken from the project root."""
        path = Path(self.serve_python).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Build settings from YAML file, environment and overrides (``None`` overrides are ignored)."""
    config_file = config_file or os.environ.get("REFINERY_CONFIG")
    from_file: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"settings file not found: {config_file}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"settings file {config_file} must hold a mapping, got {type(loaded).__name__}")
        from_file = loaded
    env_keys = {name for name in Settings.model_fields if f"REFINERY_{name.upper()}" in os.environ}
    # The file sits below the environment: drop file keys the environment sets.
    merged = {k: v for k, v in from_file.items() if k not in env_keys}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise SettingsError(f"bad setting {field}={err.get('input')!r}: {err['msg']}") from None
