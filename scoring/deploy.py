"""The managed online endpoint as azure-ai-ml entities: the specs in ``scoring/`` plus command-line choices.

Nothing here reaches Azure. These functions load ``endpoint.yml`` and ``deployment_<colour>.yml``,
put the chosen endpoint name and model version into them, and check a requested live or mirror
traffic split against the spec set and the endpoint's current traffic; ``scoring.endpoint_commands``
hands the results to ``pipelines.aml_client``. Bad values raise ValueError naming them.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

SCORING_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCORING_DIR.parent
ENDPOINT_SPEC = SCORING_DIR / "endpoint.yml"
DEPLOYMENT_SPECS = "deployment_*.yml"
DEFAULT_MODEL = "maintenance"
MAX_MIRROR_PERCENT = 50  # AML mirrors at most half of the live traffic, to one deployment
CLEAR_MIRROR = ("off", "none")

# AML's naming rules, checked here so a bad name fails before anything is sent.
_ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_MODEL_VERSION = re.compile(r"^[1-9][0-9]*$")
_INSTANCE_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def deployment_specs(folder: Path = SCORING_DIR) -> dict[str, Path]:
    """Deployment name -> spec file, for every ``deployment_*.yml`` in ``folder`` (blue and green)."""
    specs: dict[str, Path] = {}
    for path in sorted(folder.glob(DEPLOYMENT_SPECS)):
        name = (yaml.safe_load(path.read_text()) or {}).get("name")
        if not name:
            raise ValueError(f"deployment spec {path} has no name")
        specs[str(name)] = path
    return specs


def endpoint_name(requested: str | None = None, setting: str | None = None, spec: Path = ENDPOINT_SPEC) -> str:
    """The endpoint to act on: ``--endpoint``, else the ``endpoint_name`` setting, else the spec's name."""
    name = requested or setting or (yaml.safe_load(spec.read_text()) or {}).get("name")
    if not name or not _ENDPOINT_NAME.match(str(name)):
        raise ValueError(f"endpoint name {name!r}: 3-32 letters, digits or hyphens, starting with a letter, "
                         "not ending with a hyphen")
    return str(name)


def build_endpoint(name: str, existing: Any | None = None, spec: Path = ENDPOINT_SPEC) -> Any:
    """``endpoint.yml`` under ``name``, with the live and mirror traffic of ``existing`` (none for a new one).

    Creating or updating an endpoint replaces its whole traffic map, so an update built from the
    spec alone would take the live traffic away from every deployment.
    """
    from azure.ai.ml import load_online_endpoint

    endpoint = load_online_endpoint(source=str(spec))
    endpoint.name = name
    endpoint.traffic = dict(getattr(existing, "traffic", None) or {})
    endpoint.mirror_traffic = dict(getattr(existing, "mirror_traffic", None) or {})
    return endpoint


def parse_instance_count(text: str | int | None) -> int | None:
    """``--instance-count`` as a positive int (None keeps the spec's)."""
    if text is None:
        return None
    if not re.fullmatch(r"[1-9][0-9]*", str(text).strip()):
        raise ValueError(f"--instance-count {text!r}: expected a whole number of instances, at least 1")
    return int(text)


def build_deployment(colour: str, endpoint: str, model_version: str, *, model: str = DEFAULT_MODEL,
                     instance_type: str | None = None, instance_count: int | None = None,
                     specs: Mapping[str, Path] | None = None) -> Any:
    """``deployment_<colour>.yml`` on ``endpoint``, serving workspace model ``azureml:<model>:<model_version>``.

    The code folder becomes the absolute repository root, so the upload does not depend on where
    the spec was loaded from; ``instance_type`` and ``instance_count`` replace the spec's when given.
    """
    from azure.ai.ml import load_online_deployment

    specs = deployment_specs() if specs is None else specs
    if colour not in specs:
        raise ValueError(f"deployment {colour!r}: not one of the specs in scoring/ ({', '.join(specs)})")
    if not _MODEL_NAME.match(model):
        raise ValueError(f"--model {model!r}: letters, digits, '-', '_' or '.', starting with a letter or digit")
    if not _MODEL_VERSION.match(str(model_version)):
        raise ValueError(f"--model-version {model_version!r}: expected a registered version number such as 3")
    if instance_type is not None and not _INSTANCE_TYPE.match(instance_type):
        raise ValueError(f"--instance-type {instance_type!r}: expected a VM size such as Standard_DS3_v2")

    deployment = load_online_deployment(source=str(specs[colour]))
    deployment.endpoint_name = endpoint
    deployment.model = f"azureml:{model}:{model_version}"
    code = Path(deployment.base_path, deployment.code_configuration.code).resolve()
    deployment.code_configuration.code = str(code)
    if instance_type:
        deployment.instance_type = instance_type
    if instance_count is not None:
        deployment.instance_count = instance_count
    return deployment


