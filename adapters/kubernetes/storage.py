"""The model store the pods read: version directories under an S3 or GCS prefix.

Layout: ``<scheme>://<bucket>/<prefix>/<model>/<version>/`` holds the SavedModel directory
itself, the TF Serving base-path layout the runtime reads (it mirrors ``s3://``/``gs://``
base paths into the pod, see ``cloudserve_runtime.remote``). GCS uploads go through the gcp
adapter's resumable chunked upload; S3 uploads through the aws adapter's client factory and
error translation, one object per file.
"""

from __future__ import annotations

from typing import Any, Protocol

from cloudserve.errors import ConfigError
from cloudserve.progress import Progress, byte_counter
from cloudserve.records import ExportInfo
from cloudserve_adapters.kubernetes.config import KubernetesConfig

GCS_CHUNK_BYTES = 8 * 1024 * 1024


class ModelStore(Protocol):
    """What the adapter needs from a bucket."""

    def uri(self, model: str, version: str | None = None) -> str: ...

    def upload(self, export: ExportInfo, model: str, version: str, progress: Progress) -> None:
        """Write the export under the version's prefix (replacing what is there)."""

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Delete the version's (or the model's) objects; returns their URIs."""

    def objects(self) -> list[str]:
        """Every object URI under the store's prefix."""


def _key(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


class S3Store:
    """An ``s3://`` model store, through the aws adapter's clients and bucket code."""

    def __init__(self, config: KubernetesConfig, aws_clients: Any):
        self.config = config
        self.bucket = config.store_bucket
        self.prefix = config.store_prefix
        self._aws = aws_clients

    @property
    def s3(self) -> Any:
        return self._aws.s3()

    def uri(self, model: str, version: str | None = None) -> str:
        return f"s3://{self.bucket}/{_key(self.prefix, model, version or '')}"

    def _check_bucket(self) -> None:
        from cloudserve_adapters.aws import sdk

        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return
        except sdk.errors() as e:
            if not sdk.is_missing(e):
                raise sdk.translate(e, f"checking bucket {self.bucket}") from e
        raise ConfigError(
            f"S3 bucket '{self.bucket}' of model_store does not exist",
            hint="create it (aws s3 mb) or point targets.kubernetes.model_store elsewhere",
            provider="kubernetes",
        )

    def upload(self, export: ExportInfo, model: str, version: str, progress: Progress) -> None:
        from cloudserve_adapters.aws import sdk

        self._check_bucket()
        self.delete(model, version)  # an interrupted earlier attempt leaves nothing behind
        label = self.uri(model, version)
        on_bytes = byte_counter(progress, label, export.total_bytes)
        progress.transfer(label, 0, export.total_bytes)
        for rel in export.files:
            key = _key(self.prefix, model, version, rel)
            try:
                self.s3.upload_file(str(export.path / rel), self.bucket, key, Callback=on_bytes)
            except sdk.errors() as e:
                raise sdk.translate(e, f"uploading s3://{self.bucket}/{key}") from e
        progress.transfer(label, export.total_bytes, export.total_bytes)

    def _keys(self, prefix: str) -> list[str]:
        from cloudserve_adapters.aws import sdk

        keys: list[str] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys += [item["Key"] for item in page.get("Contents", [])]
        except sdk.errors() as e:
            if sdk.is_missing(e):
                return []
            raise sdk.translate(e, f"listing s3://{self.bucket}/{prefix}") from e
        return keys

    def delete(self, model: str, version: str | None = None) -> list[str]:
        from cloudserve_adapters.aws import sdk

        keys = self._keys(_key(self.prefix, model, version or "") + "/")
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            except sdk.errors() as e:
                raise sdk.translate(e, f"deleting under {self.uri(model, version)}") from e
        return [f"s3://{self.bucket}/{k}" for k in keys]

    def objects(self) -> list[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        return [f"s3://{self.bucket}/{k}" for k in self._keys(prefix)]


class GcsStore:
    """A ``gs://`` model store, through the gcp adapter's upload code."""

    def __init__(self, config: KubernetesConfig, gcp_clients: Any, project: str = "-"):
        self.config = config
        self.prefix = config.store_prefix
        self._gcp = gcp_clients
        self._project = project

    @property
    def bucket(self) -> Any:
        return self._gcp.storage(self._project).bucket(self.config.store_bucket)

    def uri(self, model: str, version: str | None = None) -> str:
        return f"gs://{self.config.store_bucket}/{_key(self.prefix, model, version or '')}"

    def upload(self, export: ExportInfo, model: str, version: str, progress: Progress) -> None:
        from cloudserve_adapters.gcp import upload

        prefix = upload.object_prefix(self.prefix, model, version)
        upload.upload_export(
            self.bucket, export, prefix, chunk_size=GCS_CHUNK_BYTES, progress=progress
        )

    def delete(self, model: str, version: str | None = None) -> list[str]:
        from cloudserve_adapters.gcp import upload

        return upload.delete_objects(self.bucket, upload.object_prefix(self.prefix, model, version))

    def objects(self) -> list[str]:
        from cloudserve_adapters.gcp import upload

        prefix = f"{self.prefix}/" if self.prefix else ""
        return [
            upload.gs_uri(self.config.store_bucket, n)
            for n in upload.existing_objects(self.bucket, prefix)
        ]


def open_store(config: KubernetesConfig, clients: Any) -> ModelStore:
    """The store ``config.model_store`` names, with the SDK clients of ``clients``."""
    if config.store_scheme == "s3":
        aws = clients.aws
        if aws is None:
            from cloudserve_adapters.aws.sdk import AwsClients

            aws = clients.aws = AwsClients(
                endpoint_url=config.s3_endpoint_url, region=config.aws_region
            )
        return S3Store(config, aws)
    gcp = clients.gcp
    if gcp is None:
        from cloudserve_adapters.gcp.sdk import GcpClients

        gcp = clients.gcp = GcpClients()
    return GcsStore(config, gcp)
