"""The online scoring core in-process: request checks that name the field, fast LightGBM calls
that predict exactly what ``Booster.predict`` does, the response shape."""
from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from scoring.model_bundle import ModelBundle
from scoring.online import FastBooster, ModelIdentity, RequestError, RowParser, ServedModel
from tests.scoring.synthetic_model import FEATURES, synthetic_rows, train_bundle


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return train_bundle(seed=3, rows=1500, max_rounds=30)


@pytest.fixture(scope="module")
def served(bundle) -> ServedModel:
    return ServedModel(bundle, ModelIdentity("maintenance", "7", "champion", "run-1"), max_rows=50)


def row(values: np.ndarray, asset: str = "P-101", **extra) -> dict:
    return {"asset_id": asset, **{f: None if np.isnan(v) else float(v) for f, v in zip(FEATURES, values)}, **extra}


def body(*rows: dict) -> bytes:
    return json.dumps({"rows": list(rows)}).encode()


def test_fast_booster_predicts_what_booster_predict_does(bundle):
    x = synthetic_rows(200, seed=11, missing=0.2).to_numpy()
    for booster in bundle.boosters.values():
        fast = FastBooster(booster)
        np.testing.assert_allclose(fast.predict(np.ascontiguousarray(x)), booster.predict(x), rtol=0, atol=1e-12)
        for i in range(20):  # the single-row fast path
            one = np.ascontiguousarray(x[i:i + 1])
            assert abs(fast.predict(one)[0] - booster.predict(one)[0]) <= 1e-12


def test_served_predictions_equal_the_bundle_including_the_finishing():
    # A remaining-life booster that predicts negative values: served output is clamped at 0 as in the bundle.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    params = {"objective": "regression", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    rul = lgb.train(params, lgb.Dataset(x, 50 * x[:, 0]), 20)
    risk = lgb.train({**params, "objective": "binary"}, lgb.Dataset(x, (x[:, 1] > 0).astype(float)), 20)
    b = ModelBundle("m", "maintenance", ["a", "b", "c"], {"failure_risk": risk, "rul_hours": rul})
    model = ServedModel(b, ModelIdentity("m", "1"))
    expected = b.predict_matrix(x)
    assert (expected["rul_hours"] == 0).any()
    got = model.predict(np.ascontiguousarray(x))
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-12)


def test_response_has_one_prediction_per_row_in_order(served, bundle):
    x = synthetic_rows(3, seed=5, missing=0.3).to_numpy()
    rows = [row(x[0], "A", ts="2026-03-01T10:00:00Z"), row(x[1], "B"), row(x[2], "C", ts=None)]
    doc = json.loads(served.score(body(*rows)))
    assert doc["model"] == {"name": "maintenance", "version": "7", "alias": "champion", "run_id": "run-1"}
    expected = bundle.predict_matrix(x)
    assert [p["asset_id"] for p in doc["predictions"]] == ["A", "B", "C"]
    assert [p["ts"] for p in doc["predictions"]] == ["2026-03-01T10:00:00Z", None, None]
    for i, p in enumerate(doc["predictions"]):
        assert set(p) == {"asset_id", "ts", "failure_risk", "rul_hours", "model_name", "model_version"}
        assert (p["model_name"], p["model_version"]) == ("maintenance", "7")
        assert abs(p["failure_risk"] - expected["failure_risk"][i]) <= 1e-12
        assert abs(p["rul_hours"] - expected["rul_hours"][i]) <= 1e-12


GOOD = np.linspace(-1, 1, len(FEATURES))
F = FEATURES[4]


@pytest.mark.parametrize("raw, status, field", [
    (b'{"rows": [', 400, "body"),
    (b"", 400, "body"),
    (b"\xff\xfe", 400, "body"),
    (b"[" * 5000, 400, "body"),
    (b"[]", 400, "body"),
    (b'{"row": []}', 400, "rows"),
    (json.dumps({"rows": [row(GOOD)], "extra": 1}).encode(), 400, "extra"),
    (b'{"rows": []}', 400, "rows"),
    (b'{"rows": {"a": 1}}', 400, "rows"),
    (b'{"rows": [7]}', 400, "rows[0]"),
    (body(row(GOOD), {k: v for k, v in row(GOOD).items() if k != F}), 400, f"rows[1].{F}"),
    (body({k: v for k, v in row(GOOD).items() if k != "asset_id"}), 400, "rows[0].asset_id"),
    (body(row(GOOD, pressure="high")), 400, "rows[0].pressure"),
    (body(row(GOOD) | {F: "abc"}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: True}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: [1.0]}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: float("nan")}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: float("-inf")}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: 10 ** 400}), 400, f"rows[0].{F}"),
    (body(row(GOOD) | {F: 0.5}).replace(b"0.5", b"1e999"), 400, f"rows[0].{F}"),
    (body(row(GOOD, asset="")), 400, "rows[0].asset_id"),
    (body(row(GOOD) | {"asset_id": 101}), 400, "rows[0].asset_id"),
    (body(row(GOOD, ts="yesterday")), 400, "rows[0].ts"),
    (body(row(GOOD, ts=1700000000)), 400, "rows[0].ts"),
    (body(*[row(GOOD)] * 51), 413, "rows"),
])
def test_bad_request_names_the_field(served, raw, status, field):
    with pytest.raises(RequestError) as caught:
        served.score(raw)
    assert (caught.value.status, caught.value.field) == (status, field)
    assert str(caught.value).startswith(f"{field}: ")
    assert json.loads(caught.value.body()) == {"message": str(caught.value), "field": field}


def test_error_messages_say_what_was_wrong(served):
    def message(raw: bytes) -> str:
        with pytest.raises(RequestError) as caught:
            served.score(raw)
        return str(caught.value)

    assert message(body(row(GOOD) | {F: "abc"})) == f'rows[0].{F}: expected a number or null, got "abc"'
    assert message(body(row(GOOD) | {F: float("nan")})) == f"rows[0].{F}: NaN is not a JSON number (send null for a missing value)"
    assert "missing" in message(body({k: v for k, v in row(GOOD).items() if k != F}))
    assert message(body(row(GOOD, pressure=1))) == "rows[0].pressure: unknown field: not an input of the served model"


def test_integers_and_nulls_are_numbers_and_missing_values(served, bundle):
    values = np.array([np.nan if i % 3 == 0 else float(i % 7) for i in range(len(FEATURES))])
    r = row(values)
    r.update({f: int(v) for f, v in r.items() if isinstance(v, float)})
    doc = json.loads(served.score(body(r)))
    expected = bundle.predict_matrix(values[None, :])
    assert abs(doc["predictions"][0]["failure_risk"] - expected["failure_risk"][0]) <= 1e-12


def test_a_field_no_utf8_can_hold_is_still_named(served):
    # "\ud800" is valid JSON, a lone surrogate no UTF-8 can carry: orjson refuses it, the
    # lenient re-parse names it, and the error body escapes it.
    raw = json.dumps({"rows": [row(GOOD)], "\ud800": 1}).encode()
    with pytest.raises(RequestError) as caught:
        served.score(raw)
    assert caught.value.field == "\ud800"
    assert json.loads(caught.value.body())["field"] == "\ud800"


def test_parser_refuses_features_named_like_request_fields():
    with pytest.raises(ValueError, match="asset_id"):
        RowParser(["x", "asset_id"])
