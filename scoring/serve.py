"""``refinery serve``: the registry's champion behind ``scoring/score.py`` on localhost.

Runs in the main environment and changes only the serve folder (``scoring/serving_folder.py``):
it resolves the alias to a version in the MLflow registry, copies that version's model folder
into ``<serve_dir>/models/<name>/<version>``, checks that it loads, writes ``server.json`` (limits,
key hash) and ``current.json``, and starts ``azureml-inference-server-http`` with the serving
environment's Python (``scoring/serve_launcher.py``: loopback only). It then polls the registry;
when the alias moves, the new version is copied and checked, and ``current.json`` is replaced:
the server's workers load it and swap (see ``scoring/score.py``), with no restart and no failed request.

``local_endpoint`` is the whole thing as a context manager (for ``refinery serve``, the demo,
the tests and the benchmark); ``InferenceServer`` is one server process tree on its own.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scoring.model_bundle import ModelBundle
from scoring.registry import ModelRef, download_version, resolve
from scoring.serve_launcher import HOST, SCORE_SCRIPT
from scoring.serving_folder import (
    MAX_BODY_BYTES, MAX_ROWS, MODELS_DIR, CurrentModel, ServerOptions, key_sha256, model_dir, write_current, write_options,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_STAMP = ".venv-serve/.installed"  # the Makefile target that creates the serving environment
START_TIMEOUT_SECONDS = 90.0

logger = logging.getLogger(__name__)


def check_serve_python(path: Path) -> Path:
    """``path`` when it is the serving environment's Python; else ValueError saying how to make it."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ValueError(f"serve_python {path}: no serving environment there; create it with "
                         f"`make {SERVE_STAMP}` (pins in environments/serve.conda.yml) or set REFINERY_SERVE_PYTHON")
    return path


def check_port(port: int) -> int:
    """``port`` when it is a valid port free on 127.0.0.1; ValueError naming it otherwise."""
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"--port {port}: expected a TCP port from 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, int(port)))
        except OSError:
            raise ValueError(f"--port {port}: already in use on {HOST}") from None
    return int(port)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class InferenceServer:
    """One ``azureml-inference-server-http`` (gunicorn master and workers) on 127.0.0.1:``port``,
    in its own process group so that stopping it stops every worker."""

    def __init__(self, python: Path, *, port: int, models: Path, app_root: Path, workers: int = 1,
                 entry_script: Path = SCORE_SCRIPT, log_path: Path | None = None):
        if workers < 1:
            raise ValueError(f"--workers {workers}: expected at least 1")
        self.python = check_serve_python(Path(python))
        self.port = port
        self.models = Path(models)
        self.app_root = Path(app_root)
        self.workers = workers
        self.entry_script = Path(entry_script)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the server and return once it answers its health probe; RuntimeError (with the
        end of its log) when it exits or does not answer in ``timeout`` seconds."""
        cmd = [str(self.python), "-m", "scoring.serve_launcher", "--port", str(self.port),
               "--workers", str(self.workers), "--model-dir", str(self.models), "--app-root", str(self.app_root),
               "--entry-script", str(self.entry_script), "--parent-pid", str(os.getpid())]
        # The serving environment is another interpreter: nothing of ours may leak into its path.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        out = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                            start_new_session=True)
        finally:
            if out:
                out.close()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the inference server exited with code {self.process.returncode} while starting"
                                   f"{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the inference server did not answer on {self.base_url} within {timeout:.0f} s{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not Path(self.log_path).is_file():
            return ""
        tail = Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {self.log_path}:\n" + "\n".join(tail)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server's whole process group: gracefully, then by force after ``timeout`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        else:  # the master is gone; make sure no worker outlived it
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process = None


def materialise(client, ref: ModelRef, serve_dir: Path) -> CurrentModel:
    """Copy registered version ``ref`` into ``<serve_dir>/models/<name>/<version>`` (once) and
    check that its bundle loads, so the server is never pointed at a model it cannot load."""
    dest = Path(serve_dir) / MODELS_DIR / ref.name / ref.version
    if not dest.is_dir():
        # Staged outside models/: the server lists models/<name>/ and expects only version numbers.
        staging = Path(serve_dir) / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            ModelBundle.load(download_version(client, ref, staging))
            try:
                staging.rename(dest)
            except OSError:
                if not dest.is_dir():  # else another serve process put the same version there first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    rel = dest.relative_to(serve_dir).as_posix()
    return CurrentModel(ref.name, ref.version, ref.alias, ref.run_id, rel)


@dataclass
class LocalEndpoint:
    """A running local endpoint: where to send requests, what it serves, how to refresh it."""

    url: str
    server: InferenceServer
    serve_dir: Path
    tracking_uri: str
    model: str
    alias: str
    current: CurrentModel

    def refresh(self) -> bool:
        """Look up the alias once; when it names another version, copy it and point the server at
        it. True when the served version changed."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        ref = resolve(client, self.model, self.alias)
        if ref.version == self.current.version:
            return False
        current = materialise(client, ref, self.serve_dir)
        write_current(self.serve_dir, current)
        logger.info("alias %s of %s moved to version %s: serving it", self.alias, self.model, ref.version)
        self.current = current
        return True


