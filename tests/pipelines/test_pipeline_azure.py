"""The Azure path without Azure: a recorder stands in for AmlClient; the entities it receives are checked."""
from __future__ import annotations

import zipfile
from types import SimpleNamespace

import pytest

from pipelines import commands, publish
from refinery import cli
from refinery.settings import Settings

LAKE = "abfss://lake@refinerydata.dfs.core.windows.net/lake"
LANDING = "abfss://landing@refinerydata.dfs.core.windows.net/landing"
WORKSPACE = dict(subscription_id="00000000-0000-0000-0000-000000000000", resource_group="rg-refinery",
                 workspace_name="mlw-refinery")


class Recorder:
    """Takes the place of AmlClient: records every entity it is given, sends nothing."""

    def __init__(self, target: str = "workspace recorder"):
        self.target = target
        self.calls: list[tuple[str, object]] = []

    def create_environment(self, environment):
        self.calls.append(("environment", environment))
        return environment

    def create_component(self, component):
        self.calls.append(("component", component))
        return component

    def submit_job(self, job, experiment_name):
        self.calls.append(("job", (job, experiment_name)))
        return SimpleNamespace(name="job-123", studio_url="https://ml.azure.com/runs/job-123")

    def create_schedule(self, schedule):
        self.calls.append(("schedule", schedule))
        return schedule

    def sent(self, kind: str) -> list:
        return [entity for k, entity in self.calls if k == kind]


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    rec = Recorder()
    factory_calls = []

    def factory(settings, registry=None):
        factory_calls.append((settings, registry))
        rec.target = f"registry {registry}" if registry else f"workspace {settings.workspace_name}"
        return rec

    monkeypatch.setattr(commands, "client_factory", factory)
    monkeypatch.setattr(publish, "CODE_BUNDLE", tmp_path / "bundle" / "refinery_code.zip")
    rec.factory_calls = factory_calls
    return rec


@pytest.fixture
def azure_env(monkeypatch):
    for key, value in {**WORKSPACE, "lake_uri": LAKE, "landing_uri": LANDING}.items():
        monkeypatch.setenv(f"REFINERY_{key.upper()}", value)


def test_register_sends_environments_then_components_then_pipelines(recorder, capsys):
    assert cli.main(["pipeline", "register"]) == 0

    assert [k for k, _ in recorder.calls] == ["environment"] * 4 + ["component"] * (7 + 4)
    envs = {(e.name, e.version) for e in recorder.sent("environment")}
    assert envs == {(f"refinery-{r}", "1") for r in ("spark", "train", "serve", "monitor")}
    components = recorder.sent("component")
    assert [c.type for c in components][-4:] == ["pipeline"] * 4  # steps first, pipelines wired to them last
    steps = {c.name: c for c in components if c.type != "pipeline"}
    assert {(n, c.version) for n, c in steps.items()} == {
        ("ingest_landing", "1"), ("prep_lake", "1"), ("build_features", "1"),
        ("train_maintenance_model", "1"), ("train_production_model", "1"), ("register_models", "1"), ("score_batch", "1"),
    }
    assert steps["prep_lake"].environment == "refinery-spark:1"  # azureml:refinery-spark:1, as loaded
    pipelines = {c.name: c for c in components if c.type == "pipeline"}
    assert set(pipelines) == {"data_prep", "training", "batch_scoring", "end_to_end"}
    assert all(len(p.version) == 12 for p in pipelines.values())
    e2e = pipelines["end_to_end"]
    assert list(e2e.jobs) == ["ingest", "prep_silver", "prep_gold", "build_features", "train_maintenance",
                              "train_production", "register", "score_batch"]
    assert e2e.jobs["prep_gold"].component is steps["prep_lake"]  # wired to what was registered
    assert e2e.jobs["prep_gold"].resources.runtime_version == "3.5"
    assert "registered into workspace" in capsys.readouterr().out


