"""``refinery serve`` for real: scoring/score.py in azureml-inference-server-http (the serving
environment), a model registered in MLflow, HTTP requests from outside.

One server for the contract tests (with a key), one for the champion swap; both on free ports.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from refinery.settings import Settings
from scoring.serve import free_port, local_endpoint
from tests.scoring.synthetic_model import FEATURES, register, synthetic_rows, train_bundle

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json"}
OPENAPI = Path(__file__).resolve().parents[2] / "scoring" / "openapi.json"


class Client:
    """Plain http.client requests, so the tests control every header and byte."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.headers = headers or {}

    def request(self, method: str, body=None, headers: dict[str, str] | None = None, path: str | None = None,
                chunked: bool = False) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path or self.path, body=body, headers={**self.headers, **(headers or {})},
                         encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def post(self, body: bytes, headers: dict[str, str] | None = None, **kw) -> tuple[int, dict, bytes]:
        return self.request("POST", body, {**JSON, **(headers or {})}, **kw)


def row(values: np.ndarray, asset: str = "P-101", **extra) -> dict:
    return {"asset_id": asset, **{f: None if np.isnan(v) else float(v) for f, v in zip(FEATURES, values)}, **extra}


def rows_body(rows: list[dict]) -> bytes:
    return json.dumps({"rows": rows}).encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A registered champion served with a key; yields (endpoint, client with the key, bundle)."""
    work = tmp_path_factory.mktemp("serve")
    settings = Settings(lake_uri=str(work / "lake"))
    bundle = train_bundle(seed=0, rows=1500, max_rounds=30)
    register(settings.resolved_mlflow_uri(), bundle)
    with local_endpoint(settings, port=free_port(), key=KEY, poll_seconds=30, workers=2, max_rows=100,
                        log_path=work / "server.log") as endpoint:
        yield endpoint, Client(endpoint.url, AUTH), bundle


def test_valid_request_gets_one_prediction_per_row(served):
    endpoint, client, bundle = served
    x = synthetic_rows(25, seed=8, missing=0.2).to_numpy()
    rows = [row(v, f"P-{i}", ts=f"2026-03-01T{i % 24:02d}:00:00Z") for i, v in enumerate(x)]
    status, headers, raw = client.post(rows_body(rows))
    assert status == 200, raw
    doc = json.loads(raw)
    assert doc["model"] == {"name": "maintenance", "version": "1", "alias": "champion", "run_id": endpoint.current.run_id}
    assert len(doc["predictions"]) == len(rows)
    expected = bundle.predict_matrix(x)
    for i, p in enumerate(doc["predictions"]):
        assert (p["asset_id"], p["ts"], p["model_name"], p["model_version"]) == (f"P-{i}", rows[i]["ts"], "maintenance", "1")
        assert abs(p["failure_risk"] - expected["failure_risk"][i]) <= 1e-12
        assert abs(p["rul_hours"] - expected["rul_hours"][i]) <= 1e-12
    assert float(headers["x-ms-run-fn-exec-ms"]) > 0


def test_single_row_request(served):
    _, client, bundle = served
    x = synthetic_rows(1, seed=2).to_numpy()
    status, _, raw = client.post(rows_body([row(x[0])]))
    assert status == 200
    assert abs(json.loads(raw)["predictions"][0]["failure_risk"] - bundle.predict_matrix(x)["failure_risk"][0]) <= 1e-12


GOOD = row(np.linspace(-1, 1, len(FEATURES)))
F = FEATURES[9]


@pytest.mark.parametrize("raw, status, field", [
    (b'{"rows": [{"asset_id": "P-1",', 400, "body"),  # malformed JSON
    (b'"rows"', 400, "body"),  # not an object
    (b'{"records": []}', 400, "rows"),  # missing rows
    (b'{"rows": []}', 400, "rows"),  # empty
    (b'{"rows": ["P-1"]}', 400, "rows[0]"),  # row not an object
    (rows_body([{k: v for k, v in GOOD.items() if k != F}]), 400, f"rows[0].{F}"),  # missing field
    (rows_body([GOOD | {"temperature_9": 1.0}]), 400, "rows[0].temperature_9"),  # extra field
    (rows_body([GOOD | {F: "abc"}]), 400, f"rows[0].{F}"),  # wrong type
    (rows_body([GOOD | {F: False}]), 400, f"rows[0].{F}"),  # a bool is not a number
    (rows_body([GOOD | {F: float("nan")}]), 400, f"rows[0].{F}"),  # NaN literal
    (rows_body([GOOD | {F: float("inf")}]), 400, f"rows[0].{F}"),  # Infinity literal
    (rows_body([GOOD | {F: 7.25}]).replace(b"7.25", b"7e999"), 400, f"rows[0].{F}"),  # beyond a double
    (rows_body([GOOD | {"asset_id": None}]), 400, "rows[0].asset_id"),
    (rows_body([GOOD] * 101), 413, "rows"),  # too many rows (this server: at most 100)
])
def test_bad_request_gets_4xx_naming_the_field(served, raw, status, field):
    _, client, _ = served
    got, headers, body = client.post(raw)
    doc = json.loads(body)
    assert (got, doc["field"]) == (status, field), doc
    assert doc["message"].startswith(f"{field}: ")
    assert headers["Content-Type"] == "application/json"


def test_oversized_body_gets_413(served):
    _, client, _ = served
    big = b'{"rows": [' + b" " * (1 << 20) + b"]}"
    status, _, raw = client.post(big)  # refused by its Content-Length
    assert (status, json.loads(raw)["field"]) == (413, "body")
    status, _, raw = client.post(iter([big[i:i + 65536] for i in range(0, len(big), 65536)]), chunked=True)
    assert (status, json.loads(raw)["field"]) == (413, "body")  # refused by the bytes read


def test_absurd_content_length_is_refused_before_reading(served):
    endpoint, _, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.server.port, timeout=10)
    conn.putrequest("POST", "/score")
    for k, v in {**JSON, **AUTH, "Content-Length": str(1 << 30)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())["field"]) == (413, "body")
    conn.close()


@pytest.mark.parametrize("chunks", [b"ZZ\r\nabc\r\n0\r\n\r\n", b"5\r\nabc"])
def test_malformed_chunked_body_gets_400(served, chunks):
    endpoint, _, _ = served
    with socket.create_connection(("127.0.0.1", endpoint.server.port), timeout=10) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["field"] == "body"


def test_wrong_content_type_gets_415(served):
    _, client, _ = served
    status, _, raw = client.request("POST", rows_body([GOOD]), {"Content-Type": "text/plain"})
    assert (status, json.loads(raw)["field"]) == (415, "Content-Type")
    status, _, raw = client.request("POST", rows_body([GOOD]), {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {KEY}", KEY])
def test_key_is_required_when_configured(served, auth):
    endpoint, _, _ = served
    client = Client(endpoint.url, {"Authorization": auth} if auth else {})
    status, headers, raw = client.post(rows_body([GOOD]))
    assert (status, json.loads(raw)["field"]) == (401, "Authorization")
    assert headers["WWW-Authenticate"] == "Bearer"
    assert KEY not in raw.decode()


def test_describe_lists_the_model_inputs(served):
    _, client, bundle = served
    status, _, raw = client.request("GET")
    doc = json.loads(raw)
    assert status == 200
    assert doc["features"] == bundle.features and doc["outputs"] == ["failure_risk", "rul_hours"]
    assert doc["limits"] == {"max_rows": 100, "max_body_bytes": 1 << 20}


@pytest.mark.parametrize("query", ["", "?version=3"])
def test_openapi_description_is_served(served, query):
    _, client, _ = served
    status, _, raw = client.request("GET", path=f"/swagger.json{query}")
    assert status == 200
    assert json.loads(raw) == json.loads(OPENAPI.read_text())
    assert json.loads(raw)["openapi"].startswith("3.")


def test_other_methods_are_not_allowed(served):
    _, client, _ = served
    assert client.request("PUT", b"{}", JSON)[0] == 405


# --- fuzz: whatever arrives, the answer is a 200 or a 4xx, and the worker lives on ---

# Text includes lone surrogates: valid JSON escapes ("\ud800") that no UTF-8 can carry.
texts = st.text(max_size=12) | st.text(st.characters(categories=["Cs"]) | st.characters(max_codepoint=127), max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
    | st.floats(allow_nan=True, allow_infinity=True) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_bodies(draw) -> bytes:
    """A valid request with a few of its rows, keys and values broken (or not)."""
    n = draw(st.integers(min_value=1, max_value=4))
    rows = [dict(GOOD) for _ in range(n)]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        r = rows[draw(st.integers(min_value=0, max_value=n - 1))]
        action = draw(st.sampled_from(["drop", "add", "set", "set_feature"]))
        if action == "drop":
            r.pop(draw(st.sampled_from(sorted(r))), None)
        elif action == "add":
            r[draw(texts)] = draw(json_values)
        elif action == "set":
            r[draw(st.sampled_from(["asset_id", "ts"]))] = draw(json_values)
        else:
            r[draw(st.sampled_from(FEATURES))] = draw(json_values)
    doc = draw(st.sampled_from(["rows", "wrapped", "bare"]))
    payload = {"rows": rows} if doc == "rows" else {"rows": rows, draw(texts): 1} if doc == "wrapped" else rows
    return json.dumps(payload).encode()


bodies = (mutated_bodies() | json_values.map(lambda v: json.dumps(v).encode())
          | json_values.map(lambda v: json.dumps({"rows": v}).encode()) | st.binary(max_size=300))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_fuzzed_requests_never_get_a_5xx(served, body):
    _, client, _ = served
    status, _, raw = client.post(body)
    assert 200 <= status < 500, raw
    doc = json.loads(raw)
    if status == 200:
        assert len(doc["predictions"]) == len(json.loads(body)["rows"])
    else:
        assert doc["message"].startswith(f"{doc['field']}: ")


def test_server_still_answers_and_logged_no_failure_after_the_fuzz(served):
    endpoint, client, _ = served
    assert client.post(rows_body([GOOD]))[0] == 200
    log = (endpoint.serve_dir.parent / "server.log").read_text()
    assert "scoring failed" not in log and "Worker exiting" not in log and " 500 " not in log


# --- a new champion is picked up without a restart and without a failed request ---

def test_new_champion_is_served_without_a_failed_request(tmp_path):
    settings = Settings(lake_uri=str(tmp_path / "lake"))
    uri = settings.resolved_mlflow_uri()
    first, second = train_bundle(seed=0, rows=1200, max_rounds=20), train_bundle(seed=1, rows=1200, max_rounds=20)
    register(uri, first)
    x = synthetic_rows(1, seed=4).to_numpy()
    body = rows_body([row(x[0])])
    seen: list[tuple[int, str | None, float | None]] = []
    stop = threading.Event()
    with local_endpoint(settings, port=free_port(), poll_seconds=0.3, workers=2, log_path=tmp_path / "server.log") as ep:
        client = Client(ep.url)

        def hammer():
            while not stop.is_set():
                status, _, raw = client.post(body)
                doc = json.loads(raw) if status == 200 else {}
                seen.append((status, doc.get("model", {}).get("version"),
                             doc["predictions"][0]["failure_risk"] if doc else None))

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        register(uri, second)  # version 2 becomes champion
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (len(seen) > 20 and all(v == "2" for _, v, _ in seen[-20:])):
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        server_pids = [ep.server.process.pid]
    assert seen and all(status == 200 for status, _, _ in seen), {s for s, _, _ in seen}
    versions = [v for _, v, _ in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    risk = {v: r for _, v, r in seen}
    assert abs(risk["1"] - first.predict_matrix(x)["failure_risk"][0]) <= 1e-12
    assert abs(risk["2"] - second.predict_matrix(x)["failure_risk"][0]) <= 1e-12
    with pytest.raises(ProcessLookupError):  # the server's process group is gone
        os.killpg(server_pids[0], 0)


def test_refinery_serve_command_runs_until_terminated(served, tmp_path):
    endpoint, _, _ = served
    lake = endpoint.serve_dir.parent / "lake"  # the contract server's registry, another serve folder
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "refinery.cli", "serve", "--lake", str(lake),
                             "--port", str(port), "--poll-seconds", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "REFINERY_SERVE_DIR": str(tmp_path / "serving")})
    try:
        first = proc.stdout.readline().decode()
        while first and "Ctrl-C stops" not in first:
            first = proc.stdout.readline().decode()
        assert f"maintenance version 1 (champion) at http://127.0.0.1:{port}/score" in first
        status, _, raw = Client(f"http://127.0.0.1:{port}/score").post(rows_body([GOOD]))
        assert status == 200 and json.loads(raw)["model"]["version"] == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    with pytest.raises(OSError):  # nothing listens any more
        Client(f"http://127.0.0.1:{port}/score").post(rows_body([GOOD]))


def test_serve_command_errors_name_the_bad_value(tmp_path, capsys):
    from refinery.cli import main

    lake = str(tmp_path / "lake")
    assert main(["serve", "--lake", lake, "--port", "http"]) == 2
    assert "--port 'http'" in capsys.readouterr().err
    assert main(["serve", "--lake", lake, "--poll-seconds", "0"]) == 2
    assert "--poll-seconds '0'" in capsys.readouterr().err
    assert main(["serve", "--lake", lake, "--port", str(free_port())]) == 2  # empty registry
    assert "has no alias 'champion'" in capsys.readouterr().err
    os.environ["REFINERY_SERVE_PYTHON"] = str(tmp_path / "nowhere" / "python")
    try:
        assert main(["serve", "--lake", lake]) == 2
    finally:
        del os.environ["REFINERY_SERVE_PYTHON"]
    err = capsys.readouterr().err
    assert "serve_python" in err and "make .venv-serve/.installed" in err and len(err.strip().splitlines()) == 1