@contextmanager
def local_endpoint(settings, *, port: int = 5001, key: str | None = None, poll_seconds: float = 10.0,
                   model: str = "maintenance", alias: str = "champion", workers: int = 1,
                   serve_dir: Path | None = None, max_rows: int = MAX_ROWS, max_body_bytes: int = MAX_BODY_BYTES,
                   log_path: Path | None = None) -> Iterator[LocalEndpoint]:
    """Serve ``model@alias`` from the settings' MLflow registry on http://127.0.0.1:``port``/score
    for the duration of the block, following the alias every ``poll_seconds``; the server and its
    workers are stopped on exit, also when the block raises. ``key``: requests must carry
    ``Authorization: Bearer <key>``. Server output goes to ``log_path`` (default: the terminal)."""
    from training.tracking import mlflow_tracking

    if not poll_seconds > 0:
        raise ValueError(f"--poll-seconds {poll_seconds}: expected a number of seconds above 0")
    if key is not None and not key.strip():
        raise ValueError("--key: expected a non-empty key")
    check_serve_python(settings.resolved_serve_python())
    check_port(port)
    serve_dir = Path(serve_dir or settings.resolved_serve_dir())
    serve_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = settings.resolved_mlflow_uri()
    with mlflow_tracking(tracking_uri) as client:  # also opens a SQLite store with its artifact root
        current = materialise(client, resolve(client, model, alias), serve_dir)
    write_options(serve_dir, ServerOptions(max_rows, max_body_bytes, key_sha256(key.strip()) if key else None))
    write_current(serve_dir, current)
    server = InferenceServer(settings.resolved_serve_python(), port=port, models=model_dir(serve_dir),
                             app_root=serve_dir, workers=workers, log_path=log_path)
    server.start()
    endpoint = LocalEndpoint(f"{server.base_url}/score", server, serve_dir, tracking_uri, model, alias, current)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(poll_seconds):
            try:
                endpoint.refresh()
            except Exception as exc:  # a registry hiccup: keep serving what works, try again next time
                logger.warning("could not follow %s@%s: %s", model, alias, exc)

    poller = threading.Thread(target=poll, name="registry-poller", daemon=True)
    poller.start()
    try:
        yield endpoint
    finally:
        stop.set()
        poller.join(timeout=poll_seconds + 30)
        server.stop()


def wait_forever(endpoint: LocalEndpoint) -> int:
    """Block until Ctrl-C / SIGTERM (0) or until the server dies (1)."""
    def terminate(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        while endpoint.server.running():
            time.sleep(0.5)
        print(f"refinery serve: error: the inference server on port {endpoint.server.port} stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
