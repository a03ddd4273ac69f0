"""The online scoring script: ``init()`` and ``run()`` as the Azure ML inference server calls them.

The same file serves on an AML managed online endpoint (``scoring/deployment_*.yml``) and on the
laptop under ``refinery serve``; both run it in ``azureml-inference-server-http``. Requests and
responses follow ``scoring/openapi.json`` (served at ``/swagger.json``; checks in
``scoring/online.py``):

POST /score   ``{"rows": [...]}`` -> 200 ``{"model": ..., "predictions": [...]}``, one per row;
              a bad request -> 4xx ``{"message": "<field>: <problem>", "field": "<field>"}``:
              400 off-contract body, 401 missing or wrong key, 413 too many rows or too large a
              body, 415 not ``application/json``. ``run()`` never raises (an exception would be a 500).
GET  /score   the served model, its input features and outputs, and the request limits.

``init()`` loads from ``AZUREML_MODEL_DIR`` (AML's own convention, set by AML and by ``refinery
serve``). On AML that folder is the registered model (name and version are the last two parts of
its path). Under ``refinery serve`` it is the ``models`` folder of a serve folder
(``scoring/serving_folder.py``) whose ``current.json`` names the model; a thread in each worker
looks at that file about once a second and, when it names another version, loads that version
completely before swapping one reference, so a new champion is picked up without a restart and a
request in flight finishes on the model it started with.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

# The inference server loads this file by path, not as a module of a package; the repository root
# (the code folder on AML, the working copy locally) holds the ``scoring`` package.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from azureml_inference_server_http.api.aml_request import rawhttp  # noqa: E402
from flask import Response  # noqa: E402

from scoring.model_bundle import ModelBundle, find_bundle  # noqa: E402
from scoring.online import ModelIdentity, RequestError, ServedModel, dumps  # noqa: E402
from scoring.serving_folder import (  # noqa: E402
    CURRENT_FILE, CurrentModel, ServerOptions, read_current, read_options, serve_dir_of,
)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"
WATCH_SECONDS = 1.0
_DRAIN_LIMIT = 16  # read and drop an oversized body up to this many times the limit (see _too_large)
_JSON = "application/json"

logger = logging.getLogger("azmlinfsrv.score")  # the server's logger tree, so lines reach its log

_model: ServedModel | None = None
_options = ServerOptions()


def init() -> None:
    """Load the model named by ``AZUREML_MODEL_DIR`` and, under ``refinery serve``, start watching
    ``current.json``. Raises when no model loads: the server then exits instead of answering 500s."""
    global _model, _options
    models = Path(os.environ["AZUREML_MODEL_DIR"])
    serve_dir = serve_dir_of(models)
    stamp = _stamp(serve_dir)  # before reading: a change from here on is seen by the watcher
    current = read_current(serve_dir)
    if current is None:  # AML: the registered model's own folder
        _model = _load_registered(models)
    else:  # refinery serve: the model current.json names, followed from now on
        _options = read_options(serve_dir)
        _model = _load_current(serve_dir, current)
        _Watcher(serve_dir, current, stamp).start()
    _publish_openapi()
    logger.info("serving %s version %s (%s), %d features", _model.identity.name, _model.identity.version,
                _model.identity.alias, len(_model.bundle.features))


@rawhttp
def run(request):
    """One HTTP request to ``/score`` -> a JSON response; 4xx for any bad request, never an exception."""
    try:
        return _handle(request)
    except RequestError as exc:
        return _respond(exc.status, exc.body(), {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
    except Exception:  # a bug, not a bad request: logged with its traceback, answered without it
        logger.exception("scoring failed")
        return _respond(500, dumps({"message": "internal error in the scoring script; see the server log",
                                    "field": None}))


def _handle(request) -> Response:
    model = _model  # one read: a swap during this request does not change the model it uses
    environ = request.environ  # the WSGI fields themselves: cheaper than werkzeug's parsed views
    method = environ["REQUEST_METHOD"]
    if method == "POST":
        _authorize(request)
        ctype = environ.get("CONTENT_TYPE", "")
        if ctype != _JSON and request.mimetype != _JSON:  # exact match first, then with parameters
            raise RequestError(415, "Content-Type", f"expected {_JSON}, got {ctype!r}")
        return _respond(200, model.score(_read_body(request, environ)))
    if method == "GET":
        _authorize(request)
        return _respond(200, model.describe(_options.max_body_bytes))
    if method == "OPTIONS":
        return Response(b"", 204, headers={"Allow": "GET, POST, OPTIONS"})
    raise RequestError(405, "method", f"{method} is not allowed; use POST (score) or GET (describe)")


def _respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers=headers, content_type=_JSON)


def _authorize(request) -> None:
    """401 unless the key ``refinery serve --key`` was started with is presented (no key: open)."""
    expected = _options.key_sha256
    if expected is None:
        return
    scheme, _, token = request.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    given = hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
        raise RequestError(401, "Authorization", "expected 'Bearer <key>' with the key this server was started with")


def _read_body(request, environ: dict) -> bytes:
    """The request body, refused with 413 beyond the size limit: by its Content-Length before
    reading, and by the bytes actually read when it is sent in chunks; 400 when it cannot be read."""
    try:
        return _read_limited(request, environ)
    except RequestError:
        raise
    except Exception as exc:  # malformed chunks, a client gone mid-body: the server's reader raises
        raise RequestError(400, "body", f"could not be read ({type(exc).__name__}: {exc})"[:200]) from None


def _read_limited(request, environ: dict) -> bytes:
    limit = _options.max_body_bytes
    length = request.content_length
    if length is not None:
        if length > limit:
            _too_large(request, length, limit)
        # WSGI: read exactly Content-Length bytes from the input (gunicorn reads until it has them).
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            raise RequestError(400, "body", f"ended after {len(body)} of the {length} bytes its Content-Length announced")
        return body
    stream, parts, size = request.stream, [], 0
    while chunk := stream.read(65536):
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body", f"more than {limit} bytes; at most {limit} per request")
        parts.append(chunk)
    return b"".join(parts)


def _too_large(request, length: int, limit: int) -> None:
    # A body left unread makes the server's close reset the connection, and the client may then
    # lose the 413 it was sent; a moderately large one is read and dropped so the answer arrives.
    if length <= _DRAIN_LIMIT * limit:
        stream = request.stream
        while stream.read(65536):
            pass
    raise RequestError(413, "body", f"{length} bytes; at most {limit} per request")


def _publish_openapi() -> None:
    """Put ``openapi.json`` where the server looks for a user's API description (its app root),
    as ``swagger.json`` (the default ``/swagger.json``) and ``swagger3.json`` (``?version=3``).
    The server reads them right after ``init()``; a read-only app root only costs the document."""
    from azureml_inference_server_http.server.config import config

    text = OPENAPI_FILE.read_text()
    for name in ("swagger.json", "swagger3.json"):
        target = Path(config.app_root) / name
        try:
            if not target.is_file() or target.read_text() != text:
                tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, target)
        except OSError as exc:
            logger.warning("could not publish the OpenAPI description as %s: %s", target, exc)


def _load_registered(root: Path) -> ServedModel:
    """AML: the registered model's folder, ``.../<name>/<version>`` (run id from its MLmodel file)."""
    bundle = ModelBundle.load(root)
    name, version = bundle.name, None
    if root.name.isdigit():
        name, version = root.parent.name or bundle.name, root.name
    return ServedModel(bundle, ModelIdentity(name, version, None, _mlmodel_run_id(root)), _options.max_rows)


