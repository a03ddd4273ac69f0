"""MLflow logging, registry and the promotion gate on a real SQLite store under tmp_path."""
from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.lgbm import LgbmParams, train_classifier, train_regressor
from training.tracking import (
    CHAMPION,
    EvalData,
    log_trained_model,
    mlflow_tracking,
    promote,
    promote_if_better,
    rollback,
)

FAST = LgbmParams(learning_rate=0.2, num_leaves=4, min_data_in_leaf=5, max_rounds=30, early_stopping_rounds=5)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root}/mlflow.db", (root / "artifacts").as_uri()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = x["a"] * 2 + rng.normal(0, 0.1, 300)
    return x, y.to_numpy()


def _log(store, data, name: str, slice_id: str, rmse: float, inputs=None):
    uri, artifacts = store
    x, y = data
    model = train_regressor(x.iloc[:200], y[:200], x.iloc[200:], y[200:], FAST)
    return log_trained_model(
        uri, name, model, input_example=x, params={"features": "a,b"}, metrics={"rmse": rmse},
        eval_slice_id=slice_id, inputs=inputs or {"gold.asset_features": 3, "silver.telemetry": 7},
        eval_data=EvalData(y[200:], model.predict(x.iloc[200:])), artifact_root=artifacts,
    )


def test_logged_run_has_params_metrics_plots_model_and_version_tags(store, data):
    uri, _ = store
    before = mlflow.get_tracking_uri()
    logged = _log(store, data, "quality_model", "slice-A", 0.5)
    assert mlflow.get_tracking_uri() == before  # restored
    assert "MLFLOW_TRACKING_URI" not in os.environ or os.environ["MLFLOW_TRACKING_URI"] != uri
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logged.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "quality_model"
    assert run.data.params["input.gold.asset_features"] == "3"
    assert run.data.tags["input.silver.telemetry"] == "7"
    assert run.data.metrics["rmse"] == 0.5
    artifacts = {a.path for a in client.list_artifacts(logged.run_id, "plots")}
    assert artifacts == {"plots/feature_importance.png", "plots/residuals.png"}
    version = client.get_model_version("quality_model", logged.version)
    assert version.tags["eval_slice_id"] == "slice-A" and version.tags["eval.rmse"] == "0.5"
    assert version.tags["input.gold.asset_features"] == "3"
    with mlflow_tracking(uri):
        loaded = mlflow.pyfunc.load_model(logged.model_uri)
    assert loaded.metadata.signature is not None
    # The served model is the evaluated one: trees up to the early-stopping round only.
    x = data[0].head(20)
    trained = train_regressor(data[0].iloc[:200], data[1][:200], data[0].iloc[200:], data[1][200:], FAST)
    np.testing.assert_allclose(loaded.predict(x)["prediction"].to_numpy(), trained.predict(x))


def test_classifier_logs_a_pr_curve(store):
    uri, artifacts = store
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(size=400)})
    y = (x["a"] + rng.normal(0, 0.5, 400) > 1).astype(int).to_numpy()
    model = train_classifier(x.iloc[:300], y[:300], x.iloc[300:], y[300:], FAST)
    logged = log_trained_model(uri, "failure_model", model, input_example=x, params={}, metrics={"pr_auc": 0.7},
                               eval_slice_id="s", inputs={}, eval_data=EvalData(y[300:], model.predict(x.iloc[300:])),
                               artifact_root=artifacts)
    paths = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(logged.run_id, "plots")}
    assert "plots/pr_curve.png" in paths


