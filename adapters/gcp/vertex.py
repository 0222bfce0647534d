"""Thin, typed calls to the Vertex AI ``aiplatform`` v1 methods the adapter uses.

:class:`VertexApi` names resources, builds each request through the discovery client and
translates errors; :class:`ModelState` is one read of a model's versions and its endpoint,
from which the adapter decides what to change.

Version identity: a cloudserve version is the Vertex model version carrying the alias
``v<version>`` (aliases are per version and unique within a model); the export digest is in
its ``versionDescription``. Labels are not used for either: Vertex merges the model's labels
and the version's labels when it returns a version (UpdateModelRequest), so a label set on
one version can show on another.

Transport retries: reads (``get``, ``listVersions``, operation polls) and writes that set an
absolute state (endpoint ``patch``, ``mergeVersionAliases``, ``mutateDeployedModel``) are
resent by googleapiclient after a connection error, 5xx or 429 (``retries`` times).
Requests that create something or whose repeat differs from one call are sent once:
``upload`` (a second version), ``deployModel`` (a second deployed model), ``create``,
``undeployModel``, the deletes, and ``predict`` — a prediction may reach a custom container
with side effects and a resend doubles its load, so whether to repeat it is the caller's call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cloudserve_adapters.gcp.sdk import execute, execute_or_none

DEFAULT_ALIAS = "default"
LABEL_MANAGED = "managed-by"
LABEL_HISTORY = "cloudserve-defaults"  # endpoint label: past defaults, oldest first, "_"-joined
LABEL_MAX = 63
_VERSION_ALIAS = re.compile(r"^v([1-9][0-9]*)$")
_DIGEST = re.compile(r"\(export digest ([0-9a-f]{32})\)")


def version_alias(version: str) -> str:
    """The Vertex version alias that names cloudserve version ``version`` (``v<version>``)."""
    return f"v{version}"


def version_description(version: str, digest: str) -> str:
    """The ``versionDescription`` recording a version's number and its export digest."""
    return f"cloudserve version {version} (export digest {digest})"


