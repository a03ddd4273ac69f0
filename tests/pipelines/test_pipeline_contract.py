"""Every component YAML loads with azure-ai-ml, its module imports, and its flags are its ports."""
from __future__ import annotations

import pytest
import yaml

from pipelines.components import (
    COMPONENTS_DIR, ENVIRONMENTS_DIR, ORDERING_INPUT, ORDERING_OUTPUT, REPO_ROOT, component_files, load,
)
from pipelines.contract import check
from pipelines.publish import CODE_BUNDLE

FILES = component_files()
SCHEMAS = {
    "command": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
    "spark": "https://azuremlschemas.azureedge.net/latest/sparkComponent.schema.json",
}


def _raw(path):
    return yaml.safe_load(path.read_text())


def test_components_folder_holds_every_step():
    names = {load(p).name for p in FILES}
    assert names == {"ingest_landing", "prep_lake", "build_features", "train_maintenance_model",
                     "train_production_model", "register_models", "score_batch"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_component_is_a_complete_aml_contract(path):
    raw = _raw(path)
    component = load(path)
    assert raw["$schema"] == SCHEMAS[component.type]
    assert component.name == path.stem
    assert isinstance(raw.get("is_deterministic"), bool), "is_deterministic must be stated, not defaulted"
    assert (COMPONENTS_DIR / raw["code"]).resolve() == REPO_ROOT
    for port, spec in {**raw.get("inputs", {}), **raw.get("outputs", {})}.items():
        assert spec.get("description"), f"port {port} has no description"
    for spec in raw.get("inputs", {}).values():
        if spec["type"] in ("integer", "number") and "default" in spec:
            assert "min" in spec, "a numeric port states its range"
    env_name, env_version = raw["environment"].removeprefix("azureml:").split(":")
    envs = {(e["name"], str(e["version"])) for e in map(_raw, ENVIRONMENTS_DIR.glob("*.yml")) if "conda_file" in e}
    assert (env_name, env_version) in envs, f"environment {raw['environment']} is not in environments/"
    if component.type == "spark":
        assert (REPO_ROOT / raw["entry"]["file"]).is_file()
        assert raw["py_files"] == [CODE_BUNDLE.relative_to(REPO_ROOT).as_posix()], "the bundle register builds"
        assert all(spec.get("mode") == "direct" for spec in {**raw.get("inputs", {}), **raw.get("outputs", {})}.values()
                   if spec["type"].startswith("uri_")), "Spark takes data by URI only (mode: direct)"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_module_imports_and_flags_equal_ports(path):
    assert check(load(path)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_ordering_ports_carry_no_data(path):
    raw = _raw(path)
    command = raw.get("command") or raw.get("args")
    assert ORDERING_INPUT not in raw.get("inputs", {}) or raw["inputs"][ORDERING_INPUT]["type"] == "uri_folder"
    assert "${{inputs.after}}" not in command and "${{outputs.committed}}" not in command
    if ORDERING_OUTPUT in raw.get("outputs", {}):
        assert "lake" in raw["inputs"], "only a step that writes the lake announces its commits"


def test_contract_check_names_a_flag_that_is_not_a_port(tmp_path):
    (tmp_path / "bad.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\n"
        "type: command\nname: bad\nversion: '1'\nis_deterministic: false\ncode: .\nenvironment: azureml:x:1\n"
        "command: python -m data_prep.prep --lake ${{inputs.lake_root}}\n"
        "inputs:\n  lake_root: {type: uri_folder, description: x}\n"
    )
    problems = check(load(tmp_path / "bad.yml"))
    assert "bad: flag --lake is given port 'lake_root'; a flag must be named as its port" in problems
    assert any("--stage" in p and "no port" in p for p in problems)
