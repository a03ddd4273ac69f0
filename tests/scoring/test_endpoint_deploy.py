"""Online endpoint rollout without Azure: the specs load offline, a recorder stands in for AmlClient."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.ai.ml import load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import ManagedOnlineEndpoint

from pipelines import commands
from refinery import cli
from scoring import deploy

REPO_ROOT = Path(__file__).resolve().parents[2]
SCORING = REPO_ROOT / "scoring"


class Recorder:
    """Takes the place of AmlClient: serves one endpoint's state, records what it is sent, sends nothing."""

    def __init__(self, endpoint: ManagedOnlineEndpoint | None = None):
        self.endpoint = endpoint
        self.target = "workspace recorder"
        self.calls: list[tuple[str, object]] = []

    def get_endpoint(self, name):
        self.calls.append(("get", name))
        return self.endpoint

    def create_endpoint(self, endpoint):
        self.calls.append(("endpoint", endpoint))
        return endpoint

    def create_deployment(self, deployment):
        self.calls.append(("deployment", deployment))
        return deployment

    def update_endpoint_traffic(self, endpoint):
        self.calls.append(("traffic", endpoint))
        return endpoint

    def sent(self, kind: str) -> list:
        return [entity for k, entity in self.calls if k == kind]


def live_endpoint(traffic: dict[str, int], mirror: dict[str, int] | None = None) -> ManagedOnlineEndpoint:
    """An endpoint as ``online_endpoints.get`` returns it: deployments without traffic listed at 0."""
    return ManagedOnlineEndpoint(name="refinery-maintenance", auth_mode="key", traffic=traffic, mirror_traffic=mirror)


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()

    def factory(settings, registry=None):
        rec.settings = settings
        return rec

    monkeypatch.setattr(commands, "client_factory", factory)
    monkeypatch.delenv("REFINERY_ENDPOINT_NAME", raising=False)
    return rec


# ---------------------------------------------------------------------------- specs
def test_endpoint_spec_loads_offline_with_key_auth_and_no_traffic():
    endpoint = load_online_endpoint(source=str(SCORING / "endpoint.yml"))

    assert endpoint.name == "refinery-maintenance"
    assert endpoint.auth_mode == "key"
    assert endpoint.traffic == {} and endpoint.mirror_traffic == {}


@pytest.mark.parametrize("colour", ["blue", "green"])
def test_deployment_specs_load_offline_with_capacity_probes_and_request_settings(colour):
    d = load_online_deployment(source=str(SCORING / f"deployment_{colour}.yml"))

    assert d.name == colour and d.endpoint_name == "refinery-maintenance"
    assert d.model == "maintenance:1"  # azureml:maintenance:1, as loaded; deploy replaces the version
    assert d.environment == "refinery-serve:1"
    assert Path(d.base_path, d.code_configuration.code).resolve() == REPO_ROOT
    assert d.code_configuration.scoring_script == "scoring/score.py"
    assert d.instance_type == "Standard_DS3_v2" and d.instance_count == 2
    assert d.scale_settings.type == "default"
    assert (d.request_settings.request_timeout_ms, d.request_settings.max_concurrent_requests_per_instance) == (10000, 1)
    assert d.request_settings.max_queue_wait_ms is None  # deprecated for managed endpoints
    live, ready = d.liveness_probe, d.readiness_probe
    assert (live.initial_delay, live.period, live.timeout, live.success_threshold, live.failure_threshold) == (30, 10, 2, 1, 30)
    assert (ready.initial_delay, ready.period, ready.timeout, ready.success_threshold, ready.failure_threshold) == (10, 10, 2, 1, 3)


def test_blue_and_green_differ_only_in_name():
    blue, green = (load_online_deployment(source=str(SCORING / f"deployment_{c}.yml"))._to_dict() for c in ("blue", "green"))

    assert blue.pop("name") == "blue" and green.pop("name") == "green"
    assert blue == green
    assert set(deploy.deployment_specs()) == {"blue", "green"}


def test_environment_reference_names_the_serve_environment():
    import yaml

    serve = yaml.safe_load((REPO_ROOT / "environments" / "serve.yml").read_text())
    spec = yaml.safe_load((SCORING / "deployment_blue.yml").read_text())
    assert spec["environment"] == f"azureml:{serve['name']}:{serve['version']}"


