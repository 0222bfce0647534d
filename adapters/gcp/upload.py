"""Putting an export into Cloud Storage: layout, digests, resumable chunked uploads.

Layout: ``gs://<bucket>/<prefix>/<model>/<version>/`` holds the SavedModel directory itself
(``saved_model.pb`` and ``variables/`` at its root), which is the ``artifactUri`` layout Vertex's
prebuilt TF images expect (clouds.md A2; the wording is UNVERIFIED there).

Every object is written with a resumable upload in chunks of ``chunk_size`` bytes (a multiple
of 256 KiB, clouds.md A4), reporting progress after each chunk. An object already there with the
same MD5 (or CRC32C when the object has no MD5, as composite objects do) is left alone.

Each file is hashed once per deploy: :class:`FileHashes` keeps every digest it computed, keyed
by the file's path, size and modification time, and ``plan`` and ``deploy`` share one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cloudserve import file_hashes
from cloudserve.errors import ConfigError, NotFound
from cloudserve.progress import Progress
from cloudserve.records import ExportInfo
from cloudserve_adapters.gcp.sdk import PROVIDER, call, require

_READ_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class UploadResult:
    """What :func:`upload_export` did."""

    uri: str  # gs://bucket/prefix/model/version/ (the artifactUri)
    uploaded: tuple[str, ...]  # object names written
    skipped: tuple[str, ...]  # object names already there with the same digest
    removed: tuple[str, ...]  # stale objects under the prefix that are not in the export


def object_prefix(prefix: str, model: str, version: str | None = None) -> str:
    """``prefix/model/version/`` (or ``prefix/model/`` without a version), no leading slash."""
    parts = [p for p in (prefix.strip("/"), model, version) if p]
    return "/".join(parts) + "/"


def gs_uri(bucket: str, name: str) -> str:
    """``gs://bucket/name``."""
    return f"gs://{bucket}/{name}"