class VertexApi:
    """Calls on one project and region.

    Args:
        client: the ``aiplatform`` v1 discovery resource (from ``GcpClients.vertex``).
        project: the project id.
        region: the Vertex region (``locations/{region}``).
    """

    def __init__(self, client: Any, project: str, region: str, *, retries: int = 0):
        self.client = client
        self.parent = f"projects/{project}/locations/{region}"
        self.retries = retries

    # ------------------------------------------------------------------ names

    def model_name(self, model: str, ref: str | None = None) -> str:
        """``projects/P/locations/L/models/M`` or, with a version id or alias, ``...M@ref``."""
        name = f"{self.parent}/models/{model}"
        return f"{name}@{ref}" if ref else name

    def endpoint_name(self, endpoint_id: str) -> str:
        """``projects/P/locations/L/endpoints/E``."""
        return f"{self.parent}/endpoints/{endpoint_id}"

    def _models(self) -> Any:
        return self.client.projects().locations().models()

    def _endpoints(self) -> Any:
        return self.client.projects().locations().endpoints()

    # ------------------------------------------------------------------ models

    def get_version(self, model: str, ref: str | None = None) -> dict | None:
        """The model version ``ref`` (id or alias; None: the default), or None if missing."""
        name = self.model_name(model, ref)
        return execute_or_none(f"get {name}", self._models().get(name=name), retries=self.retries)

    def list_versions(self, model: str) -> list[dict] | None:
        """Every version of ``model`` (None when the model does not exist)."""
        name = self.model_name(model)
        versions: list[dict] = []
        token = None
        while True:
            page = execute_or_none(
                f"list versions of {name}",
                self._models().listVersions(name=name, pageToken=token),
                retries=self.retries,
            )
            if page is None:
                return None
            versions.extend(page.get("models", []))
            token = page.get("nextPageToken")
            if not token:
                return versions

    def upload(self, model: str, body: dict, *, new_model: bool) -> dict:
        """Start ``models.upload``: a first version (``modelId``) or another (``parentModel``)."""
        request: dict[str, Any] = {"model": body}
        if new_model:
            request["modelId"] = model
        else:
            request["parentModel"] = self.model_name(model)
        return execute(
            f"upload model {model}", self._models().upload(parent=self.parent, body=request)
        )

    def merge_aliases(self, model: str, version_id: str, aliases: list[str]) -> dict:
        """Add (or, with a leading ``-``, remove) aliases on one version; moves unique ones."""
        name = self.model_name(model, version_id)
        return execute(
            f"set aliases {aliases} on {name}",
            self._models().mergeVersionAliases(name=name, body={"versionAliases": aliases}),
            retries=self.retries,
        )

    def delete_version(self, model: str, version_id: str) -> dict:
        """Start deleting one (undeployed, non-default) version."""
        name = self.model_name(model, version_id)
        return execute(f"delete {name}", self._models().deleteVersion(name=name))

    def delete_model(self, model: str) -> dict:
        """Start deleting the model and all its versions (none may be deployed)."""
        name = self.model_name(model)
        return execute(f"delete {name}", self._models().delete(name=name))

    # ------------------------------------------------------------------ endpoints

    def get_endpoint(self, endpoint_id: str) -> dict | None:
        """The endpoint, or None if it does not exist."""
        name = self.endpoint_name(endpoint_id)
        return execute_or_none(
            f"get {name}", self._endpoints().get(name=name), retries=self.retries
        )

    def create_endpoint(self, endpoint_id: str, body: dict) -> dict:
        """Start creating an endpoint with a chosen id."""
        return execute(
            f"create endpoint {endpoint_id}",
            self._endpoints().create(parent=self.parent, endpointId=endpoint_id, body=body),
        )

    def delete_endpoint(self, endpoint_id: str) -> dict:
        """Start deleting an endpoint (it must have no deployed models)."""
        name = self.endpoint_name(endpoint_id)
        return execute(f"delete {name}", self._endpoints().delete(name=name))

    def patch_endpoint(self, endpoint_id: str, body: dict, fields: list[str]) -> dict:
        """Update ``fields`` of the endpoint (synchronous)."""
        name = self.endpoint_name(endpoint_id)
        return execute(
            f"update {name}",
            self._endpoints().patch(name=name, body=body, updateMask=",".join(fields)),
            retries=self.retries,
        )

    def deploy_model(self, endpoint_id: str, deployed: dict, traffic: dict[str, int]) -> dict:
        """Start ``deployModel``; ``traffic`` may use the key "0" for the model being deployed."""
        body: dict[str, Any] = {"deployedModel": deployed}
        if traffic:
            body["trafficSplit"] = traffic
        name = self.endpoint_name(endpoint_id)
        return execute(
            f"deploy {deployed['model']} to {name}",
            self._endpoints().deployModel(endpoint=name, body=body),
        )

    def undeploy_model(self, endpoint_id: str, deployed_id: str, traffic: dict[str, int]) -> dict:
        """Start ``undeployModel``; ``traffic`` moves the model's share away when it has one."""
        body: dict[str, Any] = {"deployedModelId": deployed_id}
        if traffic:
            body["trafficSplit"] = traffic
        name = self.endpoint_name(endpoint_id)
        return execute(
            f"undeploy {deployed_id} from {name}",
            self._endpoints().undeployModel(endpoint=name, body=body),
        )

    def mutate_deployed_model(self, endpoint_id: str, deployed: dict, fields: list[str]) -> dict:
        """Start ``mutateDeployedModel``: change ``fields`` (replica counts, autoscaling) of
        the deployed model ``deployed["id"]`` in place."""
        name = self.endpoint_name(endpoint_id)
        body = {"deployedModel": deployed, "updateMask": ",".join(fields)}
        return execute(
            f"update deployed model {deployed['id']} on {name}",
            self._endpoints().mutateDeployedModel(endpoint=name, body=body),
            retries=self.retries,
        )

    def predict(self, endpoint_id: str, body: dict) -> dict:
        """``endpoints.predict``: the model answers per the endpoint's trafficSplit."""
        name = self.endpoint_name(endpoint_id)
        return execute(f"predict on {name}", self._endpoints().predict(endpoint=name, body=body))


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Version:
    """One Vertex model version that cloudserve made."""

    version: str  # the cloudserve version ("3")
    version_id: str  # Vertex's auto-incremented versionId ("5")
    aliases: tuple[str, ...]
    digest: str
    artifact_uri: str
    created: str | None

    @property
    def is_default(self) -> bool:
        return DEFAULT_ALIAS in self.aliases

    @property
    def named(self) -> bool:
        """Does it carry cloudserve's ``v<version>`` alias (else it was made by other means)?"""
        return version_alias(self.version) in self.aliases

    @classmethod
    def from_model(cls, body: dict) -> Version:
        """The version a Vertex model-version body describes: its number from the ``v<N>``
        alias (the version id for a version cloudserve did not make), its digest from the
        ``versionDescription``. Never from labels (see the module docstring)."""
        version_id = str(body.get("versionId", ""))
        aliases = tuple(body.get("versionAliases", []))
        numbers = [m.group(1) for a in aliases if (m := _VERSION_ALIAS.match(a))]
        digest = _DIGEST.search(body.get("versionDescription", ""))
        return cls(
            version=numbers[0] if numbers else version_id,
            version_id=version_id,
            aliases=aliases,
            digest=digest.group(1) if digest else "",
            artifact_uri=body.get("artifactUri", ""),
            created=body.get("versionCreateTime"),
        )


