"""What cloudserve reads back from Azure ML about one model: versions, deployments, traffic.

A cloudserve *version* N is registered model version ``<model>:N`` (tagged with the export's
digest and serving image) served by deployment ``vN`` of the model's endpoint. The *default
version* is the one with 100 % of the endpoint's traffic, or during a canary the last version
made default; past defaults are kept, oldest first, in the endpoint tag ``cloudserve-defaults``
so ``rollback`` can go back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudserve_adapters.azure.preflight import deployment_name, version_of
from cloudserve_adapters.azure.workspace import WorkspaceApi

TAG_MODEL = "cloudserve-model"
TAG_DIGEST = "cloudserve-digest"
TAG_IMAGE = "cloudserve-image"
TAG_HISTORY = "cloudserve-defaults"
TAG_VERSION = "cloudserve-version"


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)


@dataclass
class ModelState:
    """One read of a model's registered versions, its endpoint and the endpoint's deployments."""

    model: str
    endpoint_name: str
    versions: list[dict[str, Any]]  # registered model versions, newest first
    endpoint: dict[str, Any] | None
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by deployment name

    @classmethod
    def read(cls, api: WorkspaceApi, model: str, endpoint_name: str) -> ModelState:
        """Read everything (a few GETs); never writes."""
        versions = sorted(
            api.model_versions(model), key=lambda v: _version_key(v["name"]), reverse=True
        )
        endpoint = api.endpoint(endpoint_name)
        deployments = (
            {d["name"]: d for d in api.deployments(endpoint_name)} if endpoint is not None else {}
        )
        return cls(model, endpoint_name, versions, endpoint, deployments)

    @property
    def exists(self) -> bool:
        return bool(self.versions) or self.endpoint is not None

    # ------------------------------------------------------------------ versions

    def version(self, version: str) -> dict[str, Any] | None:
        """The registered model version, or None."""
        return next((v for v in self.versions if v["name"] == version), None)

    def version_names(self) -> list[str]:
        return [v["name"] for v in self.versions]

    @staticmethod
    def tag(version: dict[str, Any], key: str) -> str:
        return str(version.get("properties", {}).get("tags", {}).get(key, ""))

    # ------------------------------------------------------------------ endpoint

    @property
    def tags(self) -> dict[str, str]:
        return dict((self.endpoint or {}).get("tags") or {})

    @property
    def traffic(self) -> dict[str, int]:
        """Deployment name -> percent, without zero entries."""
        split = (self.endpoint or {}).get("properties", {}).get("traffic") or {}
        return {k: int(v) for k, v in split.items() if int(v)}

    def traffic_of(self, version: str) -> int:
        return self.traffic.get(deployment_name(version), 0)

    @property
    def history(self) -> list[str]:
        """Past and present default versions, oldest first (from the endpoint tag)."""
        text = self.tags.get(TAG_HISTORY, "")
        return [v for v in text.split(",") if v]

    @property
    def default(self) -> str | None:
        """The default version: all traffic, else (canary) the last default still routed."""
        for name, percent in self.traffic.items():
            if percent == 100:
                return version_of(name)
        for version in reversed(self.history):
            if self.traffic_of(version) > 0:
                return version
        return None

    def deployment(self, version: str) -> dict[str, Any] | None:
        return self.deployments.get(deployment_name(version))

    def deployment_state(self, version: str) -> str | None:
        found = self.deployment(version)
        return found.get("properties", {}).get("provisioningState") if found else None
