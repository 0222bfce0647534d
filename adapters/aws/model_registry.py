"""Optional: record each deployed version as a package in a SageMaker model package group.

Packages are the registry's audit trail, so deleting a version leaves its package in place
(moto 5.2 also has no DeleteModelPackage to test a removal against).
"""

from __future__ import annotations

from typing import Any

from cloudserve_adapters.aws import naming, sdk


def _ensure_group(sm: Any, group: str, model: str) -> None:
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
        return
    except sdk.errors() as e:
        if not sdk.is_missing(e):
            raise sdk.translate(e, f"reading model package group {group}") from e
    try:
        sm.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"cloudserve versions of {model}",
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating model package group {group}") from e


def find(sm: Any, group: str, version: str, sha256: str) -> str | None:
    """The ARN of the package already registered for this version and content, if any."""
    try:
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        arns = [p["ModelPackageArn"] for page in pages for p in page["ModelPackageSummaryList"]]
        for arn in arns:
            props = sm.describe_model_package(ModelPackageName=arn).get(
                "CustomerMetadataProperties", {}
            )
            if props.get(naming.TAG_VERSION) == version and props.get(naming.TAG_DIGEST) == sha256:
                return arn
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return None
        raise sdk.translate(e, f"listing model packages of {group}") from e
    return None


def register(
    sm: Any, group: str, *, model: str, version: str, image: str, model_data_url: str, sha256: str
) -> tuple[str, bool]:
    """Register the version in ``group`` (created if missing). Returns (ARN, created).

    Idempotent: a package with the same version and digest is reused.
    """
    _ensure_group(sm, group, model)
    existing = find(sm, group, version, sha256)
    if existing:
        return existing, False
    try:
        response = sm.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"{model} version {version}",
            InferenceSpecification={
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={
                naming.TAG_MODEL: model,
                naming.TAG_VERSION: version,
                naming.TAG_DIGEST: sha256,
            },
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"registering {model} v{version} in {group}") from e
    return response["ModelPackageArn"], True
