"""Environments pin exactly what pyproject.toml pins: one source of truth for versions."""
from __future__ import annotations

import pytest

from pipelines.environments import OWN_PINS, drift, environment_files, load_spec, pyproject_pins


def test_one_environment_per_runtime():
    assert [p.stem for p in environment_files()] == ["monitor", "serve", "spark", "train"]


def test_environments_match_pyproject():
    assert drift() == []


@pytest.mark.parametrize("path", environment_files(), ids=lambda p: p.stem)
def test_environment_loads_with_azure_ai_ml(path):
    from azure.ai.ml import load_environment

    env = load_environment(source=str(path))
    spec = load_spec(path)
    assert env.name == spec.name == f"refinery-{path.stem}"
    assert env.conda_file["dependencies"][0] == "python=3.11"
    assert spec.pins and (set(spec.pins) <= set(pyproject_pins()) or path.stem in OWN_PINS)


def test_serve_environment_pins_the_server_and_shares_the_model_stack():
    spec = load_spec(next(p for p in environment_files() if p.stem == "serve"))
    project = pyproject_pins()
    assert "azureml-inference-server-http" in spec.pins and "azureml-inference-server-http" not in project
    # The boosters must load and predict as they did in training: same LightGBM, same numpy.
    for shared in ("lightgbm", "numpy"):
        assert spec.pins[shared] == project[shared]
    assert not {"mlflow", "azure-ai-ml"} & set(spec.pins)


def test_own_pins_runtime_still_matches_shared_packages(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy==2.2.6"]\n')
    (tmp_path / "x.yml").write_text("name: refinery-x\nconda_file: x.conda.yml\n")
    (tmp_path / "x.conda.yml").write_text("dependencies:\n  - pip:\n      - numpy==2.2.5\n      - server==1.0\n")
    assert drift(tmp_path / "pyproject.toml", tmp_path, own_pins={"x": "why"}) == [
        "x.conda.yml: numpy==2.2.5 but pyproject.toml pins numpy==2.2.6"]
    assert "x.conda.yml: server==1.0 is not a pinned dependency in pyproject.toml" in drift(
        tmp_path / "pyproject.toml", tmp_path, own_pins={})


def test_spark_environment_leaves_spark_to_the_runtime():
    assert "pyspark" not in load_spec(next(p for p in environment_files() if p.stem == "spark")).pins


def test_drift_names_the_package_and_both_versions(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nrequires-python = ">=3.11"\ndependencies = ["pandas==2.3.3", "numpy==2.2.6", "rapidfuzz==3.14.3"]\n'
    )
    (tmp_path / "x.yml").write_text("name: refinery-x\nversion: '1'\nconda_file: x.conda.yml\n")
    (tmp_path / "x.conda.yml").write_text(
        "dependencies:\n  - python=3.10\n  - pip:\n      - pandas==2.3.2\n      - numpy==2.2.6\n      - polars==1.0.0\n"
    )
    problems = drift(tmp_path / "pyproject.toml", tmp_path)
    assert "x.conda.yml: pandas==2.3.2 but pyproject.toml pins pandas==2.3.3" in problems
    assert "x.conda.yml: polars==1.0.0 is not a pinned dependency in pyproject.toml" in problems
    assert any(p.startswith("x.conda.yml: python=3.10 is below") for p in problems)
    assert any(p.startswith("pyproject.toml: rapidfuzz==3.14.3 is in no environment") for p in problems)


def test_unpinned_environment_dependency_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["pandas==2.3.3"]\n')
    (tmp_path / "x.yml").write_text("name: refinery-x\nconda_file: x.conda.yml\n")
    (tmp_path / "x.conda.yml").write_text("dependencies:\n  - pip:\n      - pandas>=2\n")
    with pytest.raises(ValueError, match="x.conda.yml: 'pandas>=2' is not pinned as name==version"):
        load_spec(tmp_path / "x.yml")
