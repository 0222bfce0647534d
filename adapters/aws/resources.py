"""Creating and deleting the SageMaker resources of one version (Model, EndpointConfig),
the endpoint, and the version's S3 objects. Each call is idempotent at its own level."""

from __future__ import annotations

from typing import Any

from cloudserve_adapters.aws import naming, sdk
from cloudserve_adapters.aws.config import AwsConfig


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


def create_endpoint(
    sm: Any, config: AwsConfig, *, endpoint: str, model: str, version: str, tags: dict[str, str]
) -> str:
    """CreateEndpoint serving ``version``; its default history starts with that version."""
    extra = {**tags, naming.TAG_MODEL: model, naming.TAG_HISTORY: version}
    try:
        response = sm.create_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=naming.resource_name(model, version),
            Tags=_tags(config, extra),
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating endpoint {endpoint}") from e
    return response["EndpointArn"]


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
