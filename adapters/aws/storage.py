"""The S3 side: the bucket, and model.tar.gz uploaded once per content digest."""

from __future__ import annotations

import importlib
import math
from typing import Any

from cloudserve.errors import ConfigError
from cloudserve.limits import limit
from cloudserve.progress import Progress, byte_counter
from cloudserve_adapters.aws import naming, sdk
from cloudserve_adapters.aws.packaging import Artifact

MIB = 1024 * 1024


def bucket_region(s3: Any, bucket: str) -> str | None:
    """The region ``bucket`` lives in ("" when S3 does not say); None when it does not exist.
    Read-only (HeadBucket)."""
    try:
        head = s3.head_bucket(Bucket=bucket)
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return None
        raise sdk.translate(e, f"checking bucket {bucket}") from e
    headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(head.get("BucketRegion") or headers.get("x-amz-bucket-region") or "")


def require_region(bucket: str, found: str | None, region: str) -> None:
    """SageMaker reads ModelDataUrl only from a bucket in the endpoint's own region.

    Raises:
        ConfigError: the bucket is in another region.
    """
    if found and found != region:
        raise ConfigError(
            f"S3 bucket '{bucket}' is in {found}, but the endpoint is in {region}: SageMaker "
            "reads model.tar.gz only from a bucket in the endpoint's region",
            hint=f"use a bucket in {region} (targets.aws.bucket), or deploy to region: {found}",
            provider="aws",
        )


def ensure_bucket(s3: Any, bucket: str, region: str, *, create: bool) -> bool:
    """Make sure ``bucket`` exists in ``region``; returns True if this call created it.

    Raises:
        ConfigError: the bucket is in another region, or it does not exist and ``create``
            is false.
    """
    found = bucket_region(s3, bucket)
    if found is not None:
        require_region(bucket, found, region)
        return False
    if not create:
        raise ConfigError(
            f"S3 bucket '{bucket}' does not exist",
            hint="create it, or set create_bucket: true in targets.aws",
            provider="aws",
        )
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except sdk.errors() as e:
        raise sdk.translate(e, f"creating bucket {bucket}") from e
    return True


def stored_digest(s3: Any, bucket: str, key: str) -> str | None:
    """The content digest recorded on ``s3://bucket/key``; None when there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return None
        raise sdk.translate(e, f"checking s3://{bucket}/{key}") from e
    return head.get("Metadata", {}).get(naming.DIGEST_METADATA, "")


def transfer_config(size: int) -> Any:
    """boto3's TransferConfig: 8 MiB parts, larger when 10,000 parts would not hold ``size``."""
    chunk = limit("aws", "s3_multipart_chunk_bytes")
    parts = limit("aws", "s3_max_parts")
    if size > chunk * parts:
        chunk = math.ceil(size / parts / MIB) * MIB
    transfer = importlib.import_module("boto3.s3.transfer")
    return transfer.TransferConfig(
        multipart_threshold=limit("aws", "s3_multipart_chunk_bytes"),
        multipart_chunksize=chunk,
        max_concurrency=10,
        use_threads=True,
    )


def upload(s3: Any, artifact: Artifact, bucket: str, key: str, progress: Progress) -> None:
    """Upload ``artifact`` (multipart above 8 MiB) with its digest in the object metadata."""
    label = f"s3://{bucket}/{key}"
    on_bytes = byte_counter(progress, label, artifact.size)
    progress.transfer(label, 0, artifact.size)
    try:
        s3.upload_file(
            str(artifact.path),
            bucket,
            key,
            ExtraArgs={
                "Metadata": {naming.DIGEST_METADATA: artifact.sha256},
                "ContentType": "application/gzip",
            },
            Config=transfer_config(artifact.size),
            Callback=on_bytes,
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"uploading {label}") from e