def test_register_versions_are_stable_and_overridable(recorder):
    first = publish.register(recorder)
    assert publish.register(Recorder()) == first  # same content, same pipeline versions
    rec = Recorder()
    publish.register(rec, version="2026.11.1")
    assert {c.version for c in rec.sent("component")} == {"2026.11.1"}


def test_register_into_a_registry_points_components_at_registry_environments(recorder):
    assert cli.main(["pipeline", "register", "--registry", "refinery-reg"]) == 0

    assert recorder.factory_calls[-1][1] == "refinery-reg"
    train = next(c for c in recorder.sent("component") if c.name == "train_maintenance_model")
    assert train.environment == "azureml://registries/refinery-reg/environments/refinery-train/versions/1"


def test_register_builds_the_spark_code_bundle(recorder):
    publish.register(recorder)
    with zipfile.ZipFile(publish.CODE_BUNDLE) as zf:
        names = set(zf.namelist())
    assert {"data_prep/prep.py", "data_prep/lake.py", "refinery/settings.py"} <= names
    assert not any(n.startswith("tests/") for n in names)


def test_submit_sends_the_job_with_settings_uris_and_compute(recorder, azure_env, capsys):
    code = cli.main(["pipeline", "submit", "end_to_end", "--compute", "cpu-ds4", "--set", "horizon=14"])

    assert code == 0
    [(job, experiment)] = recorder.sent("job")
    assert experiment == "refinery-end_to_end" and job.display_name == "end_to_end"
    assert job.settings.default_compute == "cpu-ds4"
    assert job.inputs["lake"]._data.path == LAKE and job.inputs["landing"]._data.path == LANDING
    assert job.inputs["horizon"]._data == 14 and job.inputs["seed"]._data == 0
    assert job.jobs["prep_silver"].type == "spark"
    assert job.jobs["prep_silver"].resources.instance_type == "standard_e4s_v3"
    assert job.jobs["train_maintenance"].compute is None  # command steps take the pipeline's default compute
    assert recorder.factory_calls[-1][0].workspace_name == "mlw-refinery"
    assert "submitted end_to_end: job job-123" in capsys.readouterr().out


def test_submit_refuses_a_local_lake(recorder, azure_env, monkeypatch, capsys):
    monkeypatch.setenv("REFINERY_LAKE_URI", "lake")

    assert cli.main(["pipeline", "submit", "data_prep"]) == 2
    assert "pipeline parameter lake=" in capsys.readouterr().err
    assert recorder.calls == []


def test_schedule_sends_a_cron_schedule_of_the_job(recorder, azure_env):
    assert cli.main(["pipeline", "schedule", "training", "--cron", "0 2 * * 1-5", "--time-zone", "UTC"]) == 0

    [schedule] = recorder.sent("schedule")
    assert schedule.name == "refinery-training"
    assert schedule.trigger.expression == "0 2 * * 1-5" and schedule.trigger.time_zone == "UTC"
    assert schedule.create_job.display_name == "training"
    assert schedule.create_job.settings.default_compute == "cpu-cluster"
    assert schedule.create_job.inputs["lake"]._data.path == LAKE


@pytest.mark.parametrize("cron, field", [("0 25 * * *", "hour"), ("0 2 * *", "expected 5 fields"), ("x 2 * * *", "minute")])
def test_schedule_refuses_a_bad_cron(recorder, azure_env, capsys, cron, field):
    assert cli.main(["pipeline", "schedule", "training", "--cron", cron]) == 2
    err = capsys.readouterr().err
    assert field in err and len(err.strip().splitlines()) == 1
    assert recorder.calls == []


def test_workspace_comes_from_settings_and_a_missing_one_is_named():
    from pipelines.aml_client import AmlClient

    with pytest.raises(ValueError, match="setting subscription_id is not set"):
        AmlClient.from_settings(Settings())
    client = AmlClient.from_settings(Settings(**WORKSPACE))
    assert client.target == "workspace mlw-refinery"