@dataclass(frozen=True)
class ModelState:
    """One read of a model's versions (newest first) and of its endpoint."""

    model: str
    versions: list[Version]
    endpoint: dict | None
    deployed: dict[str, dict] = field(default_factory=dict)  # versionId -> DeployedModel

    @classmethod
    def read(cls, api: VertexApi, model: str, endpoint_id: str) -> ModelState | None:
        """Read the state; None when the model does not exist."""
        bodies = api.list_versions(model)
        if bodies is None:
            return None
        versions = sorted(
            (Version.from_model(b) for b in bodies),
            key=lambda v: int(v.version_id) if v.version_id.isdigit() else 0,
            reverse=True,
        )
        endpoint = api.get_endpoint(endpoint_id)
        deployed = {
            str(d.get("modelVersionId")): d
            for d in (endpoint or {}).get("deployedModels", [])
            if d.get("model", "").rsplit("/", 1)[-1].split("@")[0] == model
        }
        return cls(model, versions, endpoint, deployed)

    def find(self, version: str) -> Version | None:
        """The cloudserve version ``version`` (the one aliased ``v<version>``), if it exists."""
        return next((v for v in self.versions if v.named and v.version == version), None)

    @property
    def default(self) -> Version | None:
        """The version holding the ``default`` alias."""
        return next((v for v in self.versions if v.is_default), None)

    def deployed_id(self, version: Version) -> str | None:
        """The DeployedModel id serving ``version`` on the endpoint, if it is deployed."""
        deployed = self.deployed.get(version.version_id)
        return str(deployed["id"]) if deployed else None

    @property
    def traffic_split(self) -> dict[str, int]:
        """The endpoint's trafficSplit (deployedModelId -> percent)."""
        return {k: int(v) for k, v in (self.endpoint or {}).get("trafficSplit", {}).items()}

    def traffic(self, version: Version) -> int:
        """Percent of unversioned requests ``version`` receives."""
        deployed_id = self.deployed_id(version)
        return self.traffic_split.get(deployed_id, 0) if deployed_id else 0

    @property
    def history(self) -> list[str]:
        """Past default versions, oldest first (from the endpoint label)."""
        raw = (self.endpoint or {}).get("labels", {}).get(LABEL_HISTORY, "")
        return [v for v in raw.split("_") if v]

    def foreign_deployments(self) -> list[str]:
        """Deployed models on the endpoint that belong to another model."""
        return [
            d.get("model", "")
            for d in (self.endpoint or {}).get("deployedModels", [])
            if d.get("model", "").rsplit("/", 1)[-1].split("@")[0] != self.model
        ]


def history_label(history: list[str]) -> str:
    """Encode a default history into one label value, dropping the oldest to fit 63 chars."""
    kept = list(history)
    while kept and len("_".join(kept)) > LABEL_MAX:
        kept.pop(0)
    return "_".join(kept)
