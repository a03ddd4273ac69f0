"""The one boundary to Azure ML: a thin wrapper around ``MLClient``, nothing else calls Azure.

Its methods take ready-made azure-ai-ml entities and send them (or fetch one endpoint); building
them is done elsewhere (``pipelines.publish``, ``scoring.deploy``), so tests replace this class with a
recorder and assert on the exact entities that would have been sent.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from refinery.settings import Settings

WORKSPACE_SETTINGS = ("subscription_id", "resource_group", "workspace_name")


class AzureMLError(ValueError):
    """An Azure call failed (credentials, permissions, a rejected entity); one line naming what was sent."""


@contextmanager
def _azure_call(what: str) -> Iterator[None]:
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AzureMLError(f"{what} failed: {first}") from exc


class AmlClient:
    """A workspace or registry reached with ``DefaultAzureCredential``."""

    def __init__(self, ml_client: Any, target: str):
        self._ml = ml_client
        self.target = target

    @classmethod
    def from_settings(cls, settings: Settings, registry: str | None = None) -> AmlClient:
        """The workspace the settings name (or ``registry``); ValueError naming a missing setting."""
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential

        if registry:
            with _azure_call(f"connecting to AML registry {registry!r}"):  # MLClient looks the registry up now
                ml = MLClient(credential=DefaultAzureCredential(), registry_name=registry,
                              subscription_id=settings.subscription_id, resource_group_name=settings.resource_group)
            return cls(ml, f"registry {registry}")
        missing = [name for name in WORKSPACE_SETTINGS if not getattr(settings, name)]
        if missing:
            raise ValueError(
                f"setting {missing[0]} is not set; the AML workspace needs {', '.join(WORKSPACE_SETTINGS)} "
                f"(REFINERY_{missing[0].upper()} or the settings file)"
            )
        ml = MLClient(DefaultAzureCredential(), settings.subscription_id, settings.resource_group, settings.workspace_name)
        return cls(ml, f"workspace {settings.workspace_name}")

    def create_environment(self, environment: Any) -> Any:
        with _azure_call(f"{self.target}: registering environment {environment.name}:{environment.version}"):
            return self._ml.environments.create_or_update(environment)

    def create_component(self, component: Any) -> Any:
        with _azure_call(f"{self.target}: registering component {component.name}:{component.version}"):
            return self._ml.components.create_or_update(component)

    def submit_job(self, job: Any, experiment_name: str) -> Any:
        with _azure_call(f"{self.target}: submitting pipeline {job.display_name} to experiment {experiment_name}"):
            return self._ml.jobs.create_or_update(job, experiment_name=experiment_name)

    def create_schedule(self, schedule: Any) -> Any:
        with _azure_call(f"{self.target}: creating schedule {schedule.name}"):
            return self._ml.schedules.begin_create_or_update(schedule).result()

    def get_endpoint(self, name: str) -> Any | None:
        """The online endpoint with its live and mirror traffic, or None when the workspace has none of that name."""
        from azure.core.exceptions import ResourceNotFoundError

        with _azure_call(f"{self.target}: reading online endpoint {name}"):
            try:
                return self._ml.online_endpoints.get(name)
            except ResourceNotFoundError:
                return None

    def create_endpoint(self, endpoint: Any) -> Any:
        with _azure_call(f"{self.target}: creating online endpoint {endpoint.name}"):
            return self._ml.online_endpoints.begin_create_or_update(endpoint).result()

    def create_deployment(self, deployment: Any) -> Any:
        with _azure_call(f"{self.target}: creating deployment {deployment.name} on endpoint {deployment.endpoint_name}"):
            return self._ml.online_deployments.begin_create_or_update(deployment).result()

    def update_endpoint_traffic(self, endpoint: Any) -> Any:
        with _azure_call(f"{self.target}: setting traffic {endpoint.traffic} mirror {endpoint.mirror_traffic} "
                         f"on endpoint {endpoint.name}"):
            return self._ml.online_endpoints.begin_create_or_update(endpoint).result()
