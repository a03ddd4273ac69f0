"""The serve folder: what ``refinery serve`` hands to the inference server.

``refinery serve`` (main environment) writes it; ``scoring/score.py`` (serving environment, one
copy per server worker) reads it. Standard library only, so both sides import this one definition:

    <serve_dir>/current.json                  which model to serve: name, version, alias, run id, path
    <serve_dir>/server.json                   request limits and the sha256 of the key, if any
    <serve_dir>/models/<name>/<version>/...   each served version's MLflow model folder
    <serve_dir>/swagger.json, swagger3.json   the OpenAPI description (the server's app root)

The server's ``AZUREML_MODEL_DIR`` is ``<serve_dir>/models``: AML's own layout for several models
(``<name>/<version>``), which the server's telemetry lists. ``current.json`` sits beside it and is
replaced atomically (written next to it, then renamed), so a worker reading it sees the old or
the new model, never half of one. On an AML managed online endpoint ``AZUREML_MODEL_DIR`` is the
registered model's own folder (``.../<name>/<version>``), with no ``current.json`` beside it:
the model is fixed, the limits are the defaults.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CURRENT_FILE = "current.json"
OPTIONS_FILE = "server.json"
MODELS_DIR = "models"

MAX_ROWS = 1000  # rows per request: one asset batch of the streaming job, with room to spare
MAX_BODY_BYTES = 1 << 20  # 1 MiB: 1000 rows of about 130 features need about 1 MiB of JSON


@dataclass(frozen=True)
class CurrentModel:
    """The model version the server should answer with; ``path`` is relative to the serve folder."""

    name: str
    version: str
    alias: str
    run_id: str
    path: str

    def folder(self, root: Path) -> Path:
        return Path(root) / self.path


@dataclass(frozen=True)
class ServerOptions:
    """Limits a request must keep to, and the key a request must carry (as its sha256), if any."""

    max_rows: int = MAX_ROWS
    max_body_bytes: int = MAX_BODY_BYTES
    key_sha256: str | None = None

    def __post_init__(self) -> None:
        if int(self.max_rows) < 1:
            raise ValueError(f"max_rows must be at least 1, got {self.max_rows!r}")
        if int(self.max_body_bytes) < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes!r}")


def key_sha256(key: str) -> str:
    """The hex sha256 of a key: what ``server.json`` keeps instead of the key itself."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def model_dir(serve_dir: Path) -> Path:
    """``AZUREML_MODEL_DIR`` for a serve folder."""
    return Path(serve_dir) / MODELS_DIR


def serve_dir_of(model_dir: Path) -> Path:
    """The serve folder an ``AZUREML_MODEL_DIR`` belongs to (where ``current.json`` would be)."""
    return Path(model_dir).parent


def read_current(root: Path) -> CurrentModel | None:
    """The model ``current.json`` in serve folder ``root`` names, or None when there is none (AML)."""
    path = Path(root) / CURRENT_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return CurrentModel(**{k: str(doc[k]) for k in ("name", "version", "alias", "run_id", "path")})


def write_current(root: Path, current: CurrentModel) -> None:
    write_json_atomic(Path(root) / CURRENT_FILE, asdict(current))


def read_options(root: Path) -> ServerOptions:
    """The options in ``server.json``, or the defaults when the folder has none."""
    path = Path(root) / OPTIONS_FILE
    if not path.is_file():
        return ServerOptions()
    return ServerOptions(**json.loads(path.read_text()))


def write_options(root: Path, options: ServerOptions) -> None:
    write_json_atomic(Path(root) / OPTIONS_FILE, asdict(options))
