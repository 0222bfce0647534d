"""The ``aws`` target: TensorFlow SavedModels on Amazon SageMaker endpoints.

Per version: model.tar.gz in S3 (uploaded once per content digest), a SageMaker Model
(TF Serving image + artifact) and an EndpointConfig (real-time or serverless). Per model:
one endpoint, tagged as cloudserve's, serving the *default* version (or a weighted split,
``traffic:``). Changing the route is a blue/green UpdateEndpoint (see ``switching``); the
history of defaults lives in an endpoint tag, so rollback works across CLI runs. An endpoint
of the same name that cloudserve did not create is never touched.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import ConfigError, NotFound, NotSupported, PreflightError, ProviderError
from cloudserve.limits import limit
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord
from cloudserve.waiting import resumable
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
from cloudserve_adapters.aws.packaging import Artifact
from cloudserve_adapters.aws.switching import DefaultSwitch, check_route, describe, single

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
    ``s3()``, ``sagemaker()``, ``runtime()``, ``autoscaling()`` and ``logs()``); None builds
    one from the default boto3 session for ``config.region``.
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
            Feature.TRAFFIC_SPLIT,
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
        self.artifacts = packaging.ArtifactCache()

    # ------------------------------------------------------------------ helpers

    def _endpoint(self, model: str) -> str:
        return self.config.endpoint_name or model

    def _image(self, export: ExportInfo) -> str | None:
        if self.config.image:
            return self.config.image
        proc = "cpu" if self.config.serverless else images.processor(self.config.instance_type)
        choice = images.resolve(export.tf_minor, self.config.region, proc)
        if choice is not None:
            return choice.uri
        pushed = images.pushed_runtime(export.tf_minor, self.config.region, proc)
        return pushed.reference if pushed else None

    def _key(self, spec: DeploySpec, sha256: str) -> str:
        return naming.object_key(self.config.prefix, spec.model, spec.version, sha256)

    def _artifact(self, spec: DeploySpec, export: ExportInfo) -> Artifact:
        """The version's model.tar.gz, built once for plan and deploy together."""
        return self.artifacts.get(
            export.path,
            spec.version,
            code_dir=self.config.code_dir,
            on_build=lambda: self.progress.status(f"packaging {export.path} as model.tar.gz"),
        )

    def _refuse_other_content(self, spec: DeploySpec, existing: dict | None, sha: str) -> None:
        if existing is None:
            return
        found = state.tags(self.clients.sagemaker(), existing["ModelArn"])
        if found.get(naming.TAG_MODEL) != spec.model:
            raise self._foreign("model", existing["ModelName"])
        if found.get(naming.TAG_DIGEST, "") != sha:
            raise ConfigError(
                f"{spec.model} version {spec.version} already exists on SageMaker with "
                "different content",
                hint="deploy the new export as a new version (--version N+1)",
                provider=self.name,
            )

    def _refuse_foreign_config(self, spec: DeploySpec, described: dict[str, Any]) -> None:
        found = state.tags(self.clients.sagemaker(), described["EndpointConfigArn"])
        if found.get(naming.TAG_MODEL) != spec.model:
            raise self._foreign("endpoint config", described["EndpointConfigName"])

    def _foreign(self, kind: str, name: str) -> ConfigError:
        return ConfigError(
            f"a SageMaker {kind} named {name} exists that cloudserve did not create for this "
            f"model (it has no {naming.TAG_MODEL} tag naming it); cloudserve will not take it "
            "over or delete it",
            hint="choose another model name or endpoint_name, or remove that resource yourself",
            provider=self.name,
        )

    def _owned_endpoint(self, model: str) -> state.EndpointState | None:
        """The model's endpoint; None when absent.

        Raises:
            ConfigError: an endpoint of that name exists that cloudserve did not create.
        """
        ep = state.read_endpoint(self.clients.sagemaker(), self._endpoint(model), model)
        if ep is not None and not ep.owned:
            raise self._foreign("endpoint", ep.name)
        return ep

    def _require_endpoint(self, model: str) -> state.EndpointState:
        ep = self._owned_endpoint(model)
        if ep is None:
            raise NotFound(
                f"{model} has no SageMaker endpoint {self._endpoint(model)}",
                hint="deploy a version first",
                provider=self.name,
            )
        return ep

    def _route(self, spec: DeploySpec) -> dict[str, int] | None:
        """``spec.traffic`` as a checked route, None when it leaves traffic alone."""
        if not spec.traffic:
            return None
        route = {str(v): int(p) for v, p in spec.traffic.items()}
        check_route(route)
        return route

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
        routed = ep is not None and version in ep.traffic
        status = ep.status if (is_default or routed) and ep is not None else "InService"
        traffic = ep.traffic.get(version, 0) if ep is not None else 0
        if is_default and ep is not None and not ep.traffic:
            traffic = 100
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
            traffic=traffic,
            artifact_uri=artifact_uri,
            created=created,
            changed=changed,
            resources=resources_,
            message=message,
        )

    # ------------------------------------------------------------------ contract

    def instance_memory_mb(self) -> int | None:
        """Serverless memory, or the configured instance type's memory (None if unknown)."""
        if self.config.serverless is not None:
            return self.config.serverless.memory_mb
        return memory_mib(self.config.instance_type)

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """SageMaker rules (names, layout, instance types, serverless, image, tags, limits)."""
        return preflight.run(self.config, spec, export)

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What deploy would do; builds the tarball locally to know its digest (deploy on the
        same adapter reuses it), writes nothing to AWS.

        Raises:
            ConfigError: the version exists with different content, a same-named resource is
                not cloudserve's, or the bucket is in another region (deploy would refuse).
        """
        cfg = self.config
        sm, s3 = self.clients.sagemaker(), self.clients.s3()
        name = naming.resource_name(spec.model, spec.version)
        artifact = self._artifact(spec, export)
        key = self._key(spec, artifact.sha256)
        uri = f"s3://{cfg.bucket}/{key}"
        actions: list[PlanAction] = []
        region = storage.bucket_region(s3, cfg.bucket) if cfg.bucket else None
        if cfg.bucket and region is None:
            detail = "create_bucket is true" if cfg.create_bucket else "MISSING: deploy will fail"
            actions.append(PlanAction("create", "s3-bucket", cfg.bucket, detail))
        elif cfg.bucket:
            storage.require_region(cfg.bucket, region, cfg.region)
        stored = storage.stored_digest(s3, cfg.bucket, key) if region is not None else None
        if stored == artifact.sha256:
            actions.append(PlanAction("skip", "s3-object", uri, "same content already uploaded"))
        else:
            actions.append(PlanAction("upload", "s3-object", uri, f"{artifact.size} bytes"))
        existing = state.describe_model(sm, name)
        self._refuse_other_content(spec, existing, artifact.sha256)
        image = self._image(export) or "(no image: see preflight)"
        actions.append(PlanAction("skip" if existing else "create", "sagemaker-model", name, image))
        described = state.describe_config(sm, name)
        if described is not None:
            self._refuse_foreign_config(spec, described)
        variant = resources.production_variant(cfg, name, spec.version)
        kind = "serverless" if cfg.serverless else f"{cfg.instance_count} x {cfg.instance_type}"
        actions.append(
            PlanAction(
                "skip" if described else "create",
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
        ep = self._owned_endpoint(spec.model)
        wanted = self._route(spec)
        actions = []
        if ep is None:
            route = wanted or single(spec.version)
            actions.append(
                PlanAction("create", "sagemaker-endpoint", endpoint, f"serving {describe(route)}")
            )
        elif ep.failed:
            route = wanted or single(spec.version if spec.set_default else ep.serving or "")
            actions.append(
                PlanAction(
                    "create",
                    "sagemaker-endpoint",
                    endpoint,
                    f"replaces the Failed endpoint ({ep.failure_reason or 'no reason given'}): "
                    f"delete, then create serving {describe(route)}",
                )
            )
        elif wanted or spec.set_default or ep.serving is None:
            route = wanted or single(spec.version)
            current = dict(ep.traffic) or single(ep.serving or "")
            verb = "skip" if current == route else "route"
            actions.append(
                PlanAction(
                    verb,
                    "sagemaker-endpoint",
                    endpoint,
                    f"UpdateEndpoint {describe(current)} -> {describe(route)} (blue/green)"
                    if verb == "route"
                    else f"keeps serving {describe(route)}",
                )
            )
        else:
            route = dict(ep.traffic) or single(ep.serving or "")
            actions.append(
                PlanAction(
                    "skip", "sagemaker-endpoint", endpoint, f"keeps serving {describe(route)}"
                )
            )
        wanted = self.switch.scaling_settings()
        for version in route if wanted is not None else ():
            variant = naming.variant_name(version)
            current = None
            if ep is not None and version in ep.traffic:
                current = scaling.current(self.clients.autoscaling(), endpoint, variant)
            verb = "skip" if current == wanted else "update" if current else "create"
            actions.append(
                PlanAction(
                    verb,
                    "autoscaling-target",
                    scaling.resource_id(endpoint, variant),
                    f"{wanted.minimum}-{wanted.maximum} instances, "
                    f"{wanted.target:g} invocations/instance",
                )
            )
        return actions

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload, create the version's Model and EndpointConfig, and create or route the
        endpoint (see :meth:`Adapter.deploy`); ``spec.traffic`` routes a weighted split.
        Idempotent, and safe to re-run after Ctrl-C. A Failed endpoint (it serves nothing)
        is deleted and created again.

        Raises:
            PreflightError: a preflight rule failed; nothing was uploaded.
            ConfigError: the version exists with other content, the bucket is missing or in
                another region, or a same-named resource is not cloudserve's.
            ProviderError: SageMaker refused a step; a failed switch names what still serves.
            DeployTimeout: the endpoint did not settle within ``timeout`` seconds.
        """
        findings = self.ensure_deployable(spec, export)
        with resumable(f"deploying {spec.model} v{spec.version}", provider=self.name):
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
        route = self._route(spec)
        self._owned_endpoint(spec.model)  # refuse a foreign endpoint before any upload
        changed = False
        existing = state.describe_model(sm, name)
        artifact = self._artifact(spec, export)
        self._refuse_other_content(spec, existing, artifact.sha256)
        key = self._key(spec, artifact.sha256)
        uri = f"s3://{cfg.bucket}/{key}"
        storage.ensure_bucket(s3, cfg.bucket, cfg.region, create=cfg.create_bucket)
        if storage.stored_digest(s3, cfg.bucket, key) != artifact.sha256:
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
        described = state.describe_config(sm, name)
        if described is None:
            resources.create_config(sm, cfg, model=spec.model, version=spec.version, tags=tags)
            changed = True
        else:
            self._refuse_foreign_config(spec, described)
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
        ep, endpoint_changed, message = self._deploy_endpoint(spec, route, tags, wait, timeout)
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
        self,
        spec: DeploySpec,
        wanted: dict[str, int] | None,
        tags: dict[str, str],
        wait: bool,
        timeout: float,
    ) -> tuple[state.EndpointState, bool, str]:
        """Create the endpoint (first version), replace it when Failed, or route it when
        asked; (state, changed, message)."""
        model = spec.model
        endpoint = self._endpoint(model)
        ep = self._owned_endpoint(model)
        if ep is None:
            route = wanted or single(spec.version)
            history = [max(route, key=lambda v: (route[v], naming.version_sort_key(v)))]
            ep = self.switch.create(model, endpoint, route, history, timeout, tags=tags, wait=wait)
            message = (
                "" if wait else "endpoint creating; autoscaling is registered by a later deploy"
            )
            return ep, True, message
        if ep.failed:
            if not wait:
                raise self.switch.failed_error(endpoint, ep.failure_reason)
            keep = dict(ep.traffic) or single(ep.serving or spec.version)
            route = wanted or (single(spec.version) if spec.set_default else keep)
            reason = ep.failure_reason or "no reason given"
            ep = self.switch.recreate(model, ep, route, timeout)
            message = (
                f"endpoint {endpoint} was Failed ({reason}); it was deleted and created again "
                f"serving {describe(route)}"
            )
            return ep, True, message
        if wanted or spec.set_default or ep.serving is None:
            route = wanted or single(spec.version)
            if not wait:
                return self._route_no_wait(model, ep, route)
            ep, changed = self.switch.apply(model, ep, route, timeout)
            return ep, changed, ""
        current = dict(ep.traffic) or single(ep.serving)
        ep, changed = self.switch.apply(model, ep, current, timeout)  # scaling settings, history
        if ep.serving == spec.version:
            return ep, changed, ""
        return ep, changed, f"v{ep.serving} stays the default (pass --set-default to switch)"

    def _route_no_wait(
        self, model: str, ep: state.EndpointState, route: dict[str, int]
    ) -> tuple[state.EndpointState, bool, str]:
        if ep.traffic == route:
            return ep, False, ""
        target = self.switch.config_for(model, ep, route)
        sm = self.clients.sagemaker()
        try:
            resources.when_config_visible(
                lambda: sm.update_endpoint(EndpointName=ep.name, EndpointConfigName=target),
                f"updating endpoint {ep.name}",
                self.config.timeouts,
                self.progress,
            )
        except ProviderError as e:
            raise ProviderError(
                f"switching to {describe(route)} failed ({e.message}); "
                f"{describe(dict(ep.traffic))} is still serving",
                provider=self.name,
            ) from e
        message = "endpoint updating; run set-default again to wait and record the history"
        return ep, True, message

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Blue/green switch of all traffic to ``version``; blocks until it serves. A Failed
        endpoint is deleted and created again serving ``version``.

        Raises:
            NotFound: no endpoint for ``model``, or no such version.
            ConfigError: the endpoint of that name is not cloudserve's.
            ProviderError: the update failed; the message names what still serves.
        """
        with resumable(f"switching {model} to v{version}", provider=self.name):
            sm = self.clients.sagemaker()
            if state.describe_model(sm, naming.resource_name(model, version)) is None:
                raise NotFound(f"{model} has no version {version} on SageMaker", provider="aws")
            ep = self._require_endpoint(model)
            if ep.failed:
                ep = self.switch.recreate(model, ep, single(version), timeout)
                return self._record(model, version, ep, changed=True)
            ep, changed = self.switch.make_default(model, ep, version, timeout)
            return self._record(model, version, ep, changed=changed)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Switch back to the previous default recorded in the endpoint's history tag.

        Raises:
            NotFound: no endpoint, or no earlier default that still exists.
        """
        with resumable(f"rolling back {model}", provider=self.name):
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
            if ep.failed:
                ep = self.switch.recreate(model, ep, single(previous), timeout)
            else:
                ep = self.switch.route(model, ep, single(previous), history[:-1], timeout)
            return self._record(model, previous, ep, changed=True)

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Versions newest first, with each one's share of the endpoint's traffic."""
        sm = self.clients.sagemaker()
        models = state.version_models(sm, model)
        ep = self._owned_endpoint(model)
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
        """InvokeEndpoint with TF Serving JSON, sent once (never retried: not idempotent).
        Bodies over 6 MB (4 MB serverless) are refused before sending. ``version`` reaches a
        version with a production variant on the endpoint (the default, or a share of a
        split, even 0%) through TargetVariant.

        Raises:
            ConfigError: the body is over the limit.
            NotSupported: ``version`` has no variant on the endpoint.
            ProviderError: the container answered with an error or non-JSON, or no answer
                came within the read timeout.
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
        extra: dict[str, str] = {}
        if version is not None:
            ep = self._require_endpoint(model)
            routed = dict(ep.traffic) or single(ep.serving or "")
            if version not in routed:
                raise NotSupported(
                    f"the {endpoint} endpoint has no variant for v{version}; it serves "
                    f"{describe(routed)}",
                    hint=f"predict without --version, set-default {version}, or deploy with "
                    f"traffic: giving v{version} a share (0 reaches it only by name)",
                    provider=self.name,
                )
            extra["TargetVariant"] = naming.variant_name(version)
        try:
            response = self.clients.runtime().invoke_endpoint(
                EndpointName=endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=body,
                **extra,
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

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The last ``lines`` lines the version's containers wrote to CloudWatch Logs (log
        group ``/aws/sagemaker/Endpoints/<endpoint>``, streams ``v<version>/<instance>``),
        oldest first; [] when there are none or they cannot be read."""
        group = f"/aws/sagemaker/Endpoints/{self._endpoint(model)}"
        try:
            logs = self.clients.logs()
            streams = logs.describe_log_streams(
                logGroupName=group, logStreamNamePrefix=f"{naming.variant_name(version)}/"
            ).get("logStreams", [])
            events: list[tuple[int, str]] = []
            for stream in streams:
                found = logs.get_log_events(
                    logGroupName=group,
                    logStreamName=stream["logStreamName"],
                    limit=lines,
                    startFromHead=False,
                )
                events += [(e["timestamp"], e["message"]) for e in found.get("events", [])]
        except sdk.errors():
            return []
        events.sort(key=lambda e: e[0])
        return [message.rstrip("\n") for _, message in events[-lines:]]

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Delete one version (its config, Model and S3 objects) or the whole model (also the
        endpoint, its autoscaling and composed configs). Idempotent; returns what was removed.

        Raises:
            ConfigError: ``version`` receives traffic while other versions remain, or the
                endpoint of that name is not cloudserve's.
        """
        with resumable(
            f"deleting {model}" + (f" v{version}" if version else ""), provider=self.name
        ):
            if version is None:
                return self._delete_model(model)
            return self._delete_version(model, version)

    def _delete_version(self, model: str, version: str) -> list[str]:
        sm = self.clients.sagemaker()
        ep = self._owned_endpoint(model)
        others = set(state.version_models(sm, model)) | state.version_configs(sm, model)
        others.discard(version)
        routed = (dict(ep.traffic) or single(ep.serving or "")) if ep is not None else {}
        if version in routed:
            if others:
                doing = (
                    f"the Failed endpoint {ep.name} (it serves nothing) runs v{version}'s config"
                    if ep is not None and ep.failed
                    else f"v{version} serves {model} ({describe(routed)})"
                )
                raise ConfigError(
                    f"{doing} and other versions remain",
                    hint="set-default another version first (it replaces a Failed endpoint), "
                    "or delete the whole model",
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
        ep = self._owned_endpoint(model)
        removed: list[str] = []
        if ep is not None:
            if self.config.serverless is None:
                for version in dict(ep.traffic) or single(ep.serving or ""):
                    variant = naming.variant_name(version)
                    if scaling.deregister(self.clients.autoscaling(), endpoint, variant):
                        removed.append(f"autoscaling {scaling.resource_id(endpoint, variant)}")
            if self.switch.delete_and_wait(endpoint):
                removed.append(f"sagemaker endpoint {endpoint}")
        versions = set(state.version_models(sm, model)) | state.version_configs(sm, model)
        for version in sorted(versions, key=naming.version_sort_key):
            removed += resources.delete_version(sm, model, version)
        removed += resources.delete_composed_configs(sm, model)
        prefix = naming.object_key(self.config.prefix, model, "0", "").rsplit("/", 2)[0]
        removed += resources.delete_objects(self.clients.s3(), self.config.bucket, prefix + "/")
        return removed
