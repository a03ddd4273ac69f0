"""Online scoring core: a request body becomes a feature matrix, predictions become a response body.

Pure and HTTP-free: ``scoring/score.py`` (the script the inference server runs, here and on an AML
managed online endpoint) adds the HTTP checks and the model loading around it. The contract, also in
``scoring/openapi.json``:

request  ``{"rows": [{"asset_id": "P-101", "ts": "2026-03-01T10:00:00Z", "<feature>": 1.5 | null, ...}]}``
         ``asset_id`` a non-empty string; every model feature a number, or null for a missing value
         (LightGBM's NaN); ``ts`` optional (an ISO 8601 string or null), echoed back; nothing else.
response ``{"model": {"name", "version", "alias", "run_id"}, "predictions": [{"asset_id", "ts",
         <one number per model output, e.g. failure_risk, rul_hours>, "model_name", "model_version"}]}``
         one prediction per row, in request order.

A request that breaks the contract raises ``RequestError`` naming the field (``rows[3].flow_1__w6_std:
expected a number or null, got "abc"``). Only numpy and lightgbm are needed (orjson when installed:
the serving environment pins it); no pandas, whose per-request frame building is what makes the
common scoring script slow.
"""
from __future__ import annotations

import ctypes
import json
import math
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Callable, Sequence

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _c_str, _safe_call

from scoring.model_bundle import ModelBundle, finish_outputs
from scoring.serving_folder import MAX_ROWS

MAX_ASSET_ID_CHARS = 200
MAX_TS_CHARS = 64

try:  # orjson: about 5x faster, and strict RFC 8259 (no NaN, Infinity or 1e999) by itself
    import orjson

    _decode_error: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
    _FINITE_NUMBERS = True  # orjson refuses 1e999 and reads integers beyond 64 bits as (finite) floats

    def _loads(body: bytes) -> Any:
        return orjson.loads(body)

    def dumps(doc: Any) -> bytes:
        """``doc`` as compact UTF-8 JSON."""
        return orjson.dumps(doc)
except ImportError:  # any environment with only the standard library, made as strict
    _decode_error = (ValueError, RecursionError)
    _FINITE_NUMBERS = False  # json reads 1e999 as inf and 10**400 as an int no double holds

    def _no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def _loads(body: bytes) -> Any:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)

    def dumps(doc: Any) -> bytes:
        """``doc`` as compact UTF-8 JSON."""
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


class NonFinite(str):
    """A ``NaN``/``Infinity`` literal, kept as text by the lenient re-parse so the checks can name its field."""


def _loads_lenient(body: bytes) -> Any:
    """``body`` parsed with NaN/Infinity kept as ``NonFinite`` (and 1e999 as inf); only used to
    find the field of a value the strict parser refused."""
    return json.loads(body.decode("utf-8"), parse_constant=NonFinite)


