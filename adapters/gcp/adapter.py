"""The ``gcp`` target: TensorFlow SavedModels served by Vertex AI.

How cloudserve's verbs map onto Vertex AI (``aiplatform`` v1, regional endpoint):

* the export is uploaded to ``gs://bucket/prefix/<model>/<version>/`` (the artifactUri);
* a cloudserve *model* is a Vertex model (``modelId`` = the model name); each cloudserve
  *version* is a Vertex model version (``models.upload`` with ``parentModel``) found by its
  alias ``v<version>`` (and, once found, by its version id), with the export digest in its
  ``versionDescription`` — never by labels, which Vertex merges across a model's versions;
* one endpoint per model (id = ``endpoint_id`` or the model name) hosts the deployed versions;
* the *default version* is the ``default`` alias plus 100% of the endpoint's trafficSplit;
  past defaults are kept, oldest first, in the endpoint label ``cloudserve-defaults`` so
  ``rollback`` can go back.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from cloudserve import limits
from cloudserve import preflight as core_preflight
from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import (
    CloudserveError,
    ConfigError,
    NotFound,
    NotSupported,
    ProviderError,
)
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord
from cloudserve.spec import check_traffic_versions
from cloudserve.waiting import Backoff, resumable
from cloudserve_adapters.gcp import images, logs, operations, preview, upload
from cloudserve_adapters.gcp import preflight as gcp_preflight
from cloudserve_adapters.gcp.config import GcpConfig
from cloudserve_adapters.gcp.sdk import PROVIDER, GcpClients
from cloudserve_adapters.gcp.vertex import (
    DEFAULT_ALIAS,
    LABEL_HISTORY,
    LABEL_MANAGED,
    ModelState,
    Version,
    VertexApi,
    history_label,
    version_alias,
    version_description,
)

MANAGED_BY = "cloudserve"


def _machine(spec: dict[str, Any]) -> tuple[str, str | None, int]:
    """A machine spec compared by what it means: type, accelerator (unset and
    ``ACCELERATOR_TYPE_UNSPECIFIED`` are none) and accelerator count."""
    accelerator = spec.get("acceleratorType")
    if accelerator in (None, "", "ACCELERATOR_TYPE_UNSPECIFIED"):
        return str(spec.get("machineType", "")), None, 0
    return str(spec.get("machineType", "")), accelerator, int(spec.get("acceleratorCount") or 0)


class VertexAdapter(Adapter):
    """Deploys to Vertex AI endpoints; see the module docstring for the resource mapping.

    Args:
        config: a :class:`GcpConfig`.
        clients: a :class:`~cloudserve_adapters.gcp.sdk.GcpClients`; None builds one with
            Application Default Credentials on first use.
        progress: where uploads and operation waits report.
    """

    name: ClassVar[str] = "gcp"
    config_class = GcpConfig
    tf_serving_loading: ClassVar[bool] = True  # managed TF Serving containers
    extra: ClassVar[str | None] = "gcp"
    features = frozenset(
        {
            Feature.GPU,
            Feature.AUTOSCALING,
            Feature.TRAFFIC_SPLIT,
            Feature.MODEL_REGISTRY,
            Feature.CUSTOM_IMAGE,
        }
    )
    config: GcpConfig

    def __init__(
        self,
        config: GcpConfig,
        *,
        clients: GcpClients | None = None,
        progress: Progress | None = None,
    ):
        super().__init__(config, clients=clients, progress=progress)
        self._api: VertexApi | None = None
        self._hashes = upload.FileHashes()  # shared by plan and deploy: each file hashed once

    # ------------------------------------------------------------------ seams

    def _clients(self) -> GcpClients:
        if self.clients is None:
            self.clients = GcpClients()
        return self.clients

    def _vertex(self) -> VertexApi:
        if self._api is None:
            client = self._clients().vertex(
                self.config.vertex_endpoint(), timeout=self.config.http_timeout_s
            )
            self._api = VertexApi(
                client, self.config.project, self.config.region, retries=self.config.api_retries
            )
        return self._api

    def _bucket(self) -> Any:
        storage = self._clients().storage(self.config.project)
        return storage.bucket(self.config.bucket)

    def _wait(self, operation: dict, what: str, deadline: float) -> dict:
        backoff = Backoff(
            self.config.poll_initial_s, self.config.poll_max_s, operations.BACKOFF_FACTOR
        )
        return operations.wait(
            self._vertex().client,
            operation,
            what=what,
            deadline=deadline,
            backoff=backoff,
            progress=self.progress,
            retries=self.config.api_retries,
        )

    def _digest(self, export: ExportInfo) -> str:
        return upload.export_digest(export, self._hashes)

    def _check_bucket(self, bucket: Any) -> None:
        """Refuse a bucket outside the region before anything is uploaded (ConfigError)."""
        warning = upload.check_bucket_location(bucket, self.config.region)
        if warning:
            self.progress.status(f"warning: {warning}")

    def _endpoint_id(self, model: str) -> str:
        return self.config.endpoint_id or model

    def _state(self, model: str) -> ModelState:
        state = ModelState.read(self._vertex(), model, self._endpoint_id(model))
        if state is None:
            raise NotFound(
                f"model '{model}' does not exist on Vertex AI "
                f"({self.config.project}/{self.config.region})",
                hint="deploy it first: cloudserve deploy",
                provider=PROVIDER,
            )
        return state

    @staticmethod
    def _version(state: ModelState, version: str) -> Version:
        found = state.find(version)
        if found is None:
            known = ", ".join(v.version for v in state.versions) or "none"
            raise NotFound(
                f"model '{state.model}' has no version '{version}' (versions: {known})",
                provider=PROVIDER,
            )
        return found

    # ------------------------------------------------------------------ checks

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Vertex rules (:mod:`cloudserve_adapters.gcp.preflight`); no network."""
        return gcp_preflight.run(spec, export, self.config)

    def instance_memory_mb(self) -> int | None:
        """Memory of the configured machine type (limits table); None when not listed."""
        return limits.limit("gcp", "machine_memory_mb").get(self.config.machine_type)

    def _image(self, spec: DeploySpec, export: ExportInfo) -> images.ServingImage:
        """The serving image; PreflightError (with the fix) when none can serve the export."""
        choice = gcp_preflight.choose_image(spec, export, self.config)
        if choice.image is None:
            core_preflight.raise_on_errors(list(choice.findings))
            raise AssertionError("images.choose returned no image and no error")
        return choice.image

    @staticmethod
    def _refuse_other_content(spec: DeploySpec, existing: Version, digest: str) -> None:
        if existing.digest != digest:
            raise ConfigError(
                f"version {spec.version} of '{spec.model}' already exists with different "
                f"content (digest {existing.digest or 'unknown'}, this export {digest})",
                hint="deploy it as a new version number; versions are immutable",
                provider=PROVIDER,
            )

    def _refuse_shared_endpoint(
        self, model: str, state: ModelState | None, endpoint: dict | None
    ) -> None:
        others = (
            state.foreign_deployments()
            if state
            else [d.get("model", "") for d in (endpoint or {}).get("deployedModels", [])]
        )
        if others:
            raise ConfigError(
                f"endpoint '{self._endpoint_id(model)}' also serves {', '.join(others)}; "
                "cloudserve needs one endpoint per model (the default is 100% of its traffic)",
                hint="set targets.gcp.endpoint_id to an endpoint of this model only",
                provider=PROVIDER,
            )

    # ------------------------------------------------------------------ plan

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What :meth:`deploy` would do, from a read of the bucket and Vertex. Writes nothing."""
        api = self._vertex()
        endpoint_id = self._endpoint_id(spec.model)
        state = ModelState.read(api, spec.model, endpoint_id)
        digest = self._digest(export)
        existing = state.find(spec.version) if state else None
        actions: list[PlanAction] = []
        if existing is not None:
            self._refuse_other_content(spec, existing, digest)
            actions.append(
                PlanAction(
                    "skip",
                    "vertex-model-version",
                    api.model_name(spec.model, existing.version_id),
                    "the same export is already registered",
                )
            )
        else:
            prefix = upload.object_prefix(self.config.prefix, spec.model, spec.version)
            bucket = self._bucket()
            self._check_bucket(bucket)
            to_upload, to_skip = upload.pending_files(bucket, export, prefix, self._hashes)
            for verb, files, detail in (
                ("upload", to_upload, "resumable upload"),
                ("skip", to_skip, "already there with the same digest"),
            ):
                actions.extend(
                    PlanAction(
                        verb, "gcs-object", upload.gs_uri(self.config.bucket, prefix + f), detail
                    )
                    for f in files
                )
            if state is None:
                actions.append(PlanAction("create", "vertex-model", api.model_name(spec.model)))
            image = self._image(spec, export)
            actions.append(
                PlanAction(
                    "create",
                    "vertex-model-version",
                    f"{api.model_name(spec.model)}@{version_alias(spec.version)}",
                    f"image {image.uri}",
                )
            )
        endpoint = state.endpoint if state else api.get_endpoint(endpoint_id)
        if endpoint is None:
            actions.append(PlanAction("create", "vertex-endpoint", api.endpoint_name(endpoint_id)))
        deployed = state is not None and existing is not None and state.deployed_id(existing)
        if deployed:
            changes = self._scaling_changes(state.deployed[existing.version_id])
            actions.append(
                PlanAction(
                    "update" if changes else "skip",
                    "vertex-deployed-model",
                    str(deployed),
                    f"mutateDeployedModel {', '.join(changes)}" if changes else "already deployed",
                )
            )
        else:
            actions.append(
                PlanAction(
                    "create",
                    "vertex-deployed-model",
                    f"{spec.model} v{spec.version}",
                    json.dumps(self._resources(), sort_keys=True),
                )
            )
        first = state is None or not state.traffic_split
        already_default = existing is not None and existing.is_default
        if spec.traffic is not None:
            actions.append(PlanAction("route", "vertex-traffic", endpoint_id, str(spec.traffic)))
        elif (first or spec.set_default) and not already_default:
            actions.append(
                PlanAction("route", "vertex-traffic", endpoint_id, f"100% -> v{spec.version}")
            )
        all_traffic = (spec.traffic or {}).get(spec.version) == 100 or (
            spec.traffic is None and (first or spec.set_default or already_default)
        )
        preview_id = preview.endpoint_id(endpoint_id, spec.version)
        if self.config.preview_endpoints and preview_id and not all_traffic:
            actions.append(
                PlanAction(
                    "create",
                    "vertex-preview-endpoint",
                    api.endpoint_name(preview_id),
                    f"v{spec.version} with 1 replica, for predict --version (if not there yet)",
                )
            )
        return Plan(
            target=self.name, model=spec.model, version=spec.version, actions=tuple(actions)
        )

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload, register the version, deploy it to the model's endpoint; see the base class.

        The first version gets 100% of the traffic in its ``deployModel`` call; a later one
        gets none unless ``spec.set_default`` (then it becomes the default once deployed) or
        ``spec.traffic`` (a canary split applied by ``deployModel`` itself). With
        ``wait=False`` it returns once ``deployModel`` has started (state CREATING) and moves
        no default.
        """
        self.ensure_deployable(spec, export)
        deadline = time.monotonic() + timeout
        api = self._vertex()
        endpoint_id = self._endpoint_id(spec.model)
        digest = self._digest(export)
        state = ModelState.read(api, spec.model, endpoint_id)
        existing = state.find(spec.version) if state else None
        if existing is not None:
            self._refuse_other_content(spec, existing, digest)
        endpoint = state.endpoint if state else api.get_endpoint(endpoint_id)
        self._refuse_shared_endpoint(spec.model, state, endpoint)
        if spec.traffic is not None:  # a split naming an undeployed version: refuse before upload
            self._split(spec, state or ModelState(spec.model, [], endpoint), new_key="0")
        if state is not None and existing is not None and state.deployed_id(existing):
            return self._redeploy_in_place(spec, state, existing, deadline)
        version = existing or self._register(
            spec, export, digest, new_model=state is None, deadline=deadline
        )
        if endpoint is None:
            endpoint = self._create_endpoint(spec.model, endpoint_id, deadline)
        state = self._state(spec.model)
        traffic = self._deploy_traffic(spec, state, version)
        deployed_id = self._deploy_version(spec.model, version, traffic, deadline, wait=wait)
        if deployed_id is None:
            return self._record(
                state,
                version,
                changed=True,
                status="CREATING",
                message="deployModel started; not waited for (set the default once it serves)",
            )
        state = self._state(spec.model)
        version = self._version(state, spec.version)
        if spec.set_default or (traffic.get("0") == 100 and version.is_default):
            return self._make_default(spec.model, spec.version, deadline, changed=True)
        self._prune(spec.model, deadline)
        state = self._state(spec.model)
        if state.traffic(version) != 100:
            try:
                self._deploy_preview(spec.model, version, deadline)
            except ProviderError as e:
                raise ProviderError(
                    f"v{spec.version} is deployed with {state.traffic(version)}% of the traffic, "
                    f"but its preview endpoint (for predict --version) failed: {e.message}",
                    hint="re-run the same deploy (it resumes), or set "
                    "targets.gcp.preview_endpoints: false",
                    provider=PROVIDER,
                ) from e
        return self._record(self._state(spec.model), version, changed=True)

    def _scaling_changes(self, deployed: dict[str, Any]) -> list[str]:
        """The ``dedicatedResources`` fields whose deployed value differs from the config.

        Raises:
            ConfigError: the machine (type, accelerators) differs: Vertex cannot change it on
                a deployed model, so the export must be deployed as a new version.
        """
        current = deployed.get("dedicatedResources", {})
        wanted = self._resources()
        if _machine(current.get("machineSpec", {})) != _machine(wanted["machineSpec"]):
            raise ConfigError(
                f"the deployed model {deployed.get('id')} runs on {current.get('machineSpec')}; "
                f"the settings ask for {wanted['machineSpec']}, which Vertex cannot change on a "
                "deployed model",
                hint="deploy the export as a new version number to change the machine",
                provider=PROVIDER,
            )
        keys = ["minReplicaCount", "maxReplicaCount"]
        if "autoscalingMetricSpecs" in wanted:  # unset: leave Vertex's own (default) specs alone
            keys.append("autoscalingMetricSpecs")
        return [k for k in keys if current.get(k) != wanted[k]]

    def _apply_scaling(
        self, model: str, version: Version, deployed: dict[str, Any], deadline: float
    ) -> bool:
        """``mutateDeployedModel`` when replicas or autoscaling changed; True if it did."""
        changes = self._scaling_changes(deployed)
        if not changes:
            return False
        wanted = self._resources()
        resources = {
            "machineSpec": wanted["machineSpec"],
            **{k: wanted[k] for k in changes},
        }
        self.progress.status(f"updating {model} v{version.version}: {', '.join(changes)}")
        operation = self._vertex().mutate_deployed_model(
            self._endpoint_id(model),
            {"id": deployed["id"], "dedicatedResources": resources},
            [f"dedicatedResources.{k}" for k in changes],
        )
        self._wait(operation, f"update {model} v{version.version}", deadline)
        return True

    def _redeploy_in_place(
        self, spec: DeploySpec, state: ModelState, version: Version, deadline: float
    ) -> VersionRecord:
        """The version is registered and deployed already: apply changed scaling settings
        (``mutateDeployedModel``), then a default or split ask, and make sure its preview
        endpoint exists exactly while it lacks all the traffic."""
        changed = self._apply_scaling(
            spec.model, version, state.deployed[version.version_id], deadline
        )
        if spec.set_default:
            return self._make_default(spec.model, spec.version, deadline, changed=changed)
        share = state.traffic(version)
        if spec.traffic is not None:
            split = self._split(spec, state, new_key=state.deployed_id(version) or "0")
            if split != state.traffic_split:
                self._vertex().patch_endpoint(
                    self._endpoint_id(spec.model), {"trafficSplit": split}, ["trafficSplit"]
                )
                changed = True
            share = split.get(state.deployed_id(version) or "", 0)
        if share == 100:
            changed = bool(self._remove_preview(spec.model, spec.version, deadline)) or changed
        else:  # a version without all the traffic keeps (or gets back) its preview endpoint
            changed = self._deploy_preview(spec.model, version, deadline) or changed
        if changed:
            return self._record(self._state(spec.model), version, changed=True)
        return self._record(state, version, changed=False, message="already deployed; no change")

    def _register(
        self,
        spec: DeploySpec,
        export: ExportInfo,
        digest: str,
        *,
        new_model: bool,
        deadline: float,
    ) -> Version:
        """Upload the export and create the Vertex model version; returns it."""
        image = self._image(spec, export)
        prefix = upload.object_prefix(self.config.prefix, spec.model, spec.version)
        destination = upload.gs_uri(self.config.bucket, prefix)
        bucket = self._bucket()
        self._check_bucket(bucket)
        self.progress.status(f"uploading {export.path} to {destination}")
        with resumable(f"uploading {export.path} to {destination}", provider=PROVIDER):
            result = upload.upload_export(
                bucket,
                export,
                prefix,
                chunk_size=self.config.upload_chunk_size,
                progress=self.progress,
                hashes=self._hashes,
            )
        body = {
            "displayName": spec.model,
            "artifactUri": result.uri,
            "containerSpec": image.container_spec(self.config.deployment_timeout_s),
            "versionAliases": [version_alias(spec.version)],
            "versionDescription": version_description(spec.version, digest),
            "labels": {**self.config.labels, LABEL_MANAGED: MANAGED_BY},
        }
        api = self._vertex()
        self.progress.status(f"registering {spec.model} version {spec.version} ({image.uri})")
        response = self._wait(
            api.upload(spec.model, body, new_model=new_model),
            f"upload model {spec.model} v{spec.version}",
            deadline,
        )
        created = api.get_version(spec.model, str(response.get("modelVersionId", "")))
        if created is None:
            raise ProviderError(
                f"Vertex reported {spec.model} v{spec.version} uploaded but cannot find it",
                provider=PROVIDER,
            )
        return Version.from_model(created)

    def _create_endpoint(self, model: str, endpoint_id: str, deadline: float) -> dict:
        api = self._vertex()
        body = {
            "displayName": self.config.endpoint_display_name or model,
            "labels": {**self.config.labels, LABEL_MANAGED: MANAGED_BY},
        }
        self.progress.status(f"creating endpoint {endpoint_id}")
        return self._wait(
            api.create_endpoint(endpoint_id, body), f"create endpoint {endpoint_id}", deadline
        )

    def _resources(self) -> dict[str, Any]:
        """The ``dedicatedResources`` of a deployed model, from the config."""
        machine: dict[str, Any] = {"machineType": self.config.machine_type}
        if self.config.accelerator_type:
            machine["acceleratorType"] = self.config.accelerator_type
            machine["acceleratorCount"] = self.config.accelerator_count
        resources: dict[str, Any] = {
            "machineSpec": machine,
            "minReplicaCount": self.config.min_replicas,
            "maxReplicaCount": self.config.max_replica_count,
        }
        if self.config.autoscaling_cpu_target is not None:
            resources["autoscalingMetricSpecs"] = [
                {
                    "metricName": limits.limit("gcp", "autoscaling_cpu_metric"),
                    "target": self.config.autoscaling_cpu_target,
                }
            ]
        return resources

    def _split(self, spec: DeploySpec, state: ModelState, *, new_key: str) -> dict[str, int]:
        """``spec.traffic`` (version -> percent) as deployedModelId -> percent."""
        traffic = spec.traffic or {}
        deployed = {v.version: state.deployed_id(v) for v in state.versions}
        check_traffic_versions(
            traffic,
            deploying=spec.version,
            available={v for v, deployed_id in deployed.items() if deployed_id},
        )
        split = {
            (new_key if version == spec.version else str(deployed[version])): percent
            for version, percent in traffic.items()
        }
        return {k: v for k, v in split.items() if v}

    def _deploy_traffic(
        self, spec: DeploySpec, state: ModelState, version: Version
    ) -> dict[str, int]:
        if spec.traffic is not None:
            return self._split(spec, state, new_key="0")
        if not state.traffic_split and (version.is_default or spec.set_default):
            return {"0": 100}
        return {}

    def _deploy_version(
        self,
        model: str,
        version: Version,
        traffic: dict[str, int],
        deadline: float,
        *,
        wait: bool = True,
        endpoint_id: str | None = None,
        resources: dict[str, Any] | None = None,
    ) -> str | None:
        """Deploy one version to the model's endpoint (or ``endpoint_id``); its DeployedModel
        id (None when not waited)."""
        api = self._vertex()
        endpoint_id = endpoint_id or self._endpoint_id(model)
        deployed: dict[str, Any] = {
            "model": api.model_name(model, version.version_id),
            "displayName": f"{model}-v{version.version}",
            "dedicatedResources": resources or self._resources(),
        }
        if self.config.service_account:
            deployed["serviceAccount"] = self.config.service_account
        self.progress.status(
            f"deploying {model} v{version.version} to {endpoint_id} ({self.config.machine_type})"
        )
        operation = api.deploy_model(endpoint_id, deployed, traffic)
        if not wait:
            return None
        response = self._wait(operation, f"deploy {model} v{version.version}", deadline)
        return str(response.get("deployedModel", {}).get("id", "")) or None

    # ------------------------------------------------------------------ default version

    def _make_default(
        self,
        model: str,
        version: str,
        deadline: float,
        *,
        history: list[str] | None = None,
        changed: bool = False,
    ) -> VersionRecord:
        """Give ``version`` 100% of the traffic and the ``default`` alias; record the history.

        Deploys the version first when it is not deployed. Traffic moves in one endpoint
        update, so a failure before it leaves the previous default serving.
        """
        api = self._vertex()
        endpoint_id = self._endpoint_id(model)
        state = self._state(model)
        target = self._version(state, version)
        if state.endpoint is None:
            self._create_endpoint(model, endpoint_id, deadline)
            state = self._state(model)
        if state.deployed_id(target) is None:
            self._deploy_version(model, target, {}, deadline)
            state = self._state(model)
            changed = True
        deployed_id = state.deployed_id(target)
        current = state.default
        past = state.history or ([current.version] if current else [])
        if history is None:
            history = past if past and past[-1] == version else [*past, version]
        split = {deployed_id: 100}
        if state.traffic_split != split or past != history:
            labels = {**state.endpoint.get("labels", {}), LABEL_HISTORY: history_label(history)}
            self.progress.status(f"routing 100% of {model} to v{version}")
            api.patch_endpoint(
                endpoint_id, {"trafficSplit": split, "labels": labels}, ["trafficSplit", "labels"]
            )
            changed = True
        if not target.is_default:
            try:
                api.merge_aliases(model, target.version_id, [DEFAULT_ALIAS])
            except ProviderError as e:
                raise ProviderError(
                    f"v{version} now receives all traffic, but moving the 'default' alias "
                    f"failed: {e.message}",
                    hint="run 'cloudserve versions set-default' again; it is idempotent",
                    provider=PROVIDER,
                ) from e
            changed = True
        if self._remove_preview(model, version, deadline):
            changed = True
        self._prune(model, deadline)
        state = self._state(model)
        return self._record(state, self._version(state, version), changed=changed)

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make ``version`` the default (alias + 100% traffic); see the base class."""
        return self._make_default(model, version, time.monotonic() + timeout)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make the previous default (per the endpoint's history label) the default again."""
        state = self._state(model)
        current = state.default.version if state.default else None
        history = state.history or ([current] if current else [])
        while history and (history[-1] == current or state.find(history[-1]) is None):
            history.pop()
        if not history:
            raise NotFound(
                f"model '{model}' has no earlier default version to roll back to",
                provider=PROVIDER,
            )
        return self._make_default(model, history[-1], time.monotonic() + timeout, history=history)

    def _prune(self, model: str, deadline: float) -> list[str]:
        """Undeploy versions nobody can reach: no traffic, not default, not kept for rollback.

        Kept deployed: the default, anything with traffic, anything newer than the default
        (waiting to be promoted), and the ``keep_previous`` most recent earlier defaults.
        """
        state = self._state(model)
        default = state.default
        if default is None or state.endpoint is None:
            return []
        earlier = list(dict.fromkeys(v for v in reversed(state.history) if v != default.version))
        keep = {default.version, *earlier[: self.config.keep_previous]}
        removed = []
        for version in state.versions:
            deployed_id = state.deployed_id(version)
            if (
                deployed_id is None
                or version.version in keep
                or state.traffic(version) > 0
                or int(version.version_id) > int(default.version_id)
            ):
                continue
            self.progress.status(f"undeploying {model} v{version.version} (no traffic)")
            operation = self._vertex().undeploy_model(self._endpoint_id(model), deployed_id, {})
            self._wait(operation, f"undeploy {model} v{version.version}", deadline)
            removed.append(deployed_id)
            self._remove_preview(model, version.version, deadline)
        return removed

    # ------------------------------------------------------------------ preview endpoints

    def _deploy_preview(self, model: str, version: Version, deadline: float) -> bool:
        """Deploy ``version`` with one replica to its preview endpoint (created when missing),
        so ``predict --version`` reaches it; see :mod:`cloudserve_adapters.gcp.preview`.

        Idempotent; True when it changed anything. Does nothing when ``preview_endpoints`` is
        off or the preview endpoint id would be invalid (a numeric ``endpoint_id``).

        Raises:
            ConfigError: an endpoint with the preview id exists and cloudserve did not make it.
        """
        if not self.config.preview_endpoints:
            return False
        api = self._vertex()
        main = self._endpoint_id(model)
        found = preview.read(api, main, version.version)
        if found is None:
            return False
        ident, endpoint = found
        if endpoint is not None and not preview.is_preview_of(endpoint, main, MANAGED_BY):
            raise ConfigError(
                f"endpoint '{ident}' exists and is not cloudserve's preview endpoint of '{main}'",
                hint="delete or rename that endpoint, or set targets.gcp.preview_endpoints: false",
                provider=PROVIDER,
            )
        if preview.deployed_id(endpoint, version.version_id):
            return False
        if endpoint is None:
            self.progress.status(
                f"creating preview endpoint {ident} for {model} v{version.version}"
            )
            self._wait(
                api.create_endpoint(
                    ident, preview.body(main, version.version, self.config.labels, MANAGED_BY)
                ),
                f"create endpoint {ident}",
                deadline,
            )
        resources = {**self._resources(), "minReplicaCount": 1, "maxReplicaCount": 1}
        resources.pop("autoscalingMetricSpecs", None)
        self._deploy_version(
            model, version, {"0": 100}, deadline, endpoint_id=ident, resources=resources
        )
        return True

    def _remove_preview(self, model: str, version: str, deadline: float) -> list[str]:
        """Undeploy and delete ``version``'s preview endpoint, if cloudserve made one.

        Idempotent; returns the names of what it removed.
        """
        api = self._vertex()
        main = self._endpoint_id(model)
        found = preview.read(api, main, version)
        if found is None or not preview.is_preview_of(found[1], main, MANAGED_BY):
            return []
        ident, endpoint = found
        self.progress.status(f"removing preview endpoint {ident}")
        for deployed in (endpoint or {}).get("deployedModels", []):
            self._wait(
                api.undeploy_model(ident, str(deployed["id"]), {}),
                f"undeploy {deployed['id']} from {ident}",
                deadline,
            )
        self._wait(api.delete_endpoint(ident), f"delete endpoint {ident}", deadline)
        return [api.endpoint_name(ident)]

    # ------------------------------------------------------------------ read

    def _record(
        self,
        state: ModelState,
        version: Version,
        *,
        changed: bool,
        status: str = "AVAILABLE",
        message: str = "",
    ) -> VersionRecord:
        api = self._vertex()
        deployed_id = state.deployed_id(version)
        resources = {
            "model": api.model_name(state.model, version.version_id),
            "version_id": version.version_id,
            "aliases": ",".join(version.aliases),
        }
        if state.endpoint is not None:
            resources["endpoint"] = state.endpoint.get("name", "")
        if deployed_id:
            resources["deployed_model_id"] = deployed_id
        elif not message:
            message = "registered, not deployed (set-default deploys it again)"
        return VersionRecord(
            model=state.model,
            version=version.version,
            state=status,  # type: ignore[arg-type]
            is_default=version.is_default,
            traffic=state.traffic(version),
            artifact_uri=version.artifact_uri,
            created=version.created,
            changed=changed,
            resources=resources,
            message=message,
        )

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The version's serving-container log lines from Cloud Logging, oldest first.

        ``[]`` when the model, version or deployment is gone or the log cannot be read.
        """
        try:
            state = self._state(model)
        except CloudserveError:
            return []
        found = state.find(version)
        deployed_id = state.deployed_id(found) if found else None
        if deployed_id is None:
            return []
        query = logs.version_filter(self._endpoint_id(model), self.config.region, deployed_id)
        client = self._clients().logging(timeout=self.config.http_timeout_s)
        return logs.last_lines(
            client, self.config.project, query, lines=lines, retries=self.config.api_retries
        )

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Every version, newest first, with aliases, deployed model and traffic share."""
        state = self._state(model)
        return [self._record(state, v, changed=False) for v in state.versions]

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """``endpoints.predict`` with ``{"instances": [...]}`` (and optional ``parameters``).

        A shared Vertex endpoint routes by its trafficSplit and cannot address one deployed
        model, so ``version`` goes to the model's endpoint when that version has 100% of its
        traffic, else to the version's preview endpoint (:mod:`.preview`); NotSupported when
        it has neither. Bodies over 1.5 MB are refused locally. Never resent automatically.
        """
        unknown = sorted(set(payload) - {"instances", "parameters"})
        if not isinstance(payload.get("instances"), list) or unknown:
            raise ConfigError(
                'Vertex AI takes a predict body {"instances": [...]} (row format)'
                + (f"; unsupported keys: {', '.join(unknown)}" if unknown else ""),
                hint="send one instance per example; Vertex serves the serving_default signature",
                provider=PROVIDER,
            )
        body = {k: payload[k] for k in ("instances", "parameters") if k in payload}
        size = len(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        core_preflight.raise_on_errors(gcp_preflight.check_payload(size))
        endpoint_id = self._endpoint_id(model)
        if version is not None:
            state = self._state(model)
            target = self._version(state, version)
            if state.traffic(target) != 100:
                found = preview.read(self._vertex(), endpoint_id, version)
                if found is None or preview.deployed_id(found[1], target.version_id) is None:
                    raise NotSupported(
                        f"Vertex AI routes predictions by traffic split and {model} v{version} "
                        "has no preview endpoint, so a request cannot be sent to it alone",
                        hint="re-run its deploy with targets.gcp.preview_endpoints: true (and an "
                        "endpoint_id that starts with a letter), make it the default "
                        f"(cloudserve versions set-default {model} {version}), or predict "
                        "without --version",
                        provider=PROVIDER,
                    )
                endpoint_id = found[0]
        return self._vertex().predict(endpoint_id, body)

    # ------------------------------------------------------------------ delete

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Undeploy and delete one version (and its artifacts) or the whole model and endpoint.

        Idempotent; deleting the last version deletes the model. Refuses (ConfigError) the
        default version while other versions remain.
        """
        deadline = time.monotonic() + self.config.delete_timeout_s
        state = ModelState.read(self._vertex(), model, self._endpoint_id(model))
        if version is None or state is None:
            return self._delete_model(model, state, deadline) if version is None else []
        target = state.find(version)
        if target is None:
            return []
        if len(state.versions) == 1:
            return self._delete_model(model, state, deadline)
        if target.is_default:
            raise ConfigError(
                f"v{version} is the default version of '{model}' and other versions remain",
                hint=f"make another version the default first (cloudserve versions set-default "
                f"{model} VERSION), or delete the whole model",
                provider=PROVIDER,
            )
        api = self._vertex()
        removed = self._remove_preview(model, version, deadline)
        removed += self._undeploy(model, state, [target], deadline)
        self._wait(
            api.delete_version(model, target.version_id), f"delete {model} v{version}", deadline
        )
        removed.append(api.model_name(model, target.version_id))
        prefix = upload.object_prefix(self.config.prefix, model, version)
        return removed + upload.delete_objects(self._bucket(), prefix)

    def _undeploy(
        self, model: str, state: ModelState, versions: list[Version], deadline: float
    ) -> list[str]:
        """Undeploy ``versions``, moving any traffic they carry to the default first."""
        api = self._vertex()
        endpoint_id = self._endpoint_id(model)
        removed = []
        gone = {state.deployed_id(v) for v in versions} - {None}
        split = {k: v for k, v in state.traffic_split.items() if k not in gone}
        if gone & set(state.traffic_split):
            default_id = state.deployed_id(state.default) if state.default else None
            if split and default_id in split:
                split[default_id] += 100 - sum(split.values())
            else:
                split = {}
            api.patch_endpoint(endpoint_id, {"trafficSplit": split}, ["trafficSplit"])
        for version in versions:
            deployed_id = state.deployed_id(version)
            if deployed_id is None:
                continue
            self.progress.status(f"undeploying {model} v{version.version}")
            self._wait(
                api.undeploy_model(endpoint_id, deployed_id, {}),
                f"undeploy {model} v{version.version}",
                deadline,
            )
            removed.append(f"{api.endpoint_name(endpoint_id)}/deployedModels/{deployed_id}")
        return removed

    def _delete_model(self, model: str, state: ModelState | None, deadline: float) -> list[str]:
        api = self._vertex()
        endpoint_id = self._endpoint_id(model)
        removed: list[str] = []
        endpoint = state.endpoint if state else api.get_endpoint(endpoint_id)
        if state is not None:
            for version in state.versions:
                removed += self._remove_preview(model, version.version, deadline)
            removed += self._undeploy(model, state, state.versions, deadline)
        if endpoint is not None and endpoint.get("labels", {}).get(LABEL_MANAGED) == MANAGED_BY:
            remaining = api.get_endpoint(endpoint_id)
            if remaining is not None and not remaining.get("deployedModels"):
                self._wait(
                    api.delete_endpoint(endpoint_id), f"delete endpoint {endpoint_id}", deadline
                )
                removed.append(api.endpoint_name(endpoint_id))
        if state is not None:
            self._wait(api.delete_model(model), f"delete model {model}", deadline)
            removed.append(api.model_name(model))
        prefix = upload.object_prefix(self.config.prefix, model)
        return removed + upload.delete_objects(self._bucket(), prefix)