def parse_percentages(text: str, what: str, deployments: Mapping[str, Any] | list[str], *,
                      maximum: int = 100) -> dict[str, int]:
    """``blue=90,green=10`` as ``{"blue": 90, "green": 10}``; every name a spec'd deployment, each 0..maximum."""
    split: dict[str, int] = {}
    for pair in (p.strip() for p in text.split(",")):
        name, sep, value = (s.strip() for s in pair.partition("="))
        if not sep or not name:
            raise ValueError(f"{what} {pair!r}: expected DEPLOYMENT=PERCENT, e.g. blue=90,green=10")
        if name not in deployments:
            raise ValueError(f"{what} {name!r}: not one of the deployments in scoring/ ({', '.join(deployments)})")
        if name in split:
            raise ValueError(f"{what} {name!r}: given twice in {text!r}")
        if not re.fullmatch(r"[0-9]+", value) or int(value) > maximum:
            raise ValueError(f"{what} {pair!r}: percent must be a whole number from 0 to {maximum}")
        split[name] = int(value)
    return split


def parse_live_traffic(text: str, deployments: Mapping[str, Any] | list[str]) -> dict[str, int]:
    """``--traffic`` text as a split of spec'd deployments whose percentages sum to 100."""
    split = parse_percentages(text, "traffic", deployments)
    total = sum(split.values())
    if total != 100:
        raise ValueError(f"traffic {text!r}: percentages sum to {total}, must sum to 100")
    return split


def live_traffic(split: Mapping[str, int], live: Mapping[str, int], mirror: Mapping[str, int]) -> dict[str, int]:
    """The endpoint's new live map: ``split`` with every other current deployment at 0.

    ``live`` and ``mirror`` are the endpoint's current maps; a deployment given live traffic must
    be on the endpoint and must not be receiving mirrored traffic (AML allows one or the other).
    """
    on_endpoint = set(live) | set(mirror)
    for name, percent in split.items():
        if percent and name not in on_endpoint:
            raise ValueError(f"traffic {name}={percent}: {name} is not deployed on the endpoint "
                             f"(deployed: {', '.join(sorted(on_endpoint)) or 'none'}); run refinery endpoint deploy {name}")
        if percent and mirror.get(name):
            raise ValueError(f"traffic {name}={percent}: {name} receives {mirror[name]}% mirrored traffic; "
                             "stop it first with refinery endpoint mirror off")
    return {**{name: 0 for name in live}, **split}


def parse_mirror(text: str, deployments: Mapping[str, Any] | list[str]) -> dict[str, int]:
    """``--mirror`` text as ``{}`` (``off``, or 0 percent) or one spec'd deployment at 1..50 percent."""
    if text.strip().lower() in CLEAR_MIRROR:
        return {}
    split = parse_percentages(text, "mirror", deployments, maximum=MAX_MIRROR_PERCENT)
    if len(split) != 1:
        raise ValueError(f"mirror {text!r}: AML mirrors to one deployment at a time, e.g. green=10")
    return {name: percent for name, percent in split.items() if percent}


def mirror_traffic(requested: Mapping[str, int], live: Mapping[str, int], mirror: Mapping[str, int]) -> dict[str, int]:
    """The endpoint's new mirror map, ``requested`` once checked against the endpoint's current maps.

    The mirrored deployment must be on the endpoint and take no live traffic (AML gives a
    deployment live or mirrored traffic, not both), and some other deployment must take live
    traffic, since only live requests are copied.
    """
    on_endpoint = set(live) | set(mirror)
    for name, percent in requested.items():
        if name not in on_endpoint:
            raise ValueError(f"mirror {name}={percent}: {name} is not deployed on the endpoint "
                             f"(deployed: {', '.join(sorted(on_endpoint)) or 'none'}); run refinery endpoint deploy {name}")
        if live.get(name):
            raise ValueError(f"mirror {name}={percent}: {name} takes {live[name]}% of live traffic; "
                             "mirror to a deployment that takes none")
        if not any(live.values()):
            raise ValueError(f"mirror {name}={percent}: the endpoint has no live traffic to mirror")
    return dict(requested)


def with_traffic(endpoint: Any, *, traffic: Mapping[str, int] | None = None,
                 mirror: Mapping[str, int] | None = None) -> Any:
    """A copy of ``endpoint`` with its live and/or mirror traffic replaced (None keeps the current map)."""
    changed = copy.deepcopy(endpoint)
    if traffic is not None:
        changed.traffic = dict(traffic)
    if mirror is not None:
        changed.mirror_traffic = dict(mirror)
    return changed


def describe(split: Mapping[str, int]) -> str:
    """``blue 90%, green 10%`` (``none`` for an empty map), for what the commands print."""
    return ", ".join(f"{name} {percent}%" for name, percent in split.items()) or "none"
