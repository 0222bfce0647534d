"""Model base paths in a bucket: ``s3://bucket/prefix`` and ``gs://bucket/prefix``.

A base path in a bucket is mirrored into a local directory that the model manager polls like
any other base path, so new versions are hot-loaded without a restart (what the Kubernetes
target relies on: deploy uploads a version, then lists it in the model config). Each poll lists
the bucket prefix once; a version directory is downloaded only after two polls saw the same
listing (object names, sizes and ETags/MD5s), so a version still being uploaded is never
loaded half-written. It is downloaded into a temporary directory and renamed into place in one
step, which :mod:`cloudserve_runtime.storage` then sees as a stable directory. Versions that
disappear from the bucket disappear from the mirror.

The mirror lives under ``$CLOUDSERVE_MODEL_CACHE`` (a temporary directory when unset). S3 is
read with boto3 (endpoint, region and credentials from the usual ``AWS_*`` environment, e.g.
``AWS_ENDPOINT_URL_S3`` for MinIO), GCS with google-cloud-storage; neither is part of the
default runtime image: build it with ``--build-arg EXTRA_PIP=boto3`` (or
``google-cloud-storage``). As with :func:`cloudserve_runtime.hosting.stage_saved_model`, a
missing package or a failed listing is one line of text (here a
:class:`~cloudserve_runtime.storage.BasePathError`, so loaded versions keep serving).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
import threading

from cloudserve_runtime.storage import BasePathError

__all__ = ["SCHEMES", "is_remote", "local_base_path"]

#: URI scheme -> (module to import, package to install)
SCHEMES = {"s3": ("boto3", "boto3"), "gs": ("google.cloud.storage", "google-cloud-storage")}

#: relative path inside the version -> (size, etag) for each object of one version
Listing = dict[str, tuple[int, str]]

_mirrors: dict[str, _Mirror] = {}
_lock = threading.Lock()


def is_remote(base_path: str) -> bool:
    """True for ``s3://`` and ``gs://`` base paths."""
    return base_path.split("://", 1)[0] in SCHEMES and "://" in base_path


def local_base_path(base_path: str) -> str:
    """Returns the directory the manager should list for ``base_path``.

    A local path is returned unchanged. A bucket URI is synced into its mirror first (one
    listing, plus downloads of versions whose listing has settled) and the mirror's path is
    returned.

    Raises:
        BasePathError: the client package is missing, or listing/downloading failed.
    """
    if not is_remote(base_path):
        return base_path
    with _lock:
        mirror = _mirrors.get(base_path)
        if mirror is None:
            mirror = _mirrors[base_path] = _Mirror(base_path, _cache_root())
    return mirror.sync()


def _cache_root() -> str:
    root = os.environ.get("CLOUDSERVE_MODEL_CACHE") or tempfile.mkdtemp(prefix="cloudserve-cache-")
    os.makedirs(root, exist_ok=True)
    return root


class _Mirror:
    """One bucket prefix mirrored into ``<cache>/<hash of the URI>``."""

    def __init__(self, uri: str, cache_root: str):
        self.uri = uri
        scheme, _, rest = uri.partition("://")
        self.bucket, _, prefix = rest.partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.backend = _S3(self.bucket) if scheme == "s3" else _GCS(self.bucket)
        self.local = os.path.join(cache_root, hashlib.sha256(uri.encode()).hexdigest()[:16])
        os.makedirs(self.local, exist_ok=True)
        self.seen: dict[str, Listing] = {}  # version -> listing at the previous sync
        self.held: dict[str, Listing] = {}  # version -> listing of what is in the mirror
        self._sync_lock = threading.Lock()

    def sync(self) -> str:
        with self._sync_lock:
            try:
                remote = self._listing()
                for version, listing in remote.items():
                    if self.held.get(version) == listing:
                        continue
                    if self.seen.get(version) == listing:
                        self._download(version, listing)
                for version in list(self.held):
                    if version not in remote:
                        shutil.rmtree(os.path.join(self.local, version), ignore_errors=True)
                        del self.held[version]
                self.seen = remote
            except BasePathError:
                raise
            except Exception as exc:  # SDK, auth and network errors: one line
                raise BasePathError(
                    f"Could not read {self.uri}: {type(exc).__name__}: {exc}"
                ) from None
        return self.local

    def _listing(self) -> dict[str, Listing]:
        versions: dict[str, Listing] = {}
        for key, size, etag in self.backend.list(self.prefix):
            rel = key[len(self.prefix) :]
            version, _, path = rel.partition("/")
            if not version.isdigit() or not path or path.endswith("/"):
                continue
            if path.startswith("/") or ".." in path.split("/"):
                raise BasePathError(f"Refusing to mirror {self.uri}: unsafe object name {key!r}")
            versions.setdefault(version, {})[path] = (size, etag)
        return versions

    def _download(self, version: str, listing: Listing) -> None:
        staging = tempfile.mkdtemp(prefix=f".{version}-", dir=self.local)
        try:
            for path in listing:
                target = os.path.join(staging, path)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.backend.download(f"{self.prefix}{version}/{path}", target)
            final = os.path.join(self.local, version)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.held[version] = listing


def _import(scheme: str) -> object:
    module, package = SCHEMES[scheme]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BasePathError(
            f"{scheme}:// model base paths need {package}, which this image lacks: "
            f"build it with --build-arg EXTRA_PIP={package} (see runtime_image/README.md)"
        ) from None


class _S3:
    def __init__(self, bucket: str):
        self.bucket = bucket
        self.client = _import("s3").client("s3")  # type: ignore[attr-defined]

    def list(self, prefix: str) -> list[tuple[str, int, str]]:
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            found += [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])]
        return found

    def download(self, key: str, target: str) -> None:
        self.client.download_file(self.bucket, key, target)


class _GCS:
    def __init__(self, bucket: str):
        self.bucket = _import("gs").Client().bucket(bucket)  # type: ignore[attr-defined]

    def list(self, prefix: str) -> list[tuple[str, int, str]]:
        return [
            (b.name, int(b.size or 0), b.md5_hash or b.crc32c or "")
            for b in self.bucket.client.list_blobs(self.bucket, prefix=prefix)
        ]

    def download(self, key: str, target: str) -> None:
        self.bucket.blob(key).download_to_filename(target)