# ---------------------------------------------------------------------------- deploy
def test_first_deploy_creates_the_endpoint_rolls_out_blue_and_routes_all_traffic_to_it(recorder, capsys):
    assert cli.main(["endpoint", "deploy", "blue", "--model-version", "3"]) == 0

    assert [k for k, _ in recorder.calls] == ["get", "endpoint", "deployment", "traffic"]
    assert recorder.sent("get") == ["refinery-maintenance"]
    [endpoint] = recorder.sent("endpoint")
    assert endpoint.name == "refinery-maintenance" and endpoint.auth_mode == "key"
    assert endpoint.traffic == {} and endpoint.mirror_traffic == {}
    [d] = recorder.sent("deployment")
    assert d.name == "blue" and d.endpoint_name == "refinery-maintenance"
    assert d.model == "azureml:maintenance:3"
    assert d.environment == "refinery-serve:1"
    assert d.code_configuration.code == str(REPO_ROOT) and d.code_configuration.scoring_script == "scoring/score.py"
    assert (d.instance_type, d.instance_count, d.scale_settings.type) == ("Standard_DS3_v2", 2, "default")
    assert d.request_settings.request_timeout_ms == 10000
    assert d.liveness_probe.initial_delay == 30 and d.readiness_probe.failure_threshold == 3
    [routed] = recorder.sent("traffic")
    assert routed.name == "refinery-maintenance"
    assert routed.traffic == {"blue": 100} and routed.mirror_traffic == {}
    assert endpoint.traffic == {}  # routing sent a copy; the endpoint as created stays as it was sent
    out = capsys.readouterr().out
    assert "endpoint refinery-maintenance (key auth): created" in out
    assert "deployment blue: model azureml:maintenance:3 on 2 x Standard_DS3_v2" in out
    assert "traffic: blue 100% (first live deployment)" in out


def test_later_deploy_keeps_live_traffic_and_the_new_deployment_starts_at_zero(recorder, capsys):
    recorder.endpoint = live_endpoint({"blue": 100})

    code = cli.main(["endpoint", "deploy", "green", "--model-version", "4", "--model", "maintenance",
                     "--instance-type", "Standard_F4s_v2", "--instance-count", "3"])

    assert code == 0
    assert [k for k, _ in recorder.calls] == ["get", "endpoint", "deployment"]  # no traffic change
    [endpoint] = recorder.sent("endpoint")
    assert endpoint.traffic == {"blue": 100}  # an update without it would take blue's traffic away
    [d] = recorder.sent("deployment")
    assert (d.name, d.model, d.instance_type, d.instance_count) == ("green", "azureml:maintenance:4", "Standard_F4s_v2", 3)
    out = capsys.readouterr().out
    assert "updated, live traffic kept: blue 100%" in out
    assert "traffic unchanged: green takes 0% (blue 100%)" in out


def test_deploy_keeps_a_mirror_and_the_endpoint_name_comes_from_settings_or_flag(recorder, monkeypatch):
    monkeypatch.setenv("REFINERY_ENDPOINT_NAME", "refinery-maint-dev")
    recorder.endpoint = live_endpoint({"blue": 100}, {"green": 10})

    assert cli.main(["endpoint", "deploy", "green", "--model-version", "5"]) == 0
    assert recorder.sent("get") == ["refinery-maint-dev"]
    [endpoint] = recorder.sent("endpoint")
    assert endpoint.name == "refinery-maint-dev" and endpoint.mirror_traffic == {"green": 10}
    assert recorder.sent("deployment")[0].endpoint_name == "refinery-maint-dev"

    assert cli.main(["endpoint", "deploy", "blue", "--model-version", "5", "--endpoint", "refinery-maint-prod"]) == 0
    assert recorder.sent("deployment")[-1].endpoint_name == "refinery-maint-prod"