class RequestError(ValueError):
    """A request that breaks the contract: HTTP ``status``, the offending ``field`` and why."""

    def __init__(self, status: int, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.status = status
        self.field = field

    def body(self) -> bytes:
        # The standard library escapes what orjson refuses: a field named by the lenient re-parse
        # may hold a lone surrogate ("\\ud800" is valid JSON but no UTF-8).
        return json.dumps({"message": str(self), "field": self.field}).encode("ascii")


@dataclass(frozen=True)
class ParsedRequest:
    """The rows of a valid request: their ids and timestamps, and the float64 feature matrix."""

    asset_ids: list[str]
    ts: list[str | None]
    matrix: np.ndarray


def show(value: Any, limit: int = 40) -> str:
    """A short JSON-like rendering of a bad value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, OverflowError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NUMBER_TYPES = frozenset({float, int, type(None)})
_ABSENT = object()


class RowParser:
    """Validates request bodies against one model's features and builds its input matrix.

    The common case (every row well-formed) runs as set comparisons and C-level loops; only a
    bad request takes the slow path that finds and names the first offending field.
    """

    def __init__(self, features: Sequence[str], max_rows: int = MAX_ROWS):
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        reserved = {"asset_id", "ts"} & set(features)
        if reserved:
            raise ValueError(f"model features may not be named {sorted(reserved)}: the request uses those names")
        self.features = list(features)
        self.max_rows = max_rows
        self._keys_ts = frozenset(["asset_id", "ts", *self.features])
        self._n_keys = len(self.features) + 1  # asset_id and the features; ts may come on top
        self._values: Callable[[dict], tuple] = (
            itemgetter(*self.features) if len(self.features) > 1 else (lambda row, k=self.features[0]: (row[k],)))

    def parse(self, body: bytes) -> ParsedRequest:
        """The rows of ``body``; RequestError naming the field for anything off-contract."""
        try:
            doc = _loads(body)
        except _decode_error as exc:
            strict = RequestError(400, "body", f"not valid JSON ({_reason(exc)})")
            try:  # valid but for NaN, Infinity or 1e999? then the checks below name the field
                doc = _loads_lenient(body)
            except (ValueError, RecursionError):
                raise strict from None
            self._parse_doc(doc, finite=False)
            raise strict from None  # not reached: a non-finite value always fails a check
        return self._parse_doc(doc, _FINITE_NUMBERS)

    def _parse_doc(self, doc: Any, finite: bool) -> ParsedRequest:
        """``finite``: the parser already refused numbers no double can hold."""
        if type(doc) is not dict:
            raise RequestError(400, "body", f'expected a JSON object {{"rows": [...]}}, got {_kind(doc)}')
        if "rows" not in doc:
            raise RequestError(400, "rows", "missing: the body must hold a list of rows")
        if len(doc) > 1:
            extra = next(k for k in doc if k != "rows")
            raise RequestError(400, extra, 'unknown field: the body holds only "rows"')
        rows = doc["rows"]
        if type(rows) is not list or not rows:
            raise RequestError(400, "rows", f"expected a non-empty list of row objects, got {_kind(rows)}")
        if len(rows) > self.max_rows:
            raise RequestError(413, "rows", f"{len(rows)} rows, at most {self.max_rows} per request")
        n_keys, values, numbers = self._n_keys, self._values, _NUMBER_TYPES
        ids: list[str] = []
        stamps: list[str | None] = []
        matrix_rows: list[tuple] = []
        for i, row in enumerate(rows):
            if type(row) is not dict:
                raise RequestError(400, f"rows[{i}]", f"expected a row object, got {_kind(row)}")
            # Every feature present (itemgetter) and the right number of keys: nothing missing
            # or extra, without comparing key sets.
            k = len(row)
            if k != n_keys and (k != n_keys + 1 or "ts" not in row):
                self._key_error(i, row)
            try:
                vals = values(row)
            except KeyError:
                self._key_error(i, row)
            if not numbers.issuperset(map(type, vals)):
                self._value_error(i, vals)
            asset = row.get("asset_id", _ABSENT)
            if type(asset) is not str or not asset or len(asset) > MAX_ASSET_ID_CHARS:
                if asset is _ABSENT:
                    self._key_error(i, row)
                raise RequestError(400, f"rows[{i}].asset_id",
                                   f"expected a non-empty string of at most {MAX_ASSET_ID_CHARS} characters, got {show(asset)}")
            ts = row.get("ts")
            if ts is not None:
                _check_ts(i, ts)
            ids.append(asset)
            stamps.append(ts)
            matrix_rows.append(vals)
        try:
            x = np.array(matrix_rows, dtype=np.float64)  # null -> NaN, LightGBM's missing value
        except OverflowError:  # an integer beyond float range
            self._range_error(matrix_rows)
        if not finite and np.isinf(x).any():  # a number JSON allows but a double cannot hold (1e999)
            self._range_error(matrix_rows)
        return ParsedRequest(ids, stamps, x)

    def _key_error(self, i: int, row: dict) -> None:
        missing = [f for f in ("asset_id", *self.features) if f not in row]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise RequestError(400, f"rows[{i}].{missing[0]}", f"missing: every row needs asset_id and each model feature{more}")
        extra = next(k for k in row if k not in self._keys_ts)
        raise RequestError(400, f"rows[{i}].{extra}", "unknown field: not an input of the served model")

    def _value_error(self, i: int, vals: tuple) -> None:
        for name, v in zip(self.features, vals):
            if isinstance(v, NonFinite):
                raise RequestError(400, f"rows[{i}].{name}", f"{v} is not a JSON number (send null for a missing value)")
            if type(v) not in _NUMBER_TYPES:
                raise RequestError(400, f"rows[{i}].{name}", f"expected a number or null, got {show(v)}")

    def _range_error(self, matrix_rows: list[tuple]) -> None:
        for i, vals in enumerate(matrix_rows):
            for name, v in zip(self.features, vals):
                if v is not None and not _finite(v):
                    raise RequestError(400, f"rows[{i}].{name}", f"number out of range: {show(v)}")
        raise RequestError(400, "rows", "a number is out of range")  # unreachable: a bad value exists


def _finite(v: float | int) -> bool:
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _check_ts(i: int, ts: Any) -> None:
    if type(ts) is not str or len(ts) > MAX_TS_CHARS:
        raise RequestError(400, f"rows[{i}].ts", f"expected an ISO 8601 timestamp string or null, got {show(ts)}")
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        raise RequestError(400, f"rows[{i}].ts", f"not an ISO 8601 timestamp: {show(ts)}") from None


def _kind(value: Any) -> str:
    if isinstance(value, NonFinite):
        return str(value)
    return {dict: "an object", list: "an empty list" if value == [] else "a list", str: "a string",
            bool: "a boolean", int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        text = "nested too deeply"
    return text if len(text) <= 120 else text[:117] + "..."


# LightGBM C API constants (c_api.h): normal prediction (probabilities for binary), float64 input.
_PREDICT_NORMAL = 0
_DTYPE_FLOAT64 = 1


class FastBooster:
    """One single-output booster behind LightGBM's C prediction calls.

    ``Booster.predict`` builds a predictor, a parameter string and checks its input on every
    call: tens of microseconds, more than the trees take for one row. Here the single-row
    fast path (``LGBM_BoosterPredictForMatSingleRowFast``) is set up once per loaded model and a
    many-row matrix goes straight to ``LGBM_BoosterPredictForMat``. One thread: each server
    worker is its own process and scores one request at a time. Not shared between threads
    (the single-row output buffer is this object's).
    """

    def __init__(self, booster: lgb.Booster):
        if booster.num_model_per_iteration() != 1:
            raise ValueError("FastBooster takes single-output boosters (binary or regression)")
        self._booster = booster  # keeps the handle alive as long as this object
        self._handle = booster._handle
        self._ncol = booster.num_feature()
        self._params = _c_str("num_threads=1")
        self._fast = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            self._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(_DTYPE_FLOAT64), ctypes.c_int32(self._ncol), self._params, ctypes.byref(self._fast)))
        self._out_len = ctypes.c_int64()
        self._out_len_ref = ctypes.byref(self._out_len)
        self._out1 = ctypes.c_double()
        self._out1_ref = ctypes.byref(self._out1)
        # Our own function objects (CDLL item access makes a new one), so that declaring the
        # argument types, which spares a conversion object per argument per call, leaves
        # lightgbm's own calls as they are.
        self._single = _LIB["LGBM_BoosterPredictForMatSingleRowFast"]
        self._single.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64),
                                 ctypes.POINTER(ctypes.c_double)]
        self._single.restype = ctypes.c_int
        self._many = _LIB.LGBM_BoosterPredictForMat

    def predict_row(self, data: int) -> float:
        """The prediction for the one row of float64 features at address ``data``."""
        if self._single(self._fast, data, self._out_len_ref, self._out1_ref):
            _safe_call(-1)  # raises LightGBM's last error
        return self._out1.value

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` (C-contiguous float64, ``num_feature`` columns)."""
        if x.dtype != np.float64 or x.ndim != 2 or x.shape[1] != self._ncol or not x.flags.c_contiguous:
            raise ValueError(f"expected a C-contiguous float64 matrix of {self._ncol} columns, got {x.dtype} {x.shape}")
        n = x.shape[0]
        if n == 1:
            return np.array([self.predict_row(x.ctypes.data)])
        out = np.empty(n, dtype=np.float64)
        _safe_call(self._many(
            self._handle, ctypes.c_void_p(x.ctypes.data), ctypes.c_int(_DTYPE_FLOAT64), ctypes.c_int32(n),
            ctypes.c_int32(self._ncol), ctypes.c_int(1), ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(-1), self._params, ctypes.byref(self._out_len),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        return out

    def __del__(self) -> None:
        fast = getattr(self, "_fast", None)
        if fast is not None and fast.value:
            _LIB.LGBM_FastConfigFree(fast)
            self._fast = None


@dataclass(frozen=True)
class ModelIdentity:
    """Which registered model answers: name, version, the alias it was served under, its run."""

    name: str
    version: str | None
    alias: str | None = None
    run_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "alias": self.alias, "run_id": self.run_id}


class ServedModel:
    """A loaded bundle ready to answer requests: parser, fast boosters and identity."""

    def __init__(self, bundle: ModelBundle, identity: ModelIdentity, max_rows: int = MAX_ROWS):
        self.bundle = bundle
        self.identity = identity
        self.parser = RowParser(bundle.features, max_rows)
        self.outputs = list(bundle.outputs)
        self._boosters = {name: FastBooster(b) for name, b in bundle.boosters.items()}
        self._model_doc = identity.as_dict()

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One array per output, as ``ModelBundle.predict_matrix`` gives them."""
        return finish_outputs({name: b.predict(x) for name, b in self._boosters.items()})

    def _predict_row(self, x: np.ndarray) -> dict[str, float]:
        """``predict`` for a one-row matrix, as plain floats (no array work for a single row)."""
        data = x.ctypes.data
        return finish_outputs({name: b.predict_row(data) for name, b in self._boosters.items()})

    def score(self, body: bytes) -> bytes:
        """The response body for a request body; RequestError for a bad request."""
        req = self.parser.parse(body)
        name, version = self.identity.name, self.identity.version
        if len(req.asset_ids) == 1:
            predictions = [{"asset_id": req.asset_ids[0], "ts": req.ts[0], **self._predict_row(req.matrix),
                            "model_name": name, "model_version": version}]
        else:
            out = self.predict(req.matrix)
            names = self.outputs
            columns = [out[n].tolist() for n in names]
            predictions = [{"asset_id": a, "ts": t, **dict(zip(names, vals)), "model_name": name, "model_version": version}
                           for a, t, *vals in zip(req.asset_ids, req.ts, *columns)]
        return dumps({"model": self._model_doc, "predictions": predictions})

    def describe(self, max_body_bytes: int) -> bytes:
        """What GET /score answers: the model, its input features and outputs, the request limits."""
        return dumps({"model": self._model_doc, "kind": self.bundle.kind, "features": self.bundle.features,
                      "outputs": self.outputs, "spec": self.bundle.spec,
                      "limits": {"max_rows": self.parser.max_rows, "max_body_bytes": max_body_bytes}})