def _mlmodel_run_id(root: Path) -> str | None:
    bundle_dir = find_bundle(root)
    for folder in (bundle_dir, *bundle_dir.parents):
        mlmodel = folder / "MLmodel"
        if mlmodel.is_file():
            found = re.search(r"^run_id:\s*(\S+)\s*$", mlmodel.read_text(), re.MULTILINE)
            return found.group(1) if found else None
        if folder == root:
            break
    return None


def _load_current(root: Path, current: CurrentModel) -> ServedModel:
    bundle = ModelBundle.load(current.folder(root))
    identity = ModelIdentity(current.name, current.version, current.alias, current.run_id or None)
    return ServedModel(bundle, identity, _options.max_rows)


def _stamp(serve_dir: Path) -> tuple[int, int, int] | None:
    """Identity of ``current.json`` as written: each atomic replace makes a new file."""
    try:
        st = os.stat(serve_dir / CURRENT_FILE)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class _Watcher(threading.Thread):
    """Follows ``current.json``: a changed file naming another model is loaded, then swapped in."""

    def __init__(self, root: Path, current: CurrentModel, seen: tuple[int, int, int] | None):
        super().__init__(name="current-model-watcher", daemon=True)
        self.root = root
        self.current = current
        self.seen = seen

    def run(self) -> None:
        global _model
        while True:
            time.sleep(WATCH_SECONDS)
            stamp = _stamp(self.root)
            if stamp is None or stamp == self.seen:
                continue
            self.seen = stamp
            try:
                current = read_current(self.root)
                if current is None or current == self.current:
                    continue
                loaded = _load_current(self.root, current)
            except Exception:  # keep answering with the model that works; the next change retries
                logger.exception("could not load the model named by %s; still serving version %s",
                                 self.root / CURRENT_FILE, self.current.version)
                continue
            _model, self.current = loaded, current
            logger.info("now serving %s version %s (%s)", current.name, current.version, current.alias)
