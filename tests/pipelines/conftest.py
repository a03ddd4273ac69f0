"""Tiny fake components (Python one-liners) and pipelines of them, in tmp_path; no Spark, no Azure."""
# No `from __future__ import annotations`: azure-ai-ml reads the dsl pipeline annotations as objects.

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json"


def write_component(folder: Path, name: str, command: str, *, inputs: dict | None = None, outputs: dict | None = None,
                    deterministic: bool = False, tags: dict | None = None) -> Path:
    """A command component YAML whose code folder is ``folder``."""
    spec: dict[str, Any] = {
        "$schema": SCHEMA, "type": "command", "name": name, "version": "1", "code": ".",
        "environment": "azureml:fake:1", "is_deterministic": deterministic, "command": command,
        "inputs": inputs or {}, "outputs": outputs or {},
    }
    if tags:
        spec["tags"] = tags
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


LAKE = {"type": "uri_folder", "mode": "direct"}
AFTER = {"type": "uri_folder", "mode": "direct", "optional": True}
COMMITTED = {"committed": {"type": "uri_folder", "mode": "direct"}}
PY = 'python -c "import sys, pathlib; {}"'


@pytest.fixture
def fake_components(tmp_path: Path) -> dict[str, Any]:
    """Four components: a no-op lake step, a step that can fail, a deterministic trainer, a reporter."""
    from azure.ai.ml import load_component

    folder = tmp_path / "code"
    folder.mkdir()
    paths = {
        "prepare": write_component(
            folder, "prepare", PY.format("print('prepared', sys.argv[1])") + " ${{inputs.lake}}",
            inputs={"lake": LAKE}, outputs=COMMITTED,
        ),
        "flaky": write_component(
            folder, "flaky",
            PY.format("print('checking'); print('boom: fail was', sys.argv[1]); sys.exit(3 if sys.argv[1] == '1' else 0)")
            + " ${{inputs.fail}}",
            inputs={"fail": {"type": "integer", "default": 0, "min": 0, "max": 1, "description": "1 fails"},
                    "after": AFTER},
            outputs=COMMITTED,
        ),
        "train": write_component(
            folder, "train",
            PY.format("pathlib.Path(sys.argv[2], 'model.txt').write_text('seed ' + sys.argv[1])")
            + " ${{inputs.seed}} ${{outputs.model}} $[[${{inputs.note}}]]",
            inputs={"lake": LAKE, "seed": {"type": "integer", "default": 0, "min": 0},
                    "note": {"type": "string", "optional": True}, "after": AFTER},
            outputs={"model": {"type": "uri_folder"}},
            deterministic=True, tags={"refinery.reads": "silver/readings", "refinery.writes": "gold/scores"},
        ),
        "report": write_component(
            folder, "report",
            PY.format("print(pathlib.Path(sys.argv[1], 'model.txt').read_text())") + " ${{inputs.model}}",
            inputs={"model": {"type": "uri_folder"}},
        ),
    }
    return {name: load_component(source=str(p)) for name, p in paths.items()}


@pytest.fixture
def fake_pipeline(fake_components: dict[str, Any]) -> Callable[..., Any]:
    """A ``@dsl.pipeline`` function: prepare -> flaky -> train -> report."""
    from azure.ai.ml import Input, dsl

    c = fake_components

    @dsl.pipeline(name="fake")
    def fake(lake: Input(type="uri_folder"), fail: int = 0, seed: int = 0):
        prepare = c["prepare"](lake=lake)
        flaky = c["flaky"](fail=fail, after=prepare.outputs.committed)
        train = c["train"](lake=lake, seed=seed, after=flaky.outputs.committed)
        report = c["report"](model=train.outputs.model)
        prepare.name, flaky.name, train.name, report.name = "prepare", "flaky", "train", "report"

    return fake


@pytest.fixture
def fake_lake(tmp_path: Path) -> Path:
    """A lake with two small Delta tables: silver/readings (read by train) and silver/other (not)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    lake = tmp_path / "lake"
    write_deltalake(str(lake / "silver" / "readings"), pa.table({"x": [1, 2]}))
    write_deltalake(str(lake / "silver" / "other"), pa.table({"y": [1]}))
    return lake
