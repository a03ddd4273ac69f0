"""The local runner on tiny fake components: order, failure, resume, reuse, records."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipelines.graph import graph_from_job, render_command
from pipelines.runner import LocalRun, NodeFailed


def run(fake_pipeline, lake: Path, runs: Path, from_node: str | None = None, **params) -> dict:
    from azure.ai.ml import Input

    job = fake_pipeline(lake=Input(type="uri_folder", path=str(lake)), **params)
    return LocalRun(graph_from_job(job), runs, from_node=from_node, out=io.StringIO()).run()


def statuses(record: dict) -> dict[str, str]:
    return {n["name"]: n["status"] for n in record["nodes"]}


def test_runs_every_node_in_order_and_records_it(fake_pipeline, fake_lake, tmp_path):
    record = run(fake_pipeline, fake_lake, tmp_path / "runs")

    assert [n["name"] for n in record["nodes"]] == ["prepare", "flaky", "train", "report"]
    assert set(statuses(record).values()) == {"completed"}
    on_disk = json.loads((tmp_path / "runs" / record["run_id"] / "run.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["parameters"]["lake"] == str(fake_lake)
    train = next(n for n in on_disk["nodes"] if n["name"] == "train")
    assert train["duration_s"] > 0 and Path(train["log"]).is_file()
    assert (Path(train["outputs"]["model"]) / "model.txt").read_text() == "seed 0"
    report = next(n for n in on_disk["nodes"] if n["name"] == "report")
    assert "seed 0" in Path(report["log"]).read_text()  # report read train's output folder
    assert on_disk["overhead_s"] >= 0 and on_disk["wall_s"] >= on_disk["node_s"]


def test_a_failing_node_stops_the_run_and_is_named(fake_pipeline, fake_lake, tmp_path):
    with pytest.raises(NodeFailed) as failed:
        run(fake_pipeline, fake_lake, tmp_path / "runs", fail=1)

    assert failed.value.node == "flaky" and failed.value.exit_code == 3
    assert "node 'flaky' failed with exit code 3: boom: fail was 1" in str(failed.value)
    assert failed.value.tail[-1] == "boom: fail was 1"
    record = json.loads(next((tmp_path / "runs").glob("*/run.json")).read_text())
    assert record["status"] == "failed" and record["failed_node"] == "flaky"
    assert statuses(record) == {"prepare": "completed", "flaky": "failed", "train": "not_run", "report": "not_run"}


def test_from_node_resumes_with_earlier_outputs(fake_pipeline, fake_lake, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(NodeFailed):
        run(fake_pipeline, fake_lake, runs, fail=1)
    first_id = json.loads(next(runs.glob("*/run.json")).read_text())["run_id"]

    record = run(fake_pipeline, fake_lake, runs, from_node="flaky", fail=0)

    assert statuses(record) == {"prepare": "previous", "flaky": "completed", "train": "completed", "report": "completed"}
    assert record["nodes"][0]["from_run"] == first_id and record["resumed_from"] == first_id


def test_from_node_refuses_unknown_node_and_missing_outputs(fake_pipeline, fake_lake, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match="no earlier run"):
        run(fake_pipeline, fake_lake, runs, from_node="train")
    with pytest.raises(NodeFailed):
        run(fake_pipeline, fake_lake, runs, fail=1)
    with pytest.raises(ValueError, match="unknown node 'nope'"):
        run(fake_pipeline, fake_lake, runs, from_node="nope")
    with pytest.raises(ValueError, match="node 'flaky' is failed in run"):
        run(fake_pipeline, fake_lake, runs, from_node="report")


def test_deterministic_node_reused_until_a_table_it_reads_changes(fake_pipeline, fake_lake, tmp_path):
    runs = tmp_path / "runs"
    first = run(fake_pipeline, fake_lake, runs)
    model = first["nodes"][2]["outputs"]["model"]

    again = run(fake_pipeline, fake_lake, runs)
    assert statuses(again) == {"prepare": "completed", "flaky": "completed", "train": "reused", "report": "completed"}
    assert again["nodes"][2]["from_run"] == first["run_id"] and again["nodes"][2]["outputs"]["model"] == model

    write_deltalake(str(fake_lake / "silver" / "other"), pa.table({"y": [2]}), mode="append")  # not read by train
    assert statuses(run(fake_pipeline, fake_lake, runs))["train"] == "reused"

    write_deltalake(str(fake_lake / "silver" / "readings"), pa.table({"x": [3]}), mode="append")
    changed = run(fake_pipeline, fake_lake, runs)
    assert statuses(changed)["train"] == "completed"
    assert statuses(run(fake_pipeline, fake_lake, runs))["train"] == "reused"


def test_reuse_key_follows_parameters_and_written_tables(fake_pipeline, fake_lake, tmp_path):
    runs = tmp_path / "runs"
    run(fake_pipeline, fake_lake, runs, seed=1)
    assert statuses(run(fake_pipeline, fake_lake, runs, seed=2))["train"] == "completed"
    assert statuses(run(fake_pipeline, fake_lake, runs, seed=1))["train"] == "reused"

    # train declares it writes gold/scores: once that table moved on, its cached result no longer stands.
    write_deltalake(str(fake_lake / "gold" / "scores"), pa.table({"s": [0.5]}))
    assert statuses(run(fake_pipeline, fake_lake, runs, seed=1))["train"] == "completed"


def test_bad_parameter_is_refused_before_anything_runs(fake_pipeline, fake_lake, tmp_path):
    with pytest.raises(ValueError, match="node flaky: input fail=2 is above its maximum 1"):
        run(fake_pipeline, fake_lake, tmp_path / "runs", fail=2)
    assert not list((tmp_path / "runs").glob("*/run.json"))


def test_render_command_fills_ports_and_drops_unset_optional_blocks():
    template = "python -m pkg.step --lake ${{inputs.lake}} $[[--note ${{inputs.note}}]] --out ${{outputs.out}}"

    argv = render_command("step", template, {"lake": "/a b/lake", "note": None}, {"out": "/o"})
    assert argv == ["python", "-m", "pkg.step", "--lake", "/a b/lake", "--out", "/o"]
    argv = render_command("step", template, {"lake": "/l", "note": "hi"}, {"out": "/o"})
    assert argv[5:7] == ["--note", "hi"]
    with pytest.raises(ValueError, match="node step: input 'lake' has no value"):
        render_command("step", template, {"lake": None}, {"out": "/o"})
