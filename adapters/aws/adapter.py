"""The ``aws`` target: TensorFlow SavedModels on Amazon SageMaker endpoints.

Per version: model.tar.gz in S3 (uploaded once per content digest), a SageMaker Model
(TF Serving image + artifact) and an EndpointConfig (real-time or serverless). Per model:
one endpoint serving the *default* version's config. Changing the default is a blue/green
UpdateEndpoint onto that version's config; the history of defaults lives in an endpoint
tag, so rollback works across CLI runs.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import ConfigError, NotFound, NotSupported, PreflightError, ProviderError
from cloudserve.limits import limit
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord
from cloudserve_adapters.aws import (
    images,
    model_registry,
    naming,
    packaging,
    preflight,
    resources,
    scaling,
    sdk,
    state,
    storage,
)
from cloudserve_adapters.aws.config import AwsConfig
from cloudserve_adapters.aws.instances import memory_mib
from cloudserve_adapters.aws.switching import DefaultSwitch
from cloudserve_adapters.aws.waiters import RESUME_HINT, resumable, wait_for_endpoint

_STATES = {
    "InService": "AVAILABLE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "SystemUpdating": "UPDATING",
    "RollingBack": "UPDATING",
    "Failed": "FAILED",
    "UpdateRollbackFailed": "FAILED",
    "Deleting": "DELETING",
}


class SageMakerAdapter(Adapter):
    """Deploys to SageMaker real-time or serverless endpoints (see the module docstring).

    ``clients`` is an :class:`~cloudserve_adapters.aws.sdk.AwsClients` (or any object with
    ``s3()``, ``sagemaker()``, ``runtime()`` and ``autoscaling()``); None builds one from
    the default boto3 session for ``config.region``.
    """

    name: ClassVar[str] = "aws"
    extra: ClassVar[str | None] = "aws"
    config_class: ClassVar[type[AwsConfig]] = AwsConfig
    tf_serving_loading: ClassVar[bool] = True  # managed TF Serving containers
    features: ClassVar[frozenset[Feature]] = frozenset(
        {
            Feature.GPU,
            Feature.AUTOSCALING,
            Feature.SERVERLESS,
            Feature.MODEL_REGISTRY,
            Feature.CUSTOM_IMAGE,
        }
    )
    config: AwsConfig

    def __init__(
        self, config: AwsConfig, *, clients: Any | None = None, progress: Progress | None = None
    ):
        super().__init__(config, clients=clients, progress=progress)
        if self.clients is None:
            self.clients = sdk.AwsClients(
                region=config.region, read_timeout=config.timeouts.read_timeout_s
            )
        self.switch = DefaultSwitch(config, self.clients, self.progress)

    # ------------------------------------------------------------------ helpers

    def _endpoint(self, model: str) -> str:
        return self.config.endpoint_name or model

    def _image(self, export: ExportInfo) -> str | None:
        if self.config.image:
            return self.config.image
        proc = "cpu" if self.config.serverless else images.processor(self.config.instance_type)
        choice = images.resolve(export.tf_minor, self.config.region, proc)
        return choice.uri if choice else None

    def _key(self, spec: DeploySpec, sha256: str) -> str:
        return naming.object_key(self.config.prefix, spec.model, spec.version, sha256)

    def _existing_digest(self, model_description: dict[str, Any]) -> str:
        sm = self.clients.sagemaker()
        return state.tags(sm, model_description["ModelArn"]).get(naming.TAG_DIGEST, "")

    def _refuse_other_content(self, spec: DeploySpec, existing: dict | None, sha: str) -> None:
        if existing is not None and self._existing_digest(existing) != sha:
            raise ConfigError(
                f"{spec.model} version {spec.version} already exists on SageMaker with "
                "different content",
                hint="deploy the new export as a new version (--version N+1)",
                provider=self.name,
            )

    def _record(
        self,
        model: str,
        version: str,
        ep: state.EndpointState | None,
        *,
        changed: bool,
        artifact_uri: str = "",
        created: str | None = None,
        message: str = "",
        extra: dict[str, str] | None = None,
    ) -> VersionRecord:
        is_default = ep is not None and ep.serving == version
        status = ep.status if is_default and ep is not None else "InService"
        resources_ = {
            "model": naming.resource_name(model, version),
            "endpoint_config": naming.resource_name(model, version),
            "endpoint": self._endpoint(model),
            **(extra or {}),
        }
        return VersionRecord(
            model=model,
            version=version,
            state=_STATES.get(status, "UNKNOWN"),
            is_default=is_default,
            traffic=100 if is_default else 0,
            artifact_uri=artifact_uri,
            created=created,
            changed=changed,
            resources=resources_,
            message=message,
        )

    # ------------------------------------------------------------------ default switching
    # ------------------------------------------------------------------ contract

    def instance_memory_mb(self) -> int | None:
        """Serverless memory, or the configured instance type's memory (None if unknown)."""
        if self.config.serverless is not None:
            return self.config.serverless.memory_mb
        return memory_mib(self.config.instance_type)

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """SageMaker rules (names, layout, instance types, serverless, image, limits)."""
        return preflight.run(self.config, spec, export)

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What deploy would do; builds the tarball locally to know its digest, writes nothing.

        Raises:
            ConfigError: the version exists with different content (deploy would refuse).
        """
        cfg = self.config
        sm, s3 = self.clients.sagemaker(), self.clients.s3()
        name = naming.resource_name(spec.model, spec.version)
        with tempfile.TemporaryDirectory(prefix="cloudserve-") as tmp:
            artifact = packaging.build(
                export.path, spec.version, Path(tmp) / "model.tar.gz", code_dir=cfg.code_dir
            )
        key = self._key(spec, artifact.sha256)
        uri = f"s3://{cfg.bucket}/{key}"
        actions: list[PlanAction] = []
        bucket_there = bool(cfg.bucket) and storage.bucket_exists(s3, cfg.bucket)
        if cfg.bucket and not bucket_there:
            detail = "create_bucket is true" if cfg.create_bucket else "MISSING: deploy will fail"
            actions.append(PlanAction("create", "s3-bucket", cfg.bucket, detail))
        stored = storage.stored_digest(s3, cfg.bucket, key) if bucket_there else None
        if stored == artifact.sha256:
            actions.append(PlanAction("skip", "s3-object", uri, "same content already uploaded"))
        else:
            actions.append(PlanAction("upload", "s3-object", uri, f"{artifact.size} bytes"))
        existing = state.describe_model(sm, name)
        self._refuse_other_content(spec, existing, artifact.sha256)
        image = self._image(export) or "(no image: see preflight)"
        actions.append(PlanAction("skip" if existing else "create", "sagemaker-model", name, image))
        has_config = state.describe_config(sm, name) is not None
        variant = resources.production_variant(cfg, name, spec.version)
        kind = "serverless" if cfg.serverless else f"{cfg.instance_count} x {cfg.instance_type}"
        actions.append(
            PlanAction(
                "skip" if has_config else "create",
                "sagemaker-endpoint-config",
                name,
                f"variant {variant['VariantName']}: {kind}",
            )
        )
        if cfg.model_registry_group:
            found = model_registry.find(sm, cfg.model_registry_group, spec.version, artifact.sha256)
            actions.append(
                PlanAction(
                    "skip" if found else "create",
                    "sagemaker-model-package",
                    cfg.model_registry_group,
                    found or f"version {spec.version}",
                )
            )
        actions += self._plan_endpoint(spec)
        return Plan(
            target=self.name, model=spec.model, version=spec.version, actions=tuple(actions)
        )

    def _plan_endpoint(self, spec: DeploySpec) -> list[PlanAction]:
        endpoint = self._endpoint(spec.model)
        ep = state.read_endpoint(self.clients.sagemaker(), endpoint, spec.model)
        becomes_default = ep is None or (spec.set_default and ep.serving != spec.version)
        actions = []
        if ep is None:
            actions.append(
                PlanAction("create", "sagemaker-endpoint", endpoint, f"serving v{spec.version}")
            )
        elif becomes_default:
            actions.append(
                PlanAction(
                    "route",
                    "sagemaker-endpoint",
                    endpoint,
                    f"UpdateEndpoint v{ep.serving} -> v{spec.version} (blue/green)",
                )
            )
        else:
            actions.append(
                PlanAction("skip", "sagemaker-endpoint", endpoint, f"keeps serving v{ep.serving}")
            )
        if becomes_default and self.switch.scaling_wanted():
            rid = scaling.resource_id(endpoint, naming.variant_name(spec.version))
            actions.append(
                PlanAction(
                    "create",
                    "autoscaling-target",
                    rid,
                    f"{self.config.min_instances}-{self.config.max_instances} instances, "
                    f"{self.config.target_invocations_per_instance:g} invocations/instance",
                )
            )
        return actions

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload, create the version's Model and EndpointConfig, and create or switch the
        endpoint (see :meth:`Adapter.deploy`). Idempotent, and safe to re-run after Ctrl-C.

        Raises:
            PreflightError: a preflight rule failed; nothing was uploaded.
            ConfigError: the version exists with other content, or the bucket is missing.
            ProviderError: SageMaker refused a step; a failed switch names what still serves.
            DeployTimeout: the endpoint did not settle within ``timeout`` seconds.
        """
        findings = self.ensure_deployable(spec, export)
        with resumable(f"deploying {spec.model} v{spec.version}"):
            return self._deploy(spec, export, wait=wait, timeout=timeout, findings=findings)

    def _deploy(
        self,
        spec: DeploySpec,
        export: ExportInfo,
        *,
        wait: bool,
        timeout: float,
        findings: list[Finding],
    ) -> VersionRecord:
        cfg = self.config
        sm, s3 = self.clients.sagemaker(), self.clients.s3()
        name = naming.resource_name(spec.model, spec.version)
        image = self._image(export)
        if image is None:  # preflight reports it; kept for callers that skip preflight
            raise PreflightError(
                f"no serving image for TF {export.tf_version}", hint=images.runtime_image_hint()
            )
        changed = False
        existing = state.describe_model(sm, name)
        with tempfile.TemporaryDirectory(prefix="cloudserve-") as tmp:
            self.progress.status(f"packaging {export.path} as model.tar.gz")
            artifact = packaging.build(
                export.path, spec.version, Path(tmp) / "model.tar.gz", code_dir=cfg.code_dir
            )
            self._refuse_other_content(spec, existing, artifact.sha256)
            key = self._key(spec, artifact.sha256)
            uri = f"s3://{cfg.bucket}/{key}"
            if storage.stored_digest(s3, cfg.bucket, key) != artifact.sha256:
                storage.ensure_bucket(s3, cfg.bucket, cfg.region, create=cfg.create_bucket)
                storage.upload(s3, artifact, cfg.bucket, key, self.progress)
                changed = True
            else:
                self.progress.status(f"{uri}: same content already uploaded, skipping")
        tags = dict(spec.tags)
        extra: dict[str, str] = {"image": image}
        if existing is None:
            extra["model_arn"] = resources.create_model(
                sm,
                cfg,
                model=spec.model,
                version=spec.version,
                image=image,
                model_data_url=uri,
                sha256=artifact.sha256,
                tags=tags,
            )
            changed = True
        if state.describe_config(sm, name) is None:
            resources.create_config(sm, cfg, model=spec.model, version=spec.version, tags=tags)
            changed = True
        if cfg.model_registry_group:
            arn, created = model_registry.register(
                sm,
                cfg.model_registry_group,
                model=spec.model,
                version=spec.version,
                image=image,
                model_data_url=uri,
                sha256=artifact.sha256,
            )
            extra["model_package"] = arn
            changed |= created
        ep, endpoint_changed, message = self._deploy_endpoint(spec, tags, wait, timeout)
        warnings = "; ".join(f.message for f in findings if f.severity == "warning")
        return self._record(
            spec.model,
            spec.version,
            ep,
            changed=changed or endpoint_changed,
            artifact_uri=uri,
            message="; ".join(m for m in (message, warnings) if m),
            extra=extra,
        )

    def _deploy_endpoint(
        self, spec: DeploySpec, tags: dict[str, str], wait: bool, timeout: float
    ) -> tuple[state.EndpointState, bool, str]:
        """Create the endpoint (first version) or switch it when asked; (state, changed, msg)."""
        sm = self.clients.sagemaker()
        endpoint = self._endpoint(spec.model)
        ep = state.read_endpoint(sm, endpoint, spec.model)
        if ep is None:
            self.progress.status(f"creating endpoint {endpoint} serving v{spec.version}")
            resources.create_endpoint(
                sm,
                self.config,
                endpoint=endpoint,
                model=spec.model,
                version=spec.version,
                tags=tags,
            )
            ep = state.read_endpoint(sm, endpoint, spec.model)
            if ep is None:
                raise ProviderError(f"endpoint {endpoint} vanished after creation")
            if not wait:
                return ep, True, "endpoint creating; autoscaling is registered by a later deploy"
            ep = self.switch.settle(spec.model, ep, timeout)
            if ep.status != "InService":
                raise ProviderError(
                    f"endpoint {endpoint} is {ep.status}: {ep.failure_reason or 'no reason given'}",
                    hint="fix the cause (image, role, instance type), delete the model and deploy "
                    "again",
                    provider=self.name,
                )
            self.switch.ensure_scaling(endpoint, spec.version)
            return ep, True, ""
        if spec.set_default or ep.serving is None:
            if not wait:
                return self._switch_no_wait(spec, ep)
            ep, changed = self.switch.make_default(spec.model, ep, spec.version, timeout)
            return ep, changed, ""
        if ep.serving == spec.version:
            ep, changed = self.switch.make_default(spec.model, ep, spec.version, timeout)
            return ep, changed, ""
        return ep, False, f"v{ep.serving} stays the default (pass --set-default to switch)"

    def _switch_no_wait(
        self, spec: DeploySpec, ep: state.EndpointState
    ) -> tuple[state.EndpointState, bool, str]:
        if ep.serving == spec.version:
            return ep, False, ""
        target = naming.resource_name(spec.model, spec.version)
        try:
            self.clients.sagemaker().update_endpoint(
                EndpointName=ep.name, EndpointConfigName=target
            )
        except sdk.errors() as e:
            raise ProviderError(
                f"making v{spec.version} the default failed ({sdk.error_message(e)}); "
                f"v{ep.serving} is still serving",
                provider=self.name,
            ) from e
        message = "endpoint updating; run set-default again to wait and record the history"
        return ep, True, message

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Blue/green switch of the endpoint to ``version``'s config; blocks until it serves.

        Raises:
            NotFound: no endpoint for ``model``, or no such version.
            ProviderError: the update failed; the message names the version still serving.
        """
        with resumable(f"switching {model} to v{version}"):
            sm = self.clients.sagemaker()
            if state.describe_model(sm, naming.resource_name(model, version)) is None:
                raise NotFound(f"{model} has no version {version} on SageMaker", provider="aws")
            ep = self._require_endpoint(model)
            ep, changed = self.switch.make_default(model, ep, version, timeout)
            return self._record(model, version, ep, changed=changed)

    def _require_endpoint(self, model: str) -> state.EndpointState:
        ep = state.read_endpoint(self.clients.sagemaker(), self._endpoint(model), model)
        if ep is None:
            raise NotFound(
                f"{model} has no SageMaker endpoint {self._endpoint(model)}",
                hint="deploy a version first",
                provider=self.name,
            )
        return ep

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Switch back to the previous default recorded in the endpoint's history tag.

        Raises:
            NotFound: no endpoint, or no earlier default that still exists.
        """
        with resumable(f"rolling back {model}"):
            sm = self.clients.sagemaker()
            ep = self.switch.settle(model, self._require_endpoint(model), timeout)
            alive = state.version_configs(sm, model)
            history = [v for v in ep.history if v in alive or v == ep.serving]
            if len(history) < 2:
                raise NotFound(
                    f"{model} has no earlier default version to roll back to",
                    hint="use set-default to choose a version",
                    provider=self.name,
                )
            previous = history[-2]
            ep = self.switch.switch(model, ep, previous, history[:-1], timeout)
            return self._record(model, previous, ep, changed=True)

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Versions newest first; the default is the version of the endpoint's config."""
        sm = self.clients.sagemaker()
        models = state.version_models(sm, model)
        ep = state.read_endpoint(sm, self._endpoint(model), model)
        if not models and ep is None:
            raise NotFound(f"{model} has nothing on SageMaker", provider=self.name)
        configs = state.version_configs(sm, model)
        records = []
        for version in sorted(models, key=naming.version_sort_key, reverse=True):
            described = state.describe_model(sm, models[version]["ModelName"]) or {}
            created = models[version].get("CreationTime")
            record = self._record(
                model,
                version,
                ep,
                changed=False,
                artifact_uri=described.get("PrimaryContainer", {}).get("ModelDataUrl", ""),
                created=created.isoformat() if created else None,
                extra={"model_arn": models[version].get("ModelArn", "")},
            )
            if version not in configs:
                record = dataclasses.replace(
                    record,
                    state="UNKNOWN",
                    is_default=False,
                    traffic=0,
                    message="no endpoint config: re-run the deploy to finish it",
                )
            records.append(record)
        return records

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """InvokeEndpoint with TF Serving JSON. Bodies over 6 MB (4 MB serverless) are
        refused before sending. Only the default version can be named: the endpoint serves
        one config.

        Raises:
            ConfigError: the body is over the limit.
            NotSupported: ``version`` is not the default.
            ProviderError: the container answered with an error or non-JSON.
        """
        body = json.dumps(payload).encode()
        key = "serverless_payload_bytes" if self.config.serverless else "payload_bytes"
        if len(body) > limit(self.name, key):
            raise ConfigError(
                f"request body is {len(body)} bytes; SageMaker accepts at most "
                f"{limit(self.name, key)} bytes here",
                hint="send fewer instances per request, or use async inference / batch transform",
                provider=self.name,
            )
        endpoint = self._endpoint(model)
        if version is not None:
            ep = self._require_endpoint(model)
            if ep.serving != version:
                raise NotSupported(
                    f"the {endpoint} endpoint serves only its default, v{ep.serving}",
                    hint=f"predict without --version, or set-default {version} first",
                    provider=self.name,
                )
        try:
            response = self.clients.runtime().invoke_endpoint(
                EndpointName=endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=body,
            )
            raw = response["Body"].read()
        except sdk.errors() as e:
            raise sdk.translate(e, f"predicting with {endpoint}") from e
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ProviderError(
                f"{endpoint} answered with non-JSON: {raw[:200]!r}", provider=self.name
            ) from e

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Delete one version (its config, Model and S3 objects) or the whole model (also the
        endpoint and its autoscaling). Idempotent; returns what was removed.

        Raises:
            ConfigError: ``version`` is the default while other versions remain.
        """
        with resumable(f"deleting {model}" + (f" v{version}" if version else "")):
            if version is None:
                return self._delete_model(model)
            return self._delete_version(model, version)

    def _delete_version(self, model: str, version: str) -> list[str]:
        sm = self.clients.sagemaker()
        ep = state.read_endpoint(sm, self._endpoint(model), model)
        others = set(state.version_models(sm, model)) | state.version_configs(sm, model)
        others.discard(version)
        if ep is not None and ep.serving == version:
            if others:
                raise ConfigError(
                    f"v{version} is the default of {model} and other versions remain",
                    hint="set-default another version first, or delete the whole model",
                    provider=self.name,
                )
            return self._delete_model(model)
        removed = resources.delete_version(sm, model, version)
        prefix = naming.object_key(self.config.prefix, model, version, "").rsplit("/", 1)[0]
        removed += resources.delete_objects(self.clients.s3(), self.config.bucket, prefix + "/")
        if ep is not None and version in ep.history:
            state.write_history(sm, ep.arn, [v for v in ep.history if v != version])
        return removed

    def _delete_model(self, model: str) -> list[str]:
        sm = self.clients.sagemaker()
        endpoint = self._endpoint(model)
        ep = state.read_endpoint(sm, endpoint, model)
        removed: list[str] = []
        if ep is not None:
            if ep.serving is not None and self.switch.scaling_wanted():
                variant = naming.variant_name(ep.serving)
                if scaling.deregister(self.clients.autoscaling(), endpoint, variant):
                    removed.append(f"autoscaling {scaling.resource_id(endpoint, variant)}")
            if resources.delete_endpoint(sm, endpoint):
                removed.append(f"sagemaker endpoint {endpoint}")
                self._wait_deleted(endpoint)
        versions = set(state.version_models(sm, model)) | state.version_configs(sm, model)
        for version in sorted(versions, key=naming.version_sort_key):
            removed += resources.delete_version(sm, model, version)
        prefix = naming.object_key(self.config.prefix, model, "0", "").rsplit("/", 2)[0]
        removed += resources.delete_objects(self.clients.s3(), self.config.bucket, prefix + "/")
        return removed

    def _wait_deleted(self, endpoint: str) -> None:
        """Block until DescribeEndpoint says the endpoint is gone (its configs are then free)."""
        sm = self.clients.sagemaker()

        def describe() -> dict[str, Any]:
            try:
                return sm.describe_endpoint(EndpointName=endpoint)
            except sdk.errors() as e:
                if sdk.is_missing(e):
                    return {"EndpointStatus": "Deleted"}
                raise sdk.translate(e, f"reading endpoint {endpoint}") from e

        final = wait_for_endpoint(
            describe,
            label=f"deleting endpoint {endpoint}",
            timeout=limit(self.name, "endpoint_wait_s"),
            progress=self.progress,
            poll_initial=self.config.timeouts.poll_initial_s,
            poll_max=self.config.timeouts.poll_max_s,
        )
        if final["EndpointStatus"] != "Deleted":
            raise ProviderError(
                f"endpoint {endpoint} is {final['EndpointStatus']} instead of deleted",
                hint=RESUME_HINT,
                provider=self.name,
            )
