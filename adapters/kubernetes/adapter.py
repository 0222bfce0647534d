"""The ``kubernetes`` target: cloudserve's runtime as a Deployment on the user's cluster.

* Versions are uploaded to the model store (S3 or GCS); the pods' runtime mirrors the
  model's base path and hot-loads versions listed in the model config.
* The model config (versions, ``default`` label, batching) is a ConfigMap the pods mount;
  deploy adds a version there and waits until every ready pod serves it; set-default and
  rollback move the ``default`` label and wait until every ready pod has reloaded.
* The Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget are reconciled
  apply-style (:mod:`.apply`): re-running with the same input changes nothing.
* A rollout that stalls fails the deploy with the pod's reason before the ConfigMap is
  touched, so the default keeps serving.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudserve import runtime_images
from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import ConfigError, DeployTimeout, NotFound, ProviderError
from cloudserve.preflight import estimate_memory_mb
from cloudserve.progress import Progress
from cloudserve.records import (
    DeploySpec,
    ExportInfo,
    Finding,
    Plan,
    PlanAction,
    VersionRecord,
)
from cloudserve.waiting import Backoff, Deadline, wait_until
from cloudserve_adapters.kubernetes import manifests, serving
from cloudserve_adapters.kubernetes import preflight as checks
from cloudserve_adapters.kubernetes.apply import apply, planned_patch
from cloudserve_adapters.kubernetes.config import KubernetesConfig
from cloudserve_adapters.kubernetes.manifests import ModelState
from cloudserve_adapters.kubernetes.rollout import Rollout, observe
from cloudserve_adapters.kubernetes.sdk import PROVIDER, KubeClients
from cloudserve_adapters.kubernetes.storage import ModelStore, open_store
from cloudserve_adapters.local.repository import check_names, tree_digest

WAIT_BACKOFF = Backoff(initial_s=0.5, max_s=2.0, factor=1.5)  # pods reload within seconds
#: workload objects in delete order (the Deployment's pods go before their config)
_DELETE_ORDER = ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Deployment")


class KubernetesAdapter(Adapter):
    """Deploys to a Kubernetes cluster through the API server of a kubeconfig context.

    Args:
        config: a :class:`KubernetesConfig`.
        clients: a :class:`KubeClients` (default: built from the config's kubeconfig/context).
        progress: where uploads and rollout waits report.
    """

    name = "kubernetes"
    config_class = KubernetesConfig
    extra = "kubernetes"
    required_signature = None  # the runtime serves any signature by name
    features = frozenset({Feature.AUTOSCALING, Feature.GPU, Feature.CUSTOM_IMAGE})

    def __init__(
        self,
        config: KubernetesConfig,
        *,
        clients: KubeClients | None = None,
        progress: Progress | None = None,
    ):
        clients = clients or KubeClients(kubeconfig=config.kubeconfig, context=config.context)
        super().__init__(config, clients=clients, progress=progress)
        self.config: KubernetesConfig = config
        self.clients: KubeClients = clients

    @property
    def kube(self) -> Any:
        return self.clients.kube

    @property
    def store(self) -> ModelStore:
        return open_store(self.config, self.clients)

    def instance_memory_mb(self) -> int | None:
        """The pod memory limit when set explicitly (else it follows the estimate)."""
        return self.config.memory_mb

    # ------------------------------------------------------------------ checks and plan

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Names, kubeconfig context, replica/HPA bounds, memory request, pinned image."""
        return checks.run(self.config, self.clients, spec, export)

    def image(self, export: ExportInfo) -> str:
        """The runtime image reference, pinned by digest. Raises ConfigError without one."""
        problems = checks.check_image(self.config, export)
        if problems:
            raise ConfigError(problems[0].message, hint=problems[0].fix, provider=PROVIDER)
        if self.config.image:
            return self.config.image
        tf = ".".join(map(str, export.tf_minor)) if export.tf_minor else None
        pushed = runtime_images.find(
            str(self.config.registry), variant=self.config.variant, tf_version=tf
        )
        assert pushed is not None  # check_image found it
        return pushed.reference

    def memory_mb(self, export: ExportInfo) -> int:
        """Memory request/limit of one pod: the setting, else the export's estimate."""
        return self.config.memory_mb or estimate_memory_mb(export)

    def manifests(
        self, spec: DeploySpec, export: ExportInfo, state: ModelState | None = None
    ) -> list[dict[str, Any]]:
        """Every object deploy would apply for ``spec`` (ConfigMap first), as dicts."""
        state = state or self._next_state(self._state_or_none(spec.model), spec, export)
        return [
            manifests.config_map(self.config, spec.model, state),
            *manifests.workload(
                self.config, spec.model, self.image(export), self.memory_mb(export)
            ),
        ]

    def write_manifests(self, spec: DeploySpec, export: ExportInfo, directory: Path) -> list[Path]:
        """Write the manifests as YAML files (one per object) for GitOps; applies nothing.

        Reads the live ConfigMap (so versions already served stay listed) when the cluster
        can be reached through the configured context; otherwise the model starts empty.
        """
        import yaml

        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for index, obj in enumerate(self.manifests(spec, export)):
            path = directory / f"{index:02d}-{obj['kind'].lower()}.yaml"
            path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
            written.append(path)
        return written

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """Upload, ConfigMap and workload changes deploy would make. Writes nothing.

        Raises ConfigError when the namespace does not exist or the version exists with
        other content.

        When ``manifests_dir`` is set, the manifests are also written there as YAML.
        """
        check_names(spec.model, spec.version)
        if spec.traffic:
            self.require(Feature.TRAFFIC_SPLIT)
        self._require_namespace()
        state = self._state_or_none(spec.model)
        version = str(int(spec.version))
        actions: list[PlanAction] = []
        if self._same_content(spec.model, state, version, export):
            actions.append(PlanAction("skip", "model-store", self.store.uri(spec.model, version)))
        else:
            actions.append(
                PlanAction(
                    "upload",
                    "model-store",
                    self.store.uri(spec.model, version),
                    f"{export.total_bytes} bytes",
                )
            )
        wanted = self._next_state(state, spec, export)
        for obj in self.manifests(spec, export, wanted):
            meta = obj["metadata"]
            live = self.kube.get(obj["kind"], meta["namespace"], meta["name"])
            patch = planned_patch(live, obj, create_only=self._create_only(obj))
            verb = "create" if live is None else ("update" if patch else "skip")
            detail = ", ".join(sorted(patch)) if live is not None and patch else ""
            actions.append(
                PlanAction(verb, obj["kind"], f"{meta['namespace']}/{meta['name']}", detail)
            )
        if state is None or state.default != wanted.default:
            actions.append(
                PlanAction(
                    "route",
                    "version-label",
                    f"{spec.model}/default",
                    f"{state.default if state else None} -> {wanted.default}",
                )
            )
        if self.config.manifests_dir:
            self.write_manifests(spec, export, self.config.manifests_dir)
        return Plan(self.name, spec.model, version, tuple(actions))

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload the version, roll out the workload, list the version, maybe move the default.

        Order, so a failure leaves the previous default serving: upload -> apply the
        Deployment/Service/HPA/PDB and wait for the rollout (a stall raises ProviderError with
        the pod's reason; the ConfigMap is untouched) -> add the version to the ConfigMap and
        wait until every ready pod serves it (a version that fails to load is taken out again)
        -> move the ``default`` label when asked (or for the first version).

        Idempotent: the same export as the same version changes nothing (``changed=False``);
        other content under an existing version raises ConfigError before any upload. With
        ``wait`` false only a changed Deployment and a default move are waited for (the record
        then says CREATING). Raises DeployTimeout after ``timeout`` seconds.
        """
        self.ensure_deployable(spec, export)
        if spec.traffic:
            self.require(Feature.TRAFFIC_SPLIT)
        model, version = spec.model, str(int(spec.version))
        clock = Deadline(timeout, floor_s=0.5)
        self._require_namespace()
        state = self._state_or_none(model)
        image, memory = self.image(export), self.memory_mb(export)
        same = self._same_content(model, state, version, export)
        changed = False
        if not same:
            self.progress.status(f"uploading {export.path} to {self.store.uri(model, version)}")
            self.store.upload(export, model, version, self.progress)
            changed = True
        wanted = self._next_state(state, spec, export)
        if state is None:  # pods need their config before they start
            self._write_state(model, dataclasses.replace(wanted, default=version))
            changed = True
        rolled = False
        for obj in manifests.workload(self.config, model, image, memory):
            _, did = apply(self.kube, obj, create_only=self._create_only(obj))
            rolled |= did and obj["kind"] == "Deployment"
            changed |= did
        moving = state is not None and wanted.default != state.default
        if wait or rolled:  # a changed Deployment is always watched until it completes
            self.wait_rollout(model, clock.remaining())
        if state is not None and version not in state.versions:
            listed = dataclasses.replace(wanted, default=state.default, history=state.history)
            self._write_state(model, listed)
            changed = True
            if wait or moving:
                try:
                    self._wait_serving(model, version, clock)
                except ProviderError:
                    self._write_state(model, state)  # take the broken version out again
                    raise
        elif wait or moving:
            self._wait_serving(model, version, clock)
        if moving:
            self._move_default(model, version, clock, remember=True)
            changed = True
        return self._record(model, version, changed=changed)

    def wait_rollout(self, model: str, timeout: float) -> Rollout:
        """Block until the Deployment's rollout completes; report progress on the way.

        Raises:
            ProviderError: the rollout stalled (ProgressDeadlineExceeded, image pull error,
                crash loop, failing probe), with the pod's reason and its last log lines.
            DeployTimeout: not complete after ``timeout`` seconds.
        """
        name, ns = manifests.resource_name(model), self.config.namespace

        def poll() -> Rollout:
            deployment = self.kube.get("Deployment", ns, name)
            if deployment is None:
                raise NotFound(f"Deployment {ns}/{name} is gone", provider=PROVIDER)
            pods = self.kube.list("Pod", ns, manifests.selector(model))
            return observe(deployment, pods)

        state = wait_until(
            poll,
            settled=lambda r: r.complete or r.stalled,
            label=f"rollout of deployment/{name}",
            timeout=timeout,
            progress=self.progress,
            describe=Rollout.describe,
            backoff=WAIT_BACKOFF,
            provider=PROVIDER,
            timeout_hint=f"see `kubectl -n {ns} describe deployment {name}`; the previous "
            "default keeps serving",
        )
        if state.stalled and not state.complete:
            reason = state.pod_problem or f"{state.progressing}: {state.progressing_message}"
            logs = self._pod_logs(model, 20)
            raise ProviderError(
                f"the rollout of deployment/{name} stalled: {reason}"
                + ("\nlast log lines:\n" + "\n".join(logs) if logs else ""),
                hint="fix the image or settings and deploy again; the previous default keeps "
                f"serving (kubectl -n {ns} rollout undo deployment/{name} reverts the pods)",
                provider=PROVIDER,
            )
        return state

    # ------------------------------------------------------------------ default version

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Point the ConfigMap's ``default`` label at ``version``; wait until every pod has it.

        Idempotent. Raises NotFound for an unknown model or version; when the pods do not
        reload in time the label goes back and the previous default keeps serving.
        """
        check_names(model, version)
        version = str(int(version))
        state = self._state(model)
        if version not in state.versions:
            raise NotFound(
                f"model '{model}' has no version {version}",
                hint=f"its versions: {', '.join(map(str, state.numbers()))}",
                provider=PROVIDER,
            )
        clock = Deadline(timeout, floor_s=0.5)
        self._wait_serving(model, version, clock)
        changed = state.default != version
        if changed:
            self._move_default(model, version, clock, remember=True)
        return self._record(model, version, changed=changed)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make the previous default the default again (deleted versions are skipped).

        Raises NotFound when there is no earlier default.
        """
        check_names(model)
        state = self._state(model)
        history = [v for v in state.history if v in state.versions and v != state.default]
        if not history:
            raise NotFound(
                f"model '{model}' has no earlier default version to roll back to",
                provider=PROVIDER,
            )
        version = history[-1]
        clock = Deadline(timeout, floor_s=0.5)
        self._wait_serving(model, version, clock)
        self._move_default(model, version, clock, remember=False)
        return self._record(model, version, changed=True)

    def _move_default(self, model: str, version: str, clock: Deadline, *, remember: bool) -> None:
        """Move the label and wait for every ready pod; put it back on failure."""
        before = self._state(model)
        history = list(before.history)
        if remember and before.default is not None:
            history.append(before.default)
        elif not remember and history and history[-1] == version:
            history.pop()
        moved = dataclasses.replace(before, default=version, history=tuple(history))
        self._write_state(model, moved)
        try:
            wait_until(
                lambda: serving.views(self.kube, self.config.namespace, model),
                settled=lambda found: serving.all_default(found, version),
                label=f"pods of '{model}' reloading the default",
                timeout=clock.remaining(),
                progress=self.progress,
                describe=lambda found: (
                    f"{sum(v.default == version for v in found)}/"
                    f"{len(found)} ready pods route to version {version}"
                ),
                backoff=WAIT_BACKOFF,
                provider=PROVIDER,
            )
        except DeployTimeout as e:
            self._write_state(model, before)
            raise ProviderError(
                f"version {version} of '{model}' did not become the default "
                f"(version {before.default} keeps serving): {e.message}",
                hint="check `cloudserve versions` and the pods' logs",
                provider=PROVIDER,
            ) from e

    # ------------------------------------------------------------------ reading

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Versions listed in the model's ConfigMap, newest first; states from the pods.

        Raises NotFound when the model has no ConfigMap.
        """
        check_names(model)
        state = self._state(model)
        found = serving.views(self.kube, self.config.namespace, model)
        return [
            self._record(model, str(n), state=state, found=found)
            for n in sorted(state.numbers(), reverse=True)
        ]

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """POST a TF Serving predict body to the model's Service.

        Through ``predict_url`` when set (an Ingress or LoadBalancer address), else through
        the API server's service proxy (RBAC ``create`` on ``services/proxy``). Raises
        ProviderError with the runtime's error text for a non-200 answer.
        """
        import json

        check_names(model, version)
        path = f"v1/models/{model}" + (f"/versions/{int(version)}" if version else "") + ":predict"
        if self.config.predict_url:
            import httpx

            try:
                response = httpx.post(
                    f"{self.config.predict_url.rstrip('/')}/{path}", json=payload, timeout=60
                )
            except httpx.HTTPError as e:
                raise ProviderError(
                    f"cannot reach {self.config.predict_url}: {e}", provider=PROVIDER
                ) from e
            status, body = response.status_code, response.content
        else:
            status, body = self.kube.proxy(
                "Service",
                self.config.namespace,
                manifests.resource_name(model),
                "http",
                path,
                method="POST",
                body=payload,
                timeout=60,
            )
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {"error": body.decode("utf-8", "replace")[:300]}
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else data
            if status == 404 and version is None and self._state_or_none(model) is None:
                raise NotFound(f"no model '{model}' on the kubernetes target", provider=PROVIDER)
            raise ProviderError(
                f"predict on '{model}' failed ({status}): {error}",
                http_status=status,
                provider=PROVIDER,
            )
        return data

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The last ``lines`` log lines of the model's runtime pods (one pod's when healthy)."""
        try:
            return self._pod_logs(model, lines)
        except Exception:  # logs are best effort: never hide the real error
            return []

    def _pod_logs(self, model: str, lines: int) -> list[str]:
        ns = self.config.namespace
        pods = self.kube.list("Pod", ns, manifests.selector(model))
        out: list[str] = []
        for pod in pods[:2]:
            name = pod["metadata"]["name"]
            text = self.kube.pod_log(ns, name, manifests.CONTAINER, lines)
            out += [f"[{name}] {line}" for line in text.splitlines()[-lines:]]
        return out[-lines:]

    # ------------------------------------------------------------------ delete

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Remove one version (ConfigMap entry, then its objects in the store) or everything.

        Idempotent (``[]`` when already gone). Refuses (ConfigError) to delete the default
        while other versions remain; deleting the last version deletes the model.
        """
        check_names(model, version)
        ns = self.config.namespace
        state = self._state_or_none(model)
        if version is not None and state is not None:
            version = str(int(version))
            if version not in state.versions:
                return []
            others = [v for v in state.versions if v != version]
            if others and state.default == version:
                raise ConfigError(
                    f"version {version} is the default of '{model}'",
                    hint="set another default first (cloudserve versions set-default)",
                    provider=PROVIDER,
                )
            if others:
                versions = {k: v for k, v in state.versions.items() if k != version}
                remaining = dataclasses.replace(state, versions=versions)
                self._write_state(model, remaining)
                wait_until(
                    lambda: serving.views(self.kube, ns, model),
                    settled=lambda found: serving.all_dropped(found, version),
                    label=f"pods of '{model}' unloading version {version}",
                    timeout=120,
                    progress=self.progress,
                    describe=lambda found: f"{len(found)} ready pods checked",
                    backoff=WAIT_BACKOFF,
                    provider=PROVIDER,
                )
                return [f"version {version}", *self.store.delete(model, version)]
        if version is not None and state is None:
            return []
        name = manifests.resource_name(model)
        removed = [
            f"{kind}/{name}"
            for kind in (*_DELETE_ORDER, "ConfigMap")
            if self.kube.delete(kind, ns, name)
        ]
        return removed + self.store.delete(model)

    # ------------------------------------------------------------------ state

    def _require_namespace(self) -> None:
        """ConfigError (before any upload) when the target namespace does not exist."""
        namespace = self.config.namespace
        if not self.kube.namespace_exists(namespace):
            raise ConfigError(
                f"namespace '{namespace}' does not exist on the cluster",
                hint=f"create it (kubectl create namespace {namespace}) or set "
                "targets.kubernetes.namespace",
                provider=PROVIDER,
            )

    def _state_or_none(self, model: str) -> ModelState | None:
        live = self.kube.get("ConfigMap", self.config.namespace, manifests.resource_name(model))
        return manifests.state_of(live)

    def _state(self, model: str) -> ModelState:
        state = self._state_or_none(model)
        if state is None:
            raise NotFound(
                f"no model '{model}' in namespace {self.config.namespace}", provider=PROVIDER
            )
        return state

    def _write_state(self, model: str, state: ModelState) -> None:
        """Apply the model's ConfigMap for ``state`` (the kubelet then refreshes the pods' copy)."""
        apply(self.kube, manifests.config_map(self.config, model, state))

    def _same_content(
        self, model: str, state: ModelState | None, version: str, export: ExportInfo
    ) -> bool:
        """True when ``version`` is listed with the export's digest; ConfigError when with
        another one; False when not listed."""
        if state is None or version not in state.versions:
            return False
        if state.versions[version].get("digest") == tree_digest(export.path):
            return True
        raise ConfigError(
            f"version {version} of model '{model}' already exists with different content",
            hint="deploy the new export as a new version number",
            provider=PROVIDER,
        )

    def _next_state(
        self, state: ModelState | None, spec: DeploySpec, export: ExportInfo
    ) -> ModelState:
        version = str(int(spec.version))
        versions = dict(state.versions) if state else {}
        if version not in versions:
            versions[version] = {
                "digest": tree_digest(export.path),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        default = state.default if state else None
        if default is None or spec.set_default:
            default = version
        return ModelState(versions, default, state.history if state else ())

    def _create_only(self, obj: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
        if obj["kind"] == "Deployment" and self.config.autoscaling:
            return (("spec", "replicas"),)
        return ()

    def _wait_serving(self, model: str, version: str, clock: Deadline) -> None:
        """Block until every ready pod serves ``version``; ProviderError when it failed."""

        def poll() -> list[serving.PodView]:
            found = serving.views(self.kube, self.config.namespace, model)
            if problem := serving.failure(found, version):
                raise ProviderError(
                    f"version {version} of '{model}' failed to load: {problem}",
                    hint="see `cloudserve logs` or kubectl logs of the pod",
                    provider=PROVIDER,
                )
            return found

        wait_until(
            poll,
            settled=lambda found: serving.all_serve(found, version),
            label=f"pods of '{model}' loading version {version}",
            timeout=clock.remaining(),
            progress=self.progress,
            describe=lambda found: serving.describe(found, version),
            backoff=WAIT_BACKOFF,
            provider=PROVIDER,
        )

    def _record(
        self,
        model: str,
        version: str,
        *,
        changed: bool = True,
        state: ModelState | None = None,
        found: list[serving.PodView] | None = None,
    ) -> VersionRecord:
        state = state or self._state(model)
        if found is None:
            found = serving.views(self.kube, self.config.namespace, model)
        info = state.versions.get(version, {})
        if serving.all_serve(found, version):
            status, message = "AVAILABLE", ""
        elif failed := serving.failure(found, version):
            status, message = "FAILED", failed
        else:
            status, message = "CREATING", serving.describe(found, version)
        is_default = state.default == version
        name = manifests.resource_name(model)
        return VersionRecord(
            model=model,
            version=version,
            state=status,
            is_default=is_default,
            traffic=100 if is_default else 0,
            artifact_uri=self.store.uri(model, version),
            created=info.get("created"),
            changed=changed,
            resources={
                "namespace": self.config.namespace,
                "deployment": name,
                "service": name,
                "configmap": name,
            },
            message=message,
        )
