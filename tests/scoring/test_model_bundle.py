"""The served model format: save/load round trip, where it is found, what its outputs guarantee."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from scoring.model_bundle import BUNDLE_FILE, ModelBundle, find_bundle
from tests.scoring.synthetic_model import FEATURES, synthetic_rows, train_bundle


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return train_bundle(seed=3, rows=1500, max_rounds=30)


def test_round_trip_predicts_the_same_from_a_nested_folder(bundle, tmp_path):
    # AML mounts a registered MLflow model as AZUREML_MODEL_DIR/<name>/<version>/artifacts/bundle.
    bundle.save(tmp_path / "maintenance" / "3" / "artifacts" / "bundle")
    loaded = ModelBundle.load(tmp_path)
    assert (loaded.name, loaded.kind, loaded.features, loaded.outputs) == (
        bundle.name, "maintenance", list(FEATURES), ["failure_risk", "rul_hours"])
    x = synthetic_rows(50, seed=8).to_numpy()
    for key, value in bundle.predict_matrix(x).items():
        np.testing.assert_array_equal(loaded.predict_matrix(x)[key], value)
    assert loaded.spec["horizon_hours"] == bundle.spec["horizon_hours"]


def test_outputs_remaining_life_never_negative_and_probabilities(bundle):
    out = bundle.predict_matrix(np.full((4, len(FEATURES)), 50.0))  # far outside the training range
    assert (out["rul_hours"] >= 0).all() and ((out["failure_risk"] >= 0) & (out["failure_risk"] <= 1)).all()


def test_crossed_band_is_put_in_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    up = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 5)
    down = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, -x[:, 0]), 5)
    b = ModelBundle("production_x", "production", ["a", "b"], {"predicted": up, "low": up, "high": down})
    out = b.predict_matrix(x)
    assert (out["low"] <= out["high"]).all()


def test_bad_shapes_and_folders_are_named(bundle, tmp_path):
    with pytest.raises(ValueError, match=f"expects a matrix of {len(FEATURES)} feature columns"):
        bundle.predict_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="lacks feature column"):
        bundle.matrix(synthetic_rows(2).drop(columns=[FEATURES[0]]))
    with pytest.raises(ValueError, match="takes .* features, the bundle names 2"):
        ModelBundle("m", "maintenance", ["a", "b"], dict(bundle.boosters))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_bundle(tmp_path / "nowhere")
    bundle.save(tmp_path / "one")
    bundle.save(tmp_path / "two")
    with pytest.raises(FileNotFoundError, match=f"holds 2 {BUNDLE_FILE} files"):
        find_bundle(tmp_path)