# ---------------------------------------------------------------------------- traffic and mirror
def test_traffic_sends_the_new_split_and_keeps_the_mirror(recorder, capsys):
    recorder.endpoint = live_endpoint({"blue": 100, "green": 0})

    assert cli.main(["endpoint", "traffic", "blue=90,green=10"]) == 0

    [sent] = recorder.sent("traffic")
    assert sent.name == "refinery-maintenance"
    assert sent.traffic == {"blue": 90, "green": 10} and sent.mirror_traffic == {}
    assert recorder.endpoint.traffic == {"blue": 100, "green": 0}  # the fetched endpoint is not changed
    assert "live traffic blue 90%, green 10% (was blue 100%, green 0%)" in capsys.readouterr().out


def test_traffic_gives_deployments_left_out_zero(recorder):
    recorder.endpoint = live_endpoint({"blue": 90, "green": 10})

    assert cli.main(["endpoint", "traffic", "green=100"]) == 0
    assert recorder.sent("traffic")[0].traffic == {"blue": 0, "green": 100}


def test_mirror_sets_and_clears_mirror_traffic_without_touching_live_traffic(recorder, capsys):
    recorder.endpoint = live_endpoint({"blue": 100, "green": 0})
    assert cli.main(["endpoint", "mirror", "green=10"]) == 0
    [sent] = recorder.sent("traffic")
    assert sent.mirror_traffic == {"green": 10} and sent.traffic == {"blue": 100, "green": 0}

    recorder.endpoint = live_endpoint({"blue": 100}, {"green": 10})  # get() lists a mirrored deployment there only
    assert cli.main(["endpoint", "mirror", "green=20"]) == 0
    assert recorder.sent("traffic")[-1].mirror_traffic == {"green": 20}
    assert cli.main(["endpoint", "mirror", "off"]) == 0
    cleared = recorder.sent("traffic")[-1]
    assert cleared.mirror_traffic == {} and cleared.traffic == {"blue": 100}
    assert "mirror traffic none (was green 10%)" in capsys.readouterr().out


def test_a_zero_mirror_clears_like_off():
    assert deploy.parse_mirror("green=0", ["blue", "green"]) == {} == deploy.parse_mirror(" OFF ", ["blue", "green"])
    assert deploy.parse_mirror("green=50", ["blue", "green"]) == {"green": 50}


def test_mirror_off_without_a_mirror_sends_nothing(recorder, capsys):
    recorder.endpoint = live_endpoint({"blue": 100, "green": 0})

    assert cli.main(["endpoint", "mirror", "off"]) == 0
    assert recorder.sent("traffic") == []
    assert "nothing sent" in capsys.readouterr().out


# ---------------------------------------------------------------------------- bad input
BLUE_LIVE = {"blue": 100, "green": 0}


@pytest.mark.parametrize("argv, state, named", [
    (["deploy", "purple", "--model-version", "3"], None, "'purple'"),
    (["deploy", "blue", "--model-version", "three"], None, "--model-version 'three'"),
    (["deploy", "blue", "--model-version", "0"], None, "--model-version '0'"),
    (["deploy", "blue", "--model-version", "3", "--model", "bad/name"], None, "--model 'bad/name'"),
    (["deploy", "blue", "--model-version", "3", "--instance-count", "0"], None, "--instance-count '0'"),
    (["deploy", "blue", "--model-version", "3", "--instance-type", "DS3 v2"], None, "--instance-type 'DS3 v2'"),
    (["deploy", "blue", "--model-version", "3", "--endpoint", "9-lives"], None, "endpoint name '9-lives'"),
    (["traffic", "blue=90,green=20"], BLUE_LIVE, "sum to 110"),
    (["traffic", "blue=90,purple=10"], BLUE_LIVE, "'purple'"),
    (["traffic", "blue=ninety,green=10"], BLUE_LIVE, "'blue=ninety'"),
    (["traffic", "blue=101"], BLUE_LIVE, "'blue=101'"),
    (["traffic", "blue=-10,green=110"], BLUE_LIVE, "'blue=-10'"),
    (["traffic", "blue100"], BLUE_LIVE, "'blue100'"),
    (["traffic", "blue=50,blue=50"], BLUE_LIVE, "'blue': given twice"),
    (["traffic", "blue=90,green=10"], {"blue": 100}, "green=10: green is not deployed"),
    (["traffic", "blue=90,green=10"], None, "endpoint 'refinery-maintenance' does not exist"),
    (["mirror", "green=60"], BLUE_LIVE, "'green=60'"),
    (["mirror", "blue=10"], BLUE_LIVE, "blue takes 100% of live traffic"),
    (["mirror", "blue=5,green=5"], {"blue": 50, "green": 50}, "one deployment at a time"),
    (["mirror", "green=10"], {"blue": 100}, "green=10: green is not deployed"),
    (["mirror", "green=10"], None, "does not exist"),
])
def test_bad_input_is_one_line_naming_the_value_and_sends_nothing(recorder, capsys, argv, state, named):
    recorder.endpoint = live_endpoint(state) if state is not None else None

    assert cli.main(["endpoint", *argv]) == 2

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("refinery endpoint: error: ")
    assert named in err
    assert [k for k, _ in recorder.calls if k != "get"] == []


