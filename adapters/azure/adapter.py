"""The ``azure`` target: TensorFlow SavedModels served by Azure ML managed online endpoints.

How cloudserve's verbs map onto Azure Machine Learning (azure-ai-ml's ARM REST surface):

* the export is uploaded to the workspace's default datastore (blob) in the TF Serving layout
  (:mod:`cloudserve_adapters.azure.upload`) and registered as model version ``<model>:N``
  (``custom_model``), tagged with its content digest and serving image;
* one managed online endpoint per model (key auth; name = ``endpoint_name`` or the model);
  each version is a deployment ``vN`` running the cloudserve runtime image from the user's
  ACR with Azure's custom-container contract (liveness/readiness/scoring routes on the TF
  Serving REST port, the model mounted under ``/var/azureml-app/azureml-models``);
* the *default version* is endpoint traffic ``{vN: 100}``; a canary is a split; past
  defaults are kept in the endpoint tag ``cloudserve-defaults`` for ``rollback``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar

from cloudserve import limits
from cloudserve import preflight as core_preflight
from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import (
    CloudserveError,
    ConfigError,
    CredentialsError,
    NotFound,
    ProviderError,
)
from cloudserve.file_hashes import FileHashes
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord
from cloudserve.waiting import Backoff, resumable
from cloudserve_adapters.azure import preflight as az_preflight
from cloudserve_adapters.azure import upload
from cloudserve_adapters.azure.config import AzureConfig, ProbeConfig
from cloudserve_adapters.azure.preflight import deployment_name, version_of
from cloudserve_adapters.azure.sdk import PROVIDER, AzureClients, call
from cloudserve_adapters.azure.state import (
    TAG_DIGEST,
    TAG_HISTORY,
    TAG_IMAGE,
    TAG_MODEL,
    TAG_VERSION,
    ModelState,
)
from cloudserve_adapters.azure.workspace import WorkspaceApi

MODEL_TYPE = "custom_model"
STATES = {
    "Succeeded": "AVAILABLE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "Scaling": "UPDATING",
    "Failed": "FAILED",
    "Canceled": "FAILED",
    "Deleting": "DELETING",
}
#: what the endpoint's scoring front end means by its own status codes (clouds.md §C1)
SCORING_ERRORS = {
    404: "no deployment receives traffic",
    408: "the model took longer than request_timeout_ms",
    424: "the serving container answered with an error",
    429: "too many requests in flight (2 x max_concurrent_requests_per_instance x instances)",
}


def _iso_seconds(seconds: float) -> str:
    return f"PT{seconds:g}S"


def _probe(probe: ProbeConfig) -> dict[str, Any]:
    return {
        "initialDelay": _iso_seconds(probe.initial_delay_s),
        "period": _iso_seconds(probe.period_s),
        "timeout": _iso_seconds(probe.timeout_s),
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


class AzureMLAdapter(Adapter):
    """Deploys to Azure ML managed online endpoints; see the module docstring for the mapping.

    Args:
        config: an :class:`AzureConfig`.
        clients: an :class:`~cloudserve_adapters.azure.sdk.AzureClients`; None builds one with
            ``DefaultAzureCredential`` on first use.
        progress: where uploads and operation waits report.
    """

    name: ClassVar[str] = "azure"
    config_class = AzureConfig
    extra: ClassVar[str | None] = "azure"
    features = frozenset(
        {Feature.GPU, Feature.TRAFFIC_SPLIT, Feature.MODEL_REGISTRY, Feature.CUSTOM_IMAGE}
    )
    config: AzureConfig

    def __init__(
        self,
        config: AzureConfig,
        *,
        clients: AzureClients | None = None,
        progress: Progress | None = None,
    ):
        super().__init__(config, clients=clients, progress=progress)
        self._api: WorkspaceApi | None = None
        self._hashes = FileHashes()  # shared by plan and deploy: each file hashed once

    # ------------------------------------------------------------------ seams

    def _clients(self) -> AzureClients:
        if self.clients is None:
            self.clients = AzureClients()
        return self.clients

    def _ws(self) -> WorkspaceApi:
        if self._api is None:
            client = self._clients().arm(
                self.config.subscription_id, timeout=self.config.http_timeout_s
            )
            self._api = WorkspaceApi(
                client,
                self.config.resource_group,
                self.config.workspace,
                progress=self.progress,
                backoff=Backoff(self.config.poll_initial_s, self.config.poll_max_s),
            )
        return self._api

    def _endpoint(self, model: str) -> str:
        return self.config.endpoint_for(model)

    def _state(self, model: str) -> ModelState:
        return ModelState.read(self._ws(), model, self._endpoint(model))

    def _existing(self, model: str) -> ModelState:
        state = self._state(model)
        if not state.exists:
            raise NotFound(
                f"model '{model}' does not exist in Azure ML workspace {self.config.workspace}",
                hint="deploy it first: cloudserve deploy",
                provider=PROVIDER,
            )
        return state

    def _arm_id(self, kind: str, name: str, version: str) -> str:
        c = self.config
        return (
            f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{c.workspace}/{kind}/{name}/"
            f"versions/{version}"
        )

    def _datastore_uri(self, path: str) -> str:
        c = self.config
        return (
            f"azureml://subscriptions/{c.subscription_id}/resourcegroups/{c.resource_group}/"
            f"workspaces/{c.workspace}/datastores/{c.datastore}/paths/{path}"
        )

    def _container(self) -> tuple[Any, str]:
        """The datastore's blob container client and its display URL."""
        ws = self._ws()
        store = ws.datastore(self.config.datastore)["properties"]
        if store.get("datastoreType") != "AzureBlob":
            raise ConfigError(
                f"datastore {self.config.datastore} is {store.get('datastoreType')}, not Azure "
                "Blob",
                hint="set targets.azure.datastore to a blob datastore (workspaceblobstore)",
                provider=PROVIDER,
            )
        key = ws.datastore_key(self.config.datastore)
        container = self._clients().container(
            store["accountName"],
            store["containerName"],
            key,
            protocol=store.get("protocol") or "https",
            suffix=store.get("endpoint") or "core.windows.net",
        )
        return container, f"{store['accountName']}/{store['containerName']}"

    # ------------------------------------------------------------------ checks

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Azure ML rules (:mod:`cloudserve_adapters.azure.preflight`); no network."""
        return az_preflight.run(spec, export, self.config)

    def instance_memory_mb(self) -> int | None:
        """Memory of the configured SKU (limits table); None when not listed."""
        return limits.limit(PROVIDER, "sku_memory_mb").get(self.config.instance_type)

    def _image(self, export: ExportInfo) -> str:
        image = az_preflight.serving_image(self.config, export)
        if image is None:  # check_image reports it as an error finding, with the push command
            core_preflight.raise_on_errors(az_preflight.check_image(export, self.config))
        return str(image)

    def _refuse_other_content(self, spec: DeploySpec, registered: dict, digest: str) -> None:
        stored = ModelState.tag(registered, TAG_DIGEST)
        if stored != digest:
            raise ConfigError(
                f"version {spec.version} of '{spec.model}' is already registered with different "
                f"content (digest {stored or 'unknown'}, this export {digest})",
                hint="deploy it as a new version number; versions are immutable",
                provider=PROVIDER,
            )

    def _refuse_foreign_endpoint(self, model: str, state: ModelState) -> None:
        owner = state.tags.get(TAG_MODEL)
        if state.endpoint is not None and owner != model:
            raise ConfigError(
                f"endpoint '{state.endpoint_name}' exists but does not serve model '{model}' "
                f"(cloudserve-model tag: {owner or 'none'})",
                hint="set targets.azure.endpoint_name to a new name (endpoint names are unique "
                "in the region)",
                provider=PROVIDER,
            )

    @staticmethod
    def _refuse_full_endpoint(spec: DeploySpec, state: ModelState) -> None:
        ceiling = limits.limit(PROVIDER, "deployments_per_endpoint")
        if state.deployment(spec.version) is None and len(state.deployments) >= ceiling:
            raise ConfigError(
                f"endpoint '{state.endpoint_name}' already has {len(state.deployments)} "
                f"deployments; Azure allows {ceiling} per endpoint",
                hint="delete versions you no longer need (cloudserve delete --version N) or "
                "lower keep_previous",
                provider=PROVIDER,
            )

    # ------------------------------------------------------------------ plan

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What :meth:`deploy` would do, from reads of the workspace and datastore."""
        state = self._state(spec.model)
        digest = upload.export_digest(export, self._hashes)
        registered = state.version(spec.version)
        actions: list[PlanAction] = []
        if registered is not None:
            self._refuse_other_content(spec, registered, digest)
            actions.append(
                PlanAction("skip", "azureml-model-version", f"{spec.model}:{spec.version}")
            )
        else:
            container, where = self._container()
            files = upload.blob_names(export, self.config.prefix, spec.model, spec.version)
            to_upload, to_skip = upload.pending(
                container,
                files,
                upload.version_prefix(self.config.prefix, spec.model, spec.version),
                self._hashes,
            )
            actions += [PlanAction("upload", "blob", f"{where}/{n}") for n in to_upload]
            actions += [PlanAction("skip", "blob", f"{where}/{n}", "same content") for n in to_skip]
            actions.append(
                PlanAction("create", "azureml-model-version", f"{spec.model}:{spec.version}")
            )
        if state.endpoint is None:
            actions.append(
                PlanAction("create", "azureml-online-endpoint", state.endpoint_name, "key auth")
            )
        name = deployment_name(spec.version)
        if state.deployment_state(spec.version) == "Succeeded":
            actions.append(PlanAction("skip", "azureml-online-deployment", name, "deployed"))
        else:
            actions.append(
                PlanAction(
                    "create",
                    "azureml-online-deployment",
                    f"{state.endpoint_name}/{name}",
                    f"{self.config.instance_count} x {self.config.instance_type}",
                )
            )
        if spec.traffic is not None:
            actions.append(PlanAction("route", "azureml-traffic", name, str(spec.traffic)))
        elif (state.default is None or spec.set_default) and state.default != spec.version:
            actions.append(PlanAction("route", "azureml-traffic", name, "100%"))
        return Plan(
            target=self.name, model=spec.model, version=spec.version, actions=tuple(actions)
        )

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload and register the version, deploy it as ``v<N>``; see the base class.

        The first version gets 100 % of the traffic; a later one none unless
        ``spec.set_default`` or ``spec.traffic`` (a canary split). With ``wait=False`` it
        returns once the deployment operation has started (state CREATING), moving no traffic.
        A failed deployment leaves the traffic, and so the previous default, as it was
        (:func:`cloudserve.deploy.deploy` adds the container's last log lines to the error).
        """
        self.ensure_deployable(spec, export)
        deadline = time.monotonic() + timeout
        ws = self._ws()
        digest = upload.export_digest(export, self._hashes)
        state = self._state(spec.model)
        self._refuse_foreign_endpoint(spec.model, state)
        registered = state.version(spec.version)
        if registered is not None:
            self._refuse_other_content(spec, registered, digest)
        if registered is not None and state.deployment_state(spec.version) == "Succeeded":
            return self._redeploy_in_place(spec, state, deadline)
        self._refuse_full_endpoint(spec, state)
        if registered is None:
            registered = self._register(spec, export, digest)
        if state.endpoint is None:
            self._create_endpoint(spec.model, deadline)
        operation = self._start_deployment(spec.model, registered)
        if not wait:
            return self._record(
                self._state(spec.model),
                spec.version,
                changed=True,
                status="CREATING",
                message="deployment started; not waited for (set the default once it serves)",
            )
        previous = state.default
        try:
            ws.wait(operation, deadline)
        except ProviderError as e:
            serving = (
                f"the previous default v{previous} keeps serving"
                if previous
                else "no traffic was routed to it"
            )
            raise ProviderError(
                f"{e.message}; {serving}",
                hint="raise targets.azure.liveness_probe.initial_delay_s or pick a bigger "
                "instance_type if the container starts slowly; re-run deploy when fixed",
                provider=PROVIDER,
            ) from e
        state = self._state(spec.model)
        if spec.traffic is not None:
            self._route(state, self._split(spec, state), deadline)
        elif spec.set_default or state.default is None:
            return self._make_default(spec.model, spec.version, deadline, changed=True)
        self._prune(spec.model, deadline)
        return self._record(self._state(spec.model), spec.version, changed=True)

    def _redeploy_in_place(
        self, spec: DeploySpec, state: ModelState, deadline: float
    ) -> VersionRecord:
        """Registered and deployed already: apply only a default or split request."""
        if spec.set_default:
            return self._make_default(spec.model, spec.version, deadline)
        if spec.traffic is not None:
            split = self._split(spec, state)
            if split != state.traffic:
                self._route(state, split, deadline)
                return self._record(self._state(spec.model), spec.version, changed=True)
        return self._record(state, spec.version, changed=False, message="already deployed")

    def _register(self, spec: DeploySpec, export: ExportInfo, digest: str) -> dict[str, Any]:
        """Upload what is missing to the datastore and register the model version."""
        image = self._image(export)
        container, where = self._container()
        files = upload.blob_names(export, self.config.prefix, spec.model, spec.version)
        folder = upload.model_folder(self.config.prefix, spec.model, spec.version)
        self.progress.status(f"uploading {spec.model} v{spec.version} to {where}/{folder}")
        with resumable(f"uploading {spec.model} v{spec.version}", provider=PROVIDER):
            upload.upload_export(
                container,
                files,
                folder,
                label=f"{where}/{folder}",
                progress=self.progress,
                hashes=self._hashes,
            )
        body = {
            "properties": {
                "modelType": MODEL_TYPE,
                "modelUri": self._datastore_uri(folder),
                "description": f"cloudserve: {spec.model} version {spec.version}",
                "tags": {
                    **self.config.tags,
                    **spec.tags,
                    TAG_DIGEST: digest,
                    TAG_IMAGE: image,
                    TAG_VERSION: spec.version,
                },
            }
        }
        self.progress.status(f"registering model {spec.model}:{spec.version}")
        return self._ws().put_model_version(spec.model, spec.version, body)

    def _endpoint_body(
        self, model: str, traffic: dict[str, int], tags: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "location": self._ws().location(),
            "tags": {**self.config.tags, **tags, TAG_MODEL: model},
            "properties": {
                "authMode": "Key",
                "description": f"cloudserve endpoint of model {model}",
                "traffic": traffic,
            },
        }

    def _create_endpoint(self, model: str, deadline: float) -> None:
        name = self._endpoint(model)
        self.progress.status(f"creating endpoint {name}")
        ws = self._ws()
        ws.wait(ws.put_endpoint(name, self._endpoint_body(model, {}, {})), deadline)

    def _environment(self, model: str, image: str) -> str:
        """Create (idempotently) the environment for ``image``; returns its ARM id."""
        port = self.config.container_port
        routes = {
            "livenessRoute": {"port": port, "path": f"/v1/models/{model}"},
            "readinessRoute": {"port": port, "path": f"/v1/models/{model}"},
            "scoringRoute": {"port": port, "path": f"/v1/models/{model}:predict"},
        }
        version = hashlib.sha256(f"{image}|{port}|{model}".encode()).hexdigest()[:16]
        name = f"cloudserve-{model}"
        body = {
            "properties": {
                "image": image,
                "osType": "Linux",
                "inferenceConfig": routes,
                "description": "cloudserve runtime (TF Serving REST API)",
            }
        }
        self._ws().put_environment(name, version, body)
        return self._arm_id("environments", name, version)

    def _start_deployment(self, model: str, registered: dict[str, Any]) -> Any:
        version = registered["name"]
        image = ModelState.tag(registered, TAG_IMAGE)
        if not image:
            raise ProviderError(
                f"model version {model}:{version} has no {TAG_IMAGE} tag",
                hint="delete the version and deploy it again",
                provider=PROVIDER,
            )
        c = self.config
        mount = limits.limit(PROVIDER, "model_mount_dir")
        body = {
            "location": self._ws().location(),
            "tags": {**c.tags, TAG_VERSION: version},
            "sku": {"name": "Default", "capacity": c.instance_count},
            "properties": {
                "endpointComputeType": "Managed",
                "description": f"cloudserve: {model} version {version}",
                "model": self._arm_id("models", model, version),
                "environmentId": self._environment(model, image),
                "environmentVariables": {
                    "MODEL_BASE_PATH": f"{mount}/{model}/{version}",
                    "MODEL_NAME": model,
                },
                "instanceType": c.instance_type,
                "appInsightsEnabled": False,
                "requestSettings": {
                    "requestTimeout": _iso_seconds(c.request.request_timeout_ms / 1000),
                    "maxConcurrentRequestsPerInstance": (
                        c.request.max_concurrent_requests_per_instance
                    ),
                },
                "livenessProbe": _probe(c.liveness_probe),
                "readinessProbe": _probe(c.readiness_probe),
            },
        }
        name = deployment_name(version)
        self.progress.status(
            f"deploying {model} v{version} as {name} ({c.instance_count} x {c.instance_type})"
        )
        return self._ws().put_deployment(self._endpoint(model), name, body)

    # ------------------------------------------------------------------ traffic

    def _split(self, spec: DeploySpec, state: ModelState) -> dict[str, int]:
        """``spec.traffic`` (version -> percent) as deployment -> percent."""
        split: dict[str, int] = {}
        for version, percent in (spec.traffic or {}).items():
            if state.deployment_state(version) != "Succeeded":
                raise ConfigError(
                    f"traffic names version {version}, which is not deployed",
                    hint="split traffic only between deployed versions (cloudserve versions list)",
                    provider=PROVIDER,
                )
            if percent:
                split[deployment_name(version)] = percent
        return split

    def _route(
        self,
        state: ModelState,
        traffic: dict[str, int],
        deadline: float,
        history: list[str] | None = None,
    ) -> None:
        """Set the endpoint's traffic (one endpoint update) and, when given, the history."""
        tags = dict(state.tags)
        if history is not None:
            tags[TAG_HISTORY] = ",".join(history)
        self.progress.status(f"routing {state.endpoint_name}: {traffic or 'no traffic'}")
        ws = self._ws()
        body = self._endpoint_body(state.model, traffic, tags)
        ws.wait(ws.put_endpoint(state.endpoint_name, body), deadline)

    def _make_default(
        self,
        model: str,
        version: str,
        deadline: float,
        *,
        history: list[str] | None = None,
        changed: bool = False,
    ) -> VersionRecord:
        """Give ``version`` 100 % of the traffic and record it in the default history.

        Deploys the version again first when its deployment was pruned. Traffic moves in one
        endpoint update, so a failure before it leaves the previous default serving.
        """
        state = self._existing(model)
        registered = state.version(version)
        if registered is None:
            known = ", ".join(state.version_names()) or "none"
            raise NotFound(
                f"model '{model}' has no version '{version}' (versions: {known})",
                provider=PROVIDER,
            )
        if state.endpoint is None:
            self._create_endpoint(model, deadline)
            state = self._state(model)
        if state.deployment_state(version) != "Succeeded":
            self._ws().wait(self._start_deployment(model, registered), deadline)
            state = self._state(model)
            changed = True
        past = state.history or ([state.default] if state.default else [])
        if history is None:
            history = past if past and past[-1] == version else [*past, version]
        split = {deployment_name(version): 100}
        if state.traffic != split or past != history:
            self._route(state, split, deadline, history)
            changed = True
        self._prune(model, deadline)
        return self._record(self._state(model), version, changed=changed)

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make ``version`` the default (traffic ``{v<N>: 100}``); see the base class."""
        return self._make_default(model, version, time.monotonic() + timeout)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make the previous default (per the endpoint's history tag) the default again."""
        state = self._existing(model)
        current = state.default
        history = state.history or ([current] if current else [])
        while history and (history[-1] == current or state.version(history[-1]) is None):
            history.pop()
        if not history:
            raise NotFound(
                f"model '{model}' has no earlier default version to roll back to",
                provider=PROVIDER,
            )
        return self._make_default(model, history[-1], time.monotonic() + timeout, history=history)

    def _prune(self, model: str, deadline: float) -> list[str]:
        """Delete deployments nobody can reach: no traffic, not default, not kept for rollback.

        Kept: the default, anything with traffic, anything newer than the default (waiting to
        be promoted), and the ``keep_previous`` most recent earlier defaults.
        """
        state = self._state(model)
        default = state.default
        if default is None:
            return []
        earlier = list(dict.fromkeys(v for v in reversed(state.history) if v != default))
        keep = {default, *earlier[: self.config.keep_previous]}
        removed = []
        for name in list(state.deployments):
            version = version_of(name)
            newer = version.isdigit() and default.isdigit() and int(version) > int(default)
            if version in keep or state.traffic_of(version) > 0 or newer:
                continue
            self.progress.status(f"deleting deployment {name} (no traffic)")
            ws = self._ws()
            ws.wait(ws.delete_deployment(state.endpoint_name, name), deadline)
            removed.append(f"{state.endpoint_name}/{name}")
        return removed

    # ------------------------------------------------------------------ read

    def _record(
        self,
        state: ModelState,
        version: str,
        *,
        changed: bool,
        status: str | None = None,
        message: str = "",
    ) -> VersionRecord:
        registered = state.version(version) or {}
        props = registered.get("properties", {})
        deployment = state.deployment(version)
        provisioning = state.deployment_state(version)
        resources = {"model": f"{state.model}:{version}", "endpoint": state.endpoint_name}
        if deployment is not None:
            resources["deployment"] = deployment_name(version)
        elif not message:
            message = "registered, not deployed (set-default deploys it again)"
        return VersionRecord(
            model=state.model,
            version=version,
            state=status or STATES.get(provisioning or "Succeeded", "UNKNOWN"),  # type: ignore[arg-type]
            is_default=state.default == version,
            traffic=state.traffic_of(version),
            artifact_uri=str(props.get("modelUri", "")),
            created=(registered.get("systemData") or {}).get("createdAt"),
            changed=changed,
            resources=resources,
            message=message,
        )

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Every registered version, newest first, with its deployment and traffic share."""
        state = self._existing(model)
        return [self._record(state, v, changed=False) for v in state.version_names()]

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The last ``lines`` lines of deployment ``v<version>``'s serving container
        (``getLogs``); [] when they cannot be read."""
        try:
            text = self._ws().logs(self._endpoint(model), deployment_name(version), lines)
        except CloudserveError:
            return []
        return text.splitlines()[-lines:]

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """POST the TF Serving body to the endpoint's scoring URI with its key.

        ``version`` adds the ``azureml-model-deployment: v<N>`` header, which routes to that
        deployment whatever the traffic split. Bodies over Azure's request limits are refused
        locally (PreflightError).
        """
        if not isinstance(payload, dict) or not ({"instances", "inputs"} & set(payload)):
            raise ConfigError(
                'a TF Serving predict body needs "instances" (row format) or "inputs" '
                "(columnar format)",
                provider=PROVIDER,
            )
        core_preflight.raise_on_errors(
            az_preflight.check_payload(az_preflight.body_size(payload), self.config)
        )
        ws = self._ws()
        name = self._endpoint(model)
        endpoint = ws.endpoint(name)
        if endpoint is None or endpoint.get("tags", {}).get(TAG_MODEL) != model:
            raise NotFound(
                f"model '{model}' has no endpoint '{name}' in workspace {self.config.workspace}",
                hint="deploy it first: cloudserve deploy",
                provider=PROVIDER,
            )
        headers = {"Authorization": f"Bearer {ws.endpoint_key(name)}"}
        if version is not None:
            if ws.deployment(name, deployment_name(version)) is None:
                raise NotFound(
                    f"model '{model}' has no deployment for version {version}",
                    hint="cloudserve versions list shows the deployed versions",
                    provider=PROVIDER,
                )
            headers["azureml-model-deployment"] = deployment_name(version)
        uri = endpoint.get("properties", {}).get("scoringUri")
        http = self._clients().http(timeout=self.config.http_timeout_s)
        response = call(f"predict {model}", lambda: http.post(uri, json=payload, headers=headers))
        return self._scoring_result(model, response)

    @staticmethod
    def _scoring_result(model: str, response: Any) -> dict[str, Any]:
        if response.status_code == 200:
            return response.json()
        detail = response.text[:300]
        if response.status_code in (401, 403):
            raise CredentialsError(
                f"predict {model}: the endpoint rejected its key ({response.status_code})",
                hint="the endpoint's keys may have been regenerated; re-run to fetch them",
                provider=PROVIDER,
            )
        reason = SCORING_ERRORS.get(response.status_code, "the scoring request failed")
        model_status = response.headers.get("ms-azureml-model-error-statuscode")
        if model_status:
            reason += f" (container status {model_status})"
        message = f"predict {model}: {response.status_code} {reason}: {detail}"
        if response.status_code == 404:
            raise NotFound(message, provider=PROVIDER)
        raise ProviderError(message, http_status=response.status_code, provider=PROVIDER)

    # ------------------------------------------------------------------ delete

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Delete one version (deployment, registered version, blobs) or the whole model.

        Idempotent; deleting the last version deletes the model and its endpoint. Refuses
        (ConfigError) the default version while other versions remain. A canary's traffic
        goes back to the default before its deployment is deleted.
        """
        deadline = time.monotonic() + self.config.delete_timeout_s
        state = self._state(model)
        if not state.exists:
            return []
        if version is None:
            return self._delete_model(state, deadline)
        if state.version(version) is None and state.deployment(version) is None:
            return []
        others = [v for v in state.version_names() if v != version]
        if not others:
            return self._delete_model(state, deadline)
        if state.default == version:
            raise ConfigError(
                f"v{version} is the default version of '{model}' and other versions remain",
                hint=f"make another version the default first (cloudserve versions set-default "
                f"{model} VERSION), or delete the whole model",
                provider=PROVIDER,
            )
        ws = self._ws()
        removed: list[str] = []
        name = deployment_name(version)
        if name in state.traffic:
            split = {k: v for k, v in state.traffic.items() if k != name}
            if state.default is not None:
                split[deployment_name(state.default)] = 100 - sum(
                    v for k, v in split.items() if k != deployment_name(state.default)
                )
            self._route(state, split, deadline)
        if state.deployment(version) is not None:
            ws.wait(ws.delete_deployment(state.endpoint_name, name), deadline)
            removed.append(f"{state.endpoint_name}/{name}")
        if state.version(version) is not None:
            ws.delete_model_version(model, version)
            removed.append(f"{model}:{version}")
        container, where = self._container()
        prefix = upload.version_prefix(self.config.prefix, model, version)
        return removed + [f"{where}/{n}" for n in upload.delete_prefix(container, prefix)]

    def _delete_model(self, state: ModelState, deadline: float) -> list[str]:
        ws = self._ws()
        removed: list[str] = []
        if state.endpoint is not None and state.tags.get(TAG_MODEL) == state.model:
            self.progress.status(f"deleting endpoint {state.endpoint_name}")
            ws.wait(ws.delete_endpoint(state.endpoint_name), deadline)
            removed.append(state.endpoint_name)
        for version in state.version_names():
            ws.delete_model_version(state.model, version)
            removed.append(f"{state.model}:{version}")
        if state.versions:
            ws.delete_model(state.model)
            removed.append(state.model)
        container, where = self._container()
        prefix = f"{self.config.prefix.strip('/')}/{state.model}/"
        return removed + [f"{where}/{n}" for n in upload.delete_prefix(container, prefix)]