def test_gate_promotes_only_when_better_by_margin_on_the_same_slice(store, data):
    uri, _ = store
    client = MlflowClient(tracking_uri=uri)
    name = "gate_model"
    v1 = _log(store, data, name, "slice-A", 1.0).version
    first = promote_if_better(client, name, v1, "rmse", higher_is_better=False, margin=0.05, eval_metrics={"rmse": 1.0})
    assert first.promoted and "no champion yet" in str(first)
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == v1

    v2 = _log(store, data, name, "slice-A", 0.98).version
    outcome = promote_if_better(client, name, v2, "rmse", False, 0.05, {"rmse": 0.98})
    assert not outcome.promoted and str(outcome).startswith("not promoted:") and "margin" in outcome.reason
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == v1

    v3 = _log(store, data, name, "slice-B", 0.5).version
    outcome = promote_if_better(client, name, v3, "rmse", False, 0.05, {"rmse": 0.5})
    assert not outcome.promoted and "slice-B" in outcome.reason and "slice-A" in outcome.reason

    v4 = _log(store, data, name, "slice-A", 0.9).version
    outcome = promote_if_better(client, name, v4, "rmse", False, 0.05, {"rmse": 0.9})
    assert outcome.promoted and outcome.previous_champion == v1
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == v4
    assert client.get_model_version(name, v4).tags["previous_champion"] == v1

    again = promote_if_better(client, name, v4, "rmse", False, 0.05, {"rmse": 0.9})
    assert not again.promoted and "already champion" in again.reason

    with pytest.raises(ValueError, match="no 'auc'"):
        promote_if_better(client, name, v4, "auc", True, 0.0, {"rmse": 0.9})
    with pytest.raises(ValueError, match="has no version '99'"):
        promote_if_better(client, name, "99", "rmse", False, 0.0, {"rmse": 0.1})
    with pytest.raises(ValueError, match="margin"):
        promote_if_better(client, name, v4, "rmse", False, -1, {"rmse": 0.9})

    back = rollback(client, name)
    assert back.promoted and str(back).startswith("rolled back:")
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == v1
    assert client.get_registered_model(name).tags["last_rollback"] == f"{v4}->{v1}"
    nothing = rollback(client, name)  # v1 was the first champion: nothing before it
    assert not nothing.promoted and "records no previous champion" in nothing.reason

    manual = promote(client, name, v2)
    assert manual.promoted and str(client.get_model_version_by_alias(name, CHAMPION).version) == v2
    assert rollback(client, name).version == v1


def test_higher_is_better_metrics(store, data):
    uri, _ = store
    client = MlflowClient(tracking_uri=uri)
    name = "gate_auc"
    a = _log(store, data, name, "s", 0.1).version
    promote_if_better(client, name, a, "pr_auc", True, 0.01, {"pr_auc": 0.60})
    b = _log(store, data, name, "s", 0.1).version
    assert not promote_if_better(client, name, b, "pr_auc", True, 0.01, {"pr_auc": 0.605}).promoted
    assert promote_if_better(client, name, b, "pr_auc", True, 0.01, {"pr_auc": 0.62}).promoted


def test_tracking_context_restores_uri_after_errors(tmp_path):
    before = mlflow.get_tracking_uri()
    with pytest.raises(RuntimeError):
        with mlflow_tracking(f"sqlite:///{tmp_path}/other.db"):
            assert mlflow.get_tracking_uri().endswith("other.db")
            raise RuntimeError("boom")
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ or not os.environ["MLFLOW_TRACKING_URI"].endswith("other.db")


def test_bad_inputs_are_named(store, data):
    uri, _ = store
    x, y = data
    model = train_regressor(x.iloc[:200], y[:200], x.iloc[200:], y[200:], FAST)
    with pytest.raises(ValueError, match="'gold.t'"):
        log_trained_model(uri, "m", model, input_example=x, params={}, metrics={}, eval_slice_id="s",
                          inputs={"gold.t": -1})
    with pytest.raises(ValueError, match="eval_slice_id"):
        log_trained_model(uri, "m", model, input_example=x, params={}, metrics={}, eval_slice_id="", inputs={})


def test_environment_variables_are_left_as_found(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///elsewhere.db")
    with mlflow_tracking(f"sqlite:///{tmp_path}/env.db"):
        pass
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:///elsewhere.db"


def test_new_sqlite_store_leaves_the_working_directory_alone(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with mlflow_tracking(f"sqlite:///{tmp_path}/fresh.db") as client:
        client.search_experiments()
        default = client.get_experiment("0")
    assert list(cwd.iterdir()) == []  # mlflow's default would have made ./mlruns here
    assert default.artifact_location.startswith((tmp_path / "mlartifacts").as_uri())
