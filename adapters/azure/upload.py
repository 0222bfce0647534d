"""Export upload to the workspace datastore's blob container, in the TF Serving layout.

A version's files go under ``<prefix>/<model>/<version>/<model>/<version>/``: the registered
model is the ``<model>`` folder, which Azure mounts at
``/var/azureml-app/azureml-models/<model>/<version>/<model>/``, so the serving container finds
``$MODEL_BASE_PATH/$MODEL_NAME/<version>/saved_model.pb`` as TF Serving expects. Files whose
blob already holds the same content (MD5) are skipped, so an interrupted upload resumes.
Each file is hashed once per adapter: ``plan`` and ``deploy`` pass the adapter's
:class:`~cloudserve.file_hashes.FileHashes`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cloudserve.file_hashes import FileHashes
from cloudserve.progress import Progress
from cloudserve.records import ExportInfo
from cloudserve_adapters.azure.sdk import call, require

CHUNK = 4 * 1024 * 1024


def version_prefix(prefix: str, model: str, version: str) -> str:
    """The blob folder of one version: ``<prefix>/<model>/<version>/``."""
    return f"{prefix.strip('/')}/{model}/{version}/"


def model_folder(prefix: str, model: str, version: str) -> str:
    """The registered model folder: ``<prefix>/<model>/<version>/<model>/``."""
    return f"{version_prefix(prefix, model, version)}{model}/"


def blob_names(export: ExportInfo, prefix: str, model: str, version: str) -> dict[str, Path]:
    """Blob name -> local file, for every file of the export."""
    base = f"{model_folder(prefix, model, version)}{version}/"
    return {base + name: export.path / name for name in export.files}


def file_md5(path: Path) -> bytes:
    """The MD5 digest of a file (what Blob Storage keeps as Content-MD5)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.digest()


def export_digest(export: ExportInfo, hashes: FileHashes | None = None) -> str:
    """A content digest of the export (sha256 over its files' names and MD5s)."""
    hashes = hashes or FileHashes()
    digest = hashlib.sha256()
    for name in export.files:
        digest.update(name.encode() + b"\0" + hashes.get(export.path / name, file_md5))
    return digest.hexdigest()


def stored_md5s(container: Any, prefix: str) -> dict[str, bytes]:
    """Blob name -> stored Content-MD5 (b"" when none) for every blob under ``prefix``."""
    blobs = call("list blobs", lambda: list(container.list_blobs(name_starts_with=prefix)))
    return {b.name: bytes(b.content_settings.content_md5 or b"") for b in blobs}


def pending(
    container: Any, files: dict[str, Path], prefix: str, hashes: FileHashes | None = None
) -> tuple[list[str], list[str]]:
    """(blobs to upload, blobs already holding the same content); ``files`` lie under
    ``prefix``."""
    hashes = hashes or FileHashes()
    stored = stored_md5s(container, prefix)
    upload, skip = [], []
    for name, path in files.items():
        (skip if stored.get(name) == hashes.get(path, file_md5) else upload).append(name)
    return upload, skip


def upload_export(
    container: Any,
    files: dict[str, Path],
    prefix: str,
    *,
    label: str,
    progress: Progress,
    hashes: FileHashes | None = None,
) -> list[str]:
    """Upload what is missing or different; report bytes moved. Returns the blobs written.

    Idempotent: blobs with the same MD5 are skipped. Blocks until every blob is written.
    """
    blob_module = require("azure.storage.blob")
    hashes = hashes or FileHashes()
    to_upload, _ = pending(container, files, prefix, hashes)
    total = sum(files[name].stat().st_size for name in to_upload)
    done = 0
    progress.transfer(label, 0, total)
    for name in to_upload:
        path = files[name]
        md5 = hashes.get(path, file_md5)
        settings = blob_module.ContentSettings(content_md5=bytearray(md5))
        with path.open("rb") as handle:
            call(
                f"upload {name}",
                lambda h=handle, n=name, s=settings: container.upload_blob(
                    n, h, overwrite=True, content_settings=s
                ),
            )
        done += path.stat().st_size
        progress.transfer(label, done, total)
    return to_upload


def delete_prefix(container: Any, prefix: str) -> list[str]:
    """Delete every blob under ``prefix``; returns their names (idempotent)."""
    names = list(stored_md5s(container, prefix))
    for name in names:
        call(f"delete {name}", lambda n=name: container.delete_blob(n))
    return names
