"""Features and both models end to end on a small simulated plant: train twice, gate, roll back."""
from __future__ import annotations

import re

import pytest

from data_prep.lake import Lake
from refinery.cli import main
from refinery.settings import Settings
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
