"""``refinery endpoint deploy|traffic|mirror``: blue/green rollout on an AML managed online endpoint.

``deploy`` creates or updates the endpoint from ``scoring/endpoint.yml`` and rolls out one
deployment (``scoring/deployment_<colour>.yml``) serving a registered model version; ``traffic``
sets the live split between deployments; ``mirror`` copies a share of live requests to a deployment
that takes none, or stops it. Every call goes through ``pipelines.aml_client`` in the workspace the
settings name.
"""
from __future__ import annotations

import argparse

from refinery.settings import Settings


def _client(settings: Settings):
    # Looked up at call time so tests that replace pipelines.commands.client_factory replace it here too.
    from pipelines import commands

    return commands.client_factory(settings)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("endpoint", help="deploy to the AML managed online endpoint; shift or mirror its traffic",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="endpoint_command", required=True, metavar="ACTION")

    def endpoint_flag(q: argparse.ArgumentParser) -> None:
        q.add_argument("--endpoint", help="endpoint name (default: setting endpoint_name, else scoring/endpoint.yml)")

    q = sub.add_parser("deploy", help="create or update the endpoint, then roll out one deployment (blue or green)")
    q.add_argument("deployment", help="deployment to roll out: blue or green (scoring/deployment_<name>.yml)")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-version", help="registered version of the model to serve, e.g. 3")
    which.add_argument("--alias", help="serve the version this registry alias names now, e.g. champion "
                                       "(looked up in the settings' MLflow registry)")
    q.add_argument("--lake", help="lake root: locates the embedded MLflow registry for --alias (default from settings)")
    q.add_argument("--model", default="maintenance", help="registered model name (default maintenance)")
    q.add_argument("--instance-type", help="VM size (default: the spec's, Standard_DS3_v2)")
    q.add_argument("--instance-count", help="number of instances (default: the spec's)")
    endpoint_flag(q)
    q.set_defaults(func=deploy)

    q = sub.add_parser("traffic", help="set the live traffic split, e.g. blue=90,green=10 (sums to 100)")
    q.add_argument("split", help="DEPLOYMENT=PERCENT pairs, comma-separated, summing to 100")
    endpoint_flag(q)
    q.set_defaults(func=traffic)

    q = sub.add_parser("mirror", help="copy a share of live traffic to an idle deployment (green=10), or stop (off)")
    q.add_argument("mirror", help="DEPLOYMENT=PERCENT (at most 50) or off")
    endpoint_flag(q)
    q.set_defaults(func=mirror)


def _current(client, name: str):
    endpoint = client.get_endpoint(name)
    if endpoint is None:
        raise ValueError(f"endpoint {name!r} does not exist in {getattr(client, 'target', 'the workspace')}; "
                         "create it with refinery endpoint deploy")
    return endpoint


def _alias_version(settings: Settings, model: str, alias: str) -> str:
    """The version ``alias`` of ``model`` names in the settings' MLflow registry (on Azure, the
    workspace's), printed so the rollout says what it froze."""
    from scoring.registry import resolve
    from training.tracking import mlflow_tracking

    with mlflow_tracking(settings.resolved_mlflow_uri()) as client:
        ref = resolve(client, model, alias)
    print(f"alias {alias} of {model} is version {ref.version} (run {ref.run_id})")
    return ref.version


def deploy(args: argparse.Namespace, settings: Settings) -> int:
    """Endpoint, then deployment; the first deployment takes all live traffic, one added later none."""
    from scoring import deploy as plan

    name = plan.endpoint_name(args.endpoint, settings.endpoint_name)
    version = args.model_version if args.alias is None else _alias_version(settings, args.model, args.alias)
    # Built (and so validated) before anything is sent.
    deployment = plan.build_deployment(args.deployment, name, version, model=args.model,
                                       instance_type=args.instance_type,
                                       instance_count=plan.parse_instance_count(args.instance_count))
    client = _client(settings)
    existing = client.get_endpoint(name)
    endpoint = plan.build_endpoint(name, existing)
    client.create_endpoint(endpoint)
    state = "created" if existing is None else f"updated, live traffic kept: {plan.describe(endpoint.traffic)}"
    print(f"endpoint {name} ({endpoint.auth_mode} auth): {state}")

    client.create_deployment(deployment)
    print(f"deployment {deployment.name}: model {deployment.model} on {deployment.instance_count} x "
          f"{deployment.instance_type}, environment {deployment.environment}, "
          f"script {deployment.code_configuration.scoring_script}")

    if not any(endpoint.traffic.values()):
        # Nothing answers yet, so blue/green has nothing to protect: the first deployment goes live.
        routed = plan.with_traffic(endpoint, traffic={deployment.name: 100})
        client.update_endpoint_traffic(routed)
        print(f"traffic: {plan.describe(routed.traffic)} (first live deployment)")
    else:
        share = endpoint.traffic.get(deployment.name, 0)
        print(f"traffic unchanged: {deployment.name} takes {share}% ({plan.describe(endpoint.traffic)}); "
              f"shift it with refinery endpoint traffic, or try it first with refinery endpoint mirror {deployment.name}=10")
    return 0


def traffic(args: argparse.Namespace, settings: Settings) -> int:
    """Replace the endpoint's live split; deployments left out of it take 0%."""
    from scoring import deploy as plan

    name = plan.endpoint_name(args.endpoint, settings.endpoint_name)
    requested = plan.parse_live_traffic(args.split, plan.deployment_specs())  # before contacting Azure
    client = _client(settings)
    current = _current(client, name)
    split = plan.live_traffic(requested, current.traffic or {}, current.mirror_traffic or {})
    client.update_endpoint_traffic(plan.with_traffic(current, traffic=split))
    print(f"endpoint {name}: live traffic {plan.describe(split)} (was {plan.describe(current.traffic or {})})")
    return 0


def mirror(args: argparse.Namespace, settings: Settings) -> int:
    """Set or clear the endpoint's mirror traffic; live traffic is left as it is."""
    from scoring import deploy as plan

    name = plan.endpoint_name(args.endpoint, settings.endpoint_name)
    requested = plan.parse_mirror(args.mirror, plan.deployment_specs())  # before contacting Azure
    client = _client(settings)
    current = _current(client, name)
    before = dict(current.mirror_traffic or {})
    shadow = plan.mirror_traffic(requested, current.traffic or {}, before)
    if not shadow and not before:
        print(f"endpoint {name}: no mirror traffic to stop; nothing sent")
        return 0
    client.update_endpoint_traffic(plan.with_traffic(current, mirror=shadow))
    print(f"endpoint {name}: mirror traffic {plan.describe(shadow)} (was {plan.describe(before)}); "
          f"live traffic {plan.describe(current.traffic or {})}")
    return 0
