"""Creating and deleting the SageMaker resources of one version (Model, EndpointConfig),
the endpoint, and the version's S3 objects. Each call is idempotent at its own level."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cloudserve.progress import Progress
from cloudserve.waiting import Backoff, wait_until
from cloudserve_adapters.aws import naming, sdk
from cloudserve_adapters.aws.config import AwsConfig, AwsTimeouts

T = TypeVar("T")

#: how long a new EndpointConfig may stay invisible to CreateEndpoint/UpdateEndpoint
CONFIG_VISIBLE_WAIT_S = 120.0


def _tags(config: AwsConfig, extra: dict[str, str]) -> list[dict[str, str]]:
    merged = {**config.tags, **extra}
    return [{"Key": k, "Value": v} for k, v in sorted(merged.items())]


def production_variant(config: AwsConfig, model_name: str, version: str) -> dict[str, Any]:
    """The single production variant of a version's EndpointConfig."""
    variant: dict[str, Any] = {
        "VariantName": naming.variant_name(version),
        "ModelName": model_name,
        "InitialVariantWeight": 1.0,
    }
    if config.serverless is None:
        variant["InstanceType"] = config.instance_type
        variant["InitialInstanceCount"] = config.instance_count
    else:
        serverless: dict[str, Any] = {
            "MemorySizeInMB": config.serverless.memory_mb,
            "MaxConcurrency": config.serverless.max_concurrency,
        }
        if config.serverless.provisioned_concurrency is not None:
            serverless["ProvisionedConcurrency"] = config.serverless.provisioned_concurrency
        variant["ServerlessConfig"] = serverless
    return variant


def create_model(
    sm: Any,
    config: AwsConfig,
    *,
    model: str,
    version: str,
    image: str,
    model_data_url: str,
    sha256: str,
    tags: dict[str, str],
) -> str:
    """CreateModel for one version (TF Serving image + model.tar.gz). Returns its ARN."""
    name = naming.resource_name(model, version)
    meta = {naming.TAG_MODEL: model, naming.TAG_VERSION: version, naming.TAG_DIGEST: sha256}
    try:
        response = sm.create_model(
            ModelName=name,
            PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url},
            ExecutionRoleArn=config.role_arn,
            Tags=_tags(config, {**tags, **meta}),
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating SageMaker model {name}") from e
    return response["ModelArn"]


def create_config(
    sm: Any, config: AwsConfig, *, model: str, version: str, tags: dict[str, str]
) -> str:
    """CreateEndpointConfig for one version: one variant, real-time or serverless."""
    name = naming.resource_name(model, version)
    try:
        response = sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[production_variant(config, name, version)],
            Tags=_tags(config, {**tags, naming.TAG_MODEL: model, naming.TAG_VERSION: version}),
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating endpoint config {name}") from e
    return response["EndpointConfigArn"]


def create_composed_config(
    sm: Any, config: AwsConfig, *, name: str, model: str, variants: list[dict[str, Any]]
) -> str:
    """CreateEndpointConfig with the given production variants (a split or a resized fleet)."""
    try:
        response = sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=variants,
            Tags=_tags(config, {naming.TAG_MODEL: model}),
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating endpoint config {name}") from e
    return response["EndpointConfigArn"]


def _config_not_visible(e: BaseException) -> bool:
    message = sdk.error_message(e).lower()
    return sdk.error_code(e) in {"ValidationException", "ValidationError"} and (
        "could not find endpoint configuration" in message
        or "could not find endpoint_config" in message
    )


def when_config_visible(
    call: Callable[[], T], doing: str, timeouts: AwsTimeouts, progress: Progress
) -> T:
    """Run ``call`` (CreateEndpoint or UpdateEndpoint naming a config just created), retrying
    while SageMaker answers that the config does not exist: its reads are eventually
    consistent, and the API reference recommends retrying.

    Raises:
        ProviderError: another refusal, or the config stayed invisible (translated).
        DeployTimeout: still invisible after CONFIG_VISIBLE_WAIT_S seconds.
    """
    outcome: list[T] = []

    def attempt() -> bool:
        try:
            outcome.append(call())
            return True
        except sdk.errors() as e:
            if _config_not_visible(e):
                return False
            raise sdk.translate(e, doing) from e

    wait_until(
        attempt,
        settled=bool,
        label=doing,
        timeout=CONFIG_VISIBLE_WAIT_S,
        progress=progress,
        describe=lambda ok: "accepted" if ok else "endpoint config not visible yet, retrying",
        backoff=Backoff(timeouts.poll_initial_s, timeouts.poll_max_s),
        provider=sdk.PROVIDER,
    )
    return outcome[0]


def create_endpoint(
    sm: Any,
    config: AwsConfig,
    *,
    endpoint: str,
    config_name: str,
    model: str,
    history: str,
    tags: dict[str, str],
    progress: Progress,
) -> str:
    """CreateEndpoint on ``config_name``, tagged as cloudserve's for ``model`` and with its
    default history; retried while the config is not visible yet.

    Raises:
        ProviderError: SageMaker refused (e.g. the name is in use).
    """
    extra = {**tags, naming.TAG_MODEL: model, naming.TAG_HISTORY: history}
    response = when_config_visible(
        lambda: sm.create_endpoint(
            EndpointName=endpoint, EndpointConfigName=config_name, Tags=_tags(config, extra)
        ),
        f"creating endpoint {endpoint}",
        config.timeouts,
        progress,
    )
    return response["EndpointArn"]


def delete_composed_configs(sm: Any, model: str) -> list[str]:
    """Delete every composed config of ``model`` (``<model>-e<digest>`` tagged as its)."""
    removed = []
    try:
        pages = sm.get_paginator("list_endpoint_configs").paginate(NameContains=f"{model}-e")
        names = [
            c["EndpointConfigName"]
            for page in pages
            for c in page.get("EndpointConfigs", [])
            if naming.is_composed_config(model, c["EndpointConfigName"])
        ]
        for name in names:
            sm.delete_endpoint_config(EndpointConfigName=name)
            removed.append(f"sagemaker endpoint-config {name}")
    except sdk.errors() as e:
        if not sdk.is_missing(e):
            raise sdk.translate(e, f"deleting the composed endpoint configs of {model}") from e
    return removed


def delete_version(sm: Any, model: str, version: str) -> list[str]:
    """Delete a version's EndpointConfig and Model; returns what was there to delete."""
    name = naming.resource_name(model, version)
    removed = []
    for kind, call, kwargs in (
        ("endpoint-config", sm.delete_endpoint_config, {"EndpointConfigName": name}),
        ("model", sm.delete_model, {"ModelName": name}),
    ):
        try:
            call(**kwargs)
            removed.append(f"sagemaker {kind} {name}")
        except sdk.errors() as e:
            if not sdk.is_missing(e):
                raise sdk.translate(e, f"deleting {kind} {name}") from e
    return removed


def delete_endpoint(sm: Any, endpoint: str) -> bool:
    """DeleteEndpoint; False when it was already gone."""
    try:
        sm.delete_endpoint(EndpointName=endpoint)
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return False
        raise sdk.translate(e, f"deleting endpoint {endpoint}") from e
    return True


def delete_objects(s3: Any, bucket: str | None, prefix: str) -> list[str]:
    """Delete every object under ``s3://bucket/prefix``; returns their URIs."""
    if not bucket:
        return []
    removed: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                removed += [f"s3://{bucket}/{k['Key']}" for k in keys]
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return removed
        raise sdk.translate(e, f"deleting s3://{bucket}/{prefix}") from e
    return removed