def test_live_traffic_to_a_mirrored_deployment_is_refused(recorder, capsys):
    recorder.endpoint = live_endpoint({"blue": 100}, {"green": 10})

    assert cli.main(["endpoint", "traffic", "blue=90,green=10"]) == 2
    assert "green receives 10% mirrored traffic" in capsys.readouterr().err
    assert recorder.sent("traffic") == []


def test_syntax_errors_are_caught_before_azure_is_contacted(recorder):
    assert cli.main(["endpoint", "traffic", "blue=ninety"]) == 2
    assert cli.main(["endpoint", "traffic", "blue=90,green=20"]) == 2
    assert cli.main(["endpoint", "mirror", "green=70"]) == 2
    assert cli.main(["endpoint", "deploy", "blue", "--model-version", "x"]) == 2
    assert recorder.calls == []


# ---------------------------------------------------------------------------- the client boundary
class _Poller:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def test_aml_client_sends_entities_and_reads_a_missing_endpoint_as_none():
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    from pipelines.aml_client import AmlClient, AzureMLError

    sent = []

    def missing(name):
        raise ResourceNotFoundError(f"endpoint {name} not found")

    def rejected(deployment):
        raise HttpResponseError("(BadArgument) Model maintenance:9 not found\nmore detail")

    ml = SimpleNamespace(
        online_endpoints=SimpleNamespace(get=missing, begin_create_or_update=lambda e: sent.append(e) or _Poller(e)),
        online_deployments=SimpleNamespace(begin_create_or_update=rejected),
    )
    client = AmlClient(ml, "workspace test")
    endpoint = deploy.build_endpoint("refinery-maintenance")

    assert client.get_endpoint("refinery-maintenance") is None
    assert client.create_endpoint(endpoint) is endpoint
    assert client.update_endpoint_traffic(endpoint) is endpoint and sent == [endpoint, endpoint]
    with pytest.raises(AzureMLError) as err:
        client.create_deployment(deploy.build_deployment("blue", "refinery-maintenance", "9"))
    assert str(err.value) == ("workspace test: creating deployment blue on endpoint refinery-maintenance failed: "
                              "(BadArgument) Model maintenance:9 not found")


def test_deploy_by_alias_serves_the_version_the_registry_alias_names(recorder, tmp_path, capsys):
    from refinery.settings import Settings
    from tests.scoring.synthetic_model import register, train_bundle

    lake = tmp_path / "lake"
    uri = Settings(lake_uri=str(lake)).resolved_mlflow_uri()
    bundle = train_bundle(seed=1, rows=600, max_rounds=10)
    register(uri, bundle)
    second = register(uri, bundle)  # promoted: the alias now names version 2
    assert cli.main(["endpoint", "deploy", "blue", "--alias", "champion", "--lake", str(lake)]) == 0
    [d] = recorder.sent("deployment")
    assert d.model == f"azureml:maintenance:{second.version}" and second.version == "2"
    assert "alias champion of maintenance is version 2" in capsys.readouterr().out
    assert cli.main(["endpoint", "deploy", "blue", "--alias", "staging", "--lake", str(lake)]) == 2
    assert "has no alias 'staging'" in capsys.readouterr().err
