"""Features and both models end to end on a small simulated plant: train twice, gate, roll back."""
from __future__ import annotations

import re

import numpy as np
import pytest
from mlflow import MlflowClient

from data_prep.lake import Lake
from refinery.cli import main
from refinery.settings import Settings
from scoring.registry import fetch_bundle, resolve
from tests.conftest import prepare_plant

pytestmark = pytest.mark.slow


def _metrics(out: str) -> list[str]:
    return re.findall(r"^\s+\S+\s+model .*$", out, flags=re.M)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spark):
    _, lake = prepare_plant(tmp_path_factory.mktemp("train_plant"), assets=8, days=5, seed=5)
    return lake


def test_features_then_two_trainings_register_gate_and_record_inputs(trained, capsys):
    from training.tracking import CHAMPION, mlflow_tracking

    lake = str(trained)
    capsys.readouterr()
    assert main(["features", "--lake", lake]) == 0
    assert "gold/asset_features version 0" in capsys.readouterr().out
    assert main(["features", "--lake", lake]) == 0  # same rows: no new version
    assert "gold/asset_features version 0" in capsys.readouterr().out

    outs = {}
    for round_ in (1, 2):
        for model in ("maintenance", "production"):
            assert main(["train", "--lake", lake, "--model", model]) == 0
            outs[model, round_] = capsys.readouterr().out
    assert "maintenance version 1: promoted" in outs["maintenance", 1]
    assert "maintenance version 2: not promoted: pr_auc" in outs["maintenance", 2]
    assert "not better by the margin" in outs["maintenance", 2]
    assert "naive" in outs["maintenance", 1] and "naive" in outs["production", 1]
    for model in ("maintenance", "production"):
        assert _metrics(outs[model, 1]) == _metrics(outs[model, 2])  # same data, same seed, same metrics
    assert outs["production", 2].count("not promoted") == outs["production", 1].count("promoted: version 1 is champion")

    uri = Settings(lake_uri=lake).resolved_mlflow_uri()
    with mlflow_tracking(uri) as client:
        names = sorted(m.name for m in client.search_registered_models())
        assert "maintenance" in names and any(n.startswith("production_") for n in names)
        for name in names:
            assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
            assert len(client.search_model_versions(f"name='{name}'")) == 2
        v2 = client.get_model_version("maintenance", "2")
        run = client.get_run(v2.run_id)
        assert run.data.params["input.gold/asset_features"] == str(Lake(lake).version("gold", "asset_features"))
        prod = client.get_model_version(names[-1], "1")
        prod_run = client.get_run(prod.run_id)
        assert {"input.silver/production", "input.silver/assets"} <= set(prod_run.data.params)

    assert main(["promote", "--lake", lake, "--model", "maintenance", "--version", "2"]) == 0
    assert "promoted: version 2 is champion" in capsys.readouterr().out
    assert main(["rollback", "--lake", lake, "--model", "maintenance"]) == 0
    assert "champion moved from version 2 back to 1" in capsys.readouterr().out


def test_batch_scoring_writes_gold_with_lineage_once_per_model_version(trained, capsys):
    """After the test above (champion = version 1 of every model): score, score again, score a
    new champion; predictions carry lineage and never duplicate; recommendations stay safe."""
    import mlflow

    from scoring.batch_score import PREDICTIONS, RECOMMENDATIONS
    from training.tracking import mlflow_tracking

    lake_path = str(trained)
    lake = Lake(lake_path)
    uri = Settings(lake_uri=lake_path).resolved_mlflow_uri()
    assert main(["score", "--lake", lake_path]) == 0
    assert "rows from maintenance version 1 (champion)" in capsys.readouterr().out
    preds = lake.read_pandas(*PREDICTIONS)
    features = lake.read_pandas("gold", "asset_features")
    assert len(preds) == len(features) and not preds.duplicated(["asset_id", "ts"]).any()
    lineage = ["model_name", "model_version", "model_alias", "mlflow_run_id", "source_table",
               "source_table_version", "scored_at"]
    assert preds[lineage].notna().all().all()
    assert set(preds["model_version"]) == {"1"} and set(preds["source_table_version"]) == {lake.version("gold", "asset_features")}
    assert preds["failure_risk"].between(0, 1).all() and (preds["rul_hours"] >= 0).all()
    assert lake.uri(*PREDICTIONS).endswith("maintenance_predictions")
    # Batch scores equal what MLflow's own pyfunc loader predicts for the same rows.
    with mlflow_tracking(uri) as client:
        run_id = client.get_model_version_by_alias("maintenance", "champion").run_id
        model = mlflow.pyfunc.load_model("models:/maintenance@champion")
    assert set(preds["mlflow_run_id"]) == {run_id}
    joined = features.merge(preds[["asset_id", "ts", "failure_risk", "rul_hours"]], on=["asset_id", "ts"])
    expected = model.predict(joined[model.metadata.get_input_schema().input_names()])
    np.testing.assert_allclose(joined["failure_risk"], expected["failure_risk"], rtol=1e-9)

    recs = lake.read_pandas(*RECOMMENDATIONS)
    assert len(recs) > 0 and recs[lineage].notna().all().all()
    with mlflow_tracking(uri):
        bundles = {name: fetch_bundle(uri, resolve(MlflowClient(uri), name, "champion"))
                   for name in sorted(set(recs["model_name"]))}
    for row in recs.itertuples():
        env = bundles[row.model_name].spec["envelope"]
        current, proposed = dict(row.current_settings), dict(row.recommended_settings)
        for name, limits in env.items():
            assert limits["min"] - 1e-9 <= proposed[name] <= limits["max"] + 1e-9
            assert abs(proposed[name] - current[name]) <= limits["max_step"] + 1e-9 or not (
                limits["min"] <= current[name] <= limits["max"])
        assert row.band_low <= row.band_high and row.predicted_gain >= 0

    versions = (lake.version(*PREDICTIONS), lake.version(*RECOMMENDATIONS))
    assert main(["score", "--lake", lake_path]) == 0
    assert "already scored" in capsys.readouterr().out
    assert (lake.version(*PREDICTIONS), lake.version(*RECOMMENDATIONS)) == versions
    assert len(lake.read_pandas(*PREDICTIONS)) == len(preds)

    assert main(["promote", "--lake", lake_path, "--model", "maintenance", "--version", "2"]) == 0
    assert main(["score", "--lake", lake_path]) == 0
    after = lake.read_pandas(*PREDICTIONS)
    assert after.groupby("model_version").size().to_dict() == {"1": len(preds), "2": len(preds)}