def file_md5(path: Path) -> str:
    """Base64 MD5 of a file, as Cloud Storage reports it in ``md5Hash``."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")


def file_crc32c(path: Path) -> str:
    """Base64 big-endian CRC32C of a file, as Cloud Storage reports it in ``crc32c``."""
    checksum = require("google_crc32c").Checksum()
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode("ascii")


class FileHashes(file_hashes.FileHashes):
    """MD5 and CRC32C digests of local files, each computed at most once per file state
    (one instance serves one adapter, so ``plan`` then ``deploy`` hash each file once)."""

    def md5(self, path: Path) -> str:
        """Base64 MD5 of ``path`` (see :func:`file_md5`)."""
        return self.get(path, file_md5)

    def crc32c(self, path: Path) -> str:
        """Base64 CRC32C of ``path`` (see :func:`file_crc32c`)."""
        return self.get(path, file_crc32c)


def export_digest(export: ExportInfo, hashes: FileHashes | None = None) -> str:
    """A 32-hex-digit fingerprint of the export's files (names and MD5s).

    A model version records it in its description, so a re-deploy can tell "same" from
    "different" content. ``hashes`` reuses digests computed before (a fresh cache if None).
    """
    hashes = hashes or FileHashes()
    digest = hashlib.sha256()
    for rel in export.files:
        digest.update(f"{rel}\0{hashes.md5(export.path / rel)}\n".encode())
    return digest.hexdigest()[:32]


def _same_content(blob: Any, path: Path, hashes: FileHashes) -> bool:
    if blob.size != path.stat().st_size:
        return False
    if blob.md5_hash:
        return blob.md5_hash == hashes.md5(path)
    return bool(blob.crc32c) and blob.crc32c == hashes.crc32c(path)


def existing_objects(bucket: Any, prefix: str) -> dict[str, Any]:
    """Object name → blob for everything under ``prefix``; empty when the bucket is missing."""
    try:
        return call(
            f"list gs://{bucket.name}/{prefix}",
            lambda: {b.name: b for b in bucket.list_blobs(prefix=prefix)},
        )
    except NotFound:
        return {}


def pending_files(
    bucket: Any, export: ExportInfo, prefix: str, hashes: FileHashes | None = None
) -> tuple[list[str], list[str]]:
    """(files to upload, files already there with the same digest), as export-relative paths.

    Reads the bucket listing only; writes nothing (``plan`` uses it). ``hashes`` as in
    :func:`export_digest`.
    """
    hashes = hashes or FileHashes()
    there = existing_objects(bucket, prefix)
    upload, skip = [], []
    for rel in export.files:
        blob = there.get(prefix + rel)
        same = blob is not None and _same_content(blob, export.path / rel, hashes)
        (skip if same else upload).append(rel)
    return upload, skip


def _write_resumable(blob: Any, path: Path, chunk_size: int, report: Any) -> None:
    with blob.open("wb", chunk_size=chunk_size, checksum="crc32c") as writer, path.open("rb") as f:
        while block := f.read(chunk_size):
            writer.write(block)
            report(len(block))


def upload_export(
    bucket: Any,
    export: ExportInfo,
    prefix: str,
    *,
    chunk_size: int,
    progress: Progress,
    hashes: FileHashes | None = None,
) -> UploadResult:
    """Upload ``export`` under ``prefix`` in ``bucket``; skip objects already identical.

    Objects under ``prefix`` that are not part of the export (left by an earlier, different
    attempt) are deleted, so the artifact directory holds exactly the export. Blocks until
    every object is written; progress counts skipped files as done. ``hashes`` as in
    :func:`export_digest`.
    """
    hashes = hashes or FileHashes()
    there = existing_objects(bucket, prefix)
    label = gs_uri(bucket.name, prefix)
    total = export.total_bytes
    done = 0
    uploaded, skipped = [], []

    def report(n: int) -> None:
        nonlocal done
        done += n
        progress.transfer(label, done, total)

    for rel in export.files:
        path = export.path / rel
        name = prefix + rel
        blob = there.pop(name, None)
        if blob is not None and _same_content(blob, path, hashes):
            skipped.append(name)
            report(path.stat().st_size)
            continue
        write = partial(_write_resumable, bucket.blob(name), path, chunk_size, report)
        call(f"upload {gs_uri(bucket.name, name)}", write)
        uploaded.append(name)
    removed = sorted(there)
    for name in removed:
        call(f"delete {gs_uri(bucket.name, name)}", there[name].delete)
    progress.transfer(label, total, total)
    return UploadResult(label, tuple(uploaded), tuple(skipped), tuple(removed))


def delete_objects(bucket: Any, prefix: str) -> list[str]:
    """Delete every object under ``prefix``; returns their gs:// URIs (idempotent)."""
    removed = []
    for name, blob in existing_objects(bucket, prefix).items():
        try:
            call(f"delete {gs_uri(bucket.name, name)}", blob.delete)
        except NotFound:
            continue
        removed.append(gs_uri(bucket.name, name))
    return removed


#: Cloud Storage multi-regions and the Vertex region prefixes inside each
_MULTI_REGIONS = {"US": ("us-",), "EU": ("europe-",), "ASIA": ("asia-",)}


def check_bucket_location(bucket: Any, region: str) -> str | None:
    """Is ``bucket`` where a Vertex AI service in ``region`` can read it? Reads its metadata.

    A bucket in ``region`` is fine. A multi-region bucket (``US``, ``EU``, ``ASIA``) holding
    ``region`` may be refused by the regional service (clouds.md F2): returns a warning text.
    Anything else fails on the real service, so it is refused here, before any upload.

    Raises:
        ConfigError: the bucket does not exist, or is in another location than ``region``.
    """
    try:
        call(f"read bucket gs://{bucket.name}", bucket.reload)
    except NotFound:
        raise ConfigError(
            f"bucket gs://{bucket.name} does not exist",
            hint=f"create it in {region} (gcloud storage buckets create gs://{bucket.name} "
            f"--location={region}) or set targets.gcp.bucket",
            provider=PROVIDER,
        ) from None
    location = (bucket.location or "").upper()
    if location == region.upper():
        return None
    if region.lower().startswith(_MULTI_REGIONS.get(location, ())):
        return (
            f"bucket gs://{bucket.name} is in the multi-region {location}; Vertex AI in "
            f"{region} may refuse it (a bucket in {region} is safe)"
        )
    raise ConfigError(
        f"bucket gs://{bucket.name} is in {location or 'an unknown location'}, not in the "
        f"Vertex AI region {region}: Vertex cannot use an export stored there",
        hint=f"use a bucket in {region} (targets.gcp.bucket), or set targets.gcp.region to the "
        "bucket's region",
        provider=PROVIDER,
    )
