"""Start ``azureml-inference-server-http`` on 127.0.0.1 (run with the serving environment's Python).

    .venv-serve/bin/python -m scoring.serve_launcher --port 5001 --model-dir SERVE_DIR --app-root SERVE_DIR

``azmlinfsrv`` always listens on 0.0.0.0, which would put an unauthenticated model on the network.
This does what its command does (the settings it puts into the environment for the workers,
its logging set-up) and then starts the same gunicorn server on the loopback address only.
``--parent-pid`` stops the server when that process is gone, so a killed ``refinery serve`` leaves
no server behind. Only the standard library and the server package are imported here.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
SCORE_SCRIPT = Path(__file__).resolve().parent / "score.py"


def server_environment(entry_script: Path, model_dir: Path, app_root: Path, port: int, workers: int) -> dict[str, str]:
    """The variables ``azmlinfsrv``'s own start-up sets for the server and its workers."""
    from azureml_inference_server_http import __version__
    from azureml_inference_server_http import constants as c

    return {
        c.ENV_AML_APP_ROOT: str(app_root),
        c.ENV_AZUREML_ENTRY_SCRIPT: str(entry_script.resolve()),
        c.ENV_AZUREML_MODEL_DIR: str(model_dir),
        c.ENV_WORKER_COUNT: str(workers),
        c.ENV_PORT: str(port),
        c.ENV_HEALTH_PORT: str(port),
        c.ENV_BACKEND_TRANSPORT_PROTOCOL: "rest",
        c.ENV_AZUREML_SERVER_VERSION: f"azmlinfsrv/{__version__}",
        c.ENV_AML_APP_INSIGHTS_ENABLED: "false",
    }


def _stop_when_orphaned(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's graceful stop: workers finish, then exit
                return
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scoring.serve_launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, required=True, help="AZUREML_MODEL_DIR for the scoring script")
    parser.add_argument("--app-root", type=Path, required=True, help="AML_APP_ROOT: where swagger.json is served from")
    parser.add_argument("--entry-script", type=Path, default=SCORE_SCRIPT, help="scoring script with init() and run()")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is no longer the parent")
    args = parser.parse_args(argv)

    from azureml_inference_server_http import amlserver_linux
    from azureml_inference_server_http.constants import PACKAGE_ROOT
    from azureml_inference_server_http.log_config import load_logging_config

    os.environ.update(server_environment(args.entry_script, args.model_dir, args.app_root, args.port, args.workers))
    # Newer gunicorn opens a control socket at one fixed path per user, which every server on the
    # machine would fight over (and the first to stop would remove); these servers need none.
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        os.environ["GUNICORN_CMD_ARGS"] = f"{os.environ.get('GUNICORN_CMD_ARGS', '')} --no-control-socket".strip()
    load_logging_config(PACKAGE_ROOT)
    sys.path.append(str(args.app_root))
    if args.parent_pid:
        _stop_when_orphaned(args.parent_pid)
    amlserver_linux.run(HOST, args.port, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
