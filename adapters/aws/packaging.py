"""model.tar.gz as SageMaker's TensorFlow Serving container expects it, built reproducibly.

Layout (aws/sagemaker-tensorflow-serving-container README)::

    <version>/saved_model.pb      version: an integer > 0 (TF Serving's version directory)
    <version>/variables/...
    <version>/assets/...
    code/inference.py             optional pre/post-processing, with requirements.txt

The same export always gives the same bytes (sorted entries, fixed mtime/uid/gid/mode,
gzip header mtime 0 and no file name), so the tarball's SHA-256 identifies the content and
an unchanged re-deploy can skip the upload.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cloudserve.errors import ConfigError
from cloudserve.export import export_files

CODE_DIR = "code"
_FILE_MODE = 0o644
_DIR_MODE = 0o755


@dataclass(frozen=True)
class Artifact:
    """A built model.tar.gz on local disk."""

    path: Path
    sha256: str
    size: int


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: BinaryIO):
        self._sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._sink.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def tf_serving_version(version: str) -> int:
    """The version directory name for ``version``: an integer > 0.

    Raises:
        ConfigError: ``version`` is not a positive integer (TF Serving cannot load it).
    """
    if not version.isdigit() or int(version) <= 0:
        raise ConfigError(
            f"version '{version}' cannot be a TF Serving version directory: "
            "it must be an integer > 0",
            hint="deploy with --version 1 (or another positive integer)",
        )
    return int(version)


def _entries(root: Path, arc_root: str) -> list[tuple[str, Path]]:
    export_files(root)  # refuses links leaving ``root`` and link loops (exit 3)
    found: list[tuple[str, Path]] = [(arc_root, root)]
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            found.append((f"{arc_root}/{full.relative_to(root).as_posix()}", full))
    return sorted(found)


def _tarinfo(arcname: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_dir():
        info.type = tarfile.DIRTYPE
        info.mode = _DIR_MODE
    else:
        info.size = path.stat().st_size
        info.mode = _FILE_MODE
    return info


def build(export_dir: Path, version: str, dest: Path, *, code_dir: Path | None = None) -> Artifact:
    """Write ``dest`` (model.tar.gz) from a SavedModel directory; return its digest and size.

    Symbolic links inside the export are followed (their targets are archived as plain files);
    one leaving the export, or a link loop, raises PreflightError. Deterministic:
    building the same inputs twice gives byte-identical files.

    Raises:
        ConfigError: the version is not an integer > 0, or ``code_dir`` is not a directory.
    """
    entries = _entries(Path(export_dir), str(tf_serving_version(version)))
    if code_dir is not None:
        if not Path(code_dir).is_dir():
            raise ConfigError(f"code_dir {code_dir} is not a directory", hint="fix code_dir")
        entries += _entries(Path(code_dir), CODE_DIR)
    with open(dest, "wb") as sink:
        hashing = _HashingWriter(sink)
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0, compresslevel=6) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
        ):
            for arcname, path in entries:
                info = _tarinfo(arcname, path)
                if info.isdir():
                    tar.addfile(info)
                else:
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
    return Artifact(path=Path(dest), sha256=hashing.digest.hexdigest(), size=hashing.size)


def _fingerprint(*roots: Path | None) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime_ns) of every file under ``roots``: changes when any content does."""
    found = []
    for root in roots:
        if root is None:
            continue
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                stat = (Path(dirpath) / name).stat()
                found.append((os.path.join(dirpath, name), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


class ArtifactCache:
    """Builds each model.tar.gz once per process: ``plan`` and ``deploy`` share it.

    Keyed by the export and code directories, the version, and every file's path, size and
    mtime, so an export changed in between is built again. Tarballs live in one temporary
    directory, removed when the cache is garbage-collected or the process exits; only the
    newest tarball per (export, version) is kept.
    """

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._built: dict[tuple[str, str, str], tuple[tuple, Artifact]] = {}
        self._count = 0

    def get(
        self,
        export_dir: Path,
        version: str,
        *,
        code_dir: Path | None = None,
        on_build: Callable[[], None] | None = None,
    ) -> Artifact:
        """The tarball of ``export_dir`` as ``version``; built (calling ``on_build()`` first)
        unless an identical one was built before. Raises as :func:`build` does."""
        key = (str(Path(export_dir).resolve()), version, str(code_dir or ""))
        fingerprint = _fingerprint(Path(export_dir), Path(code_dir) if code_dir else None)
        known = self._built.get(key)
        if known is not None and known[0] == fingerprint and known[1].path.exists():
            return known[1]
        if on_build is not None:
            on_build()
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="cloudserve-")
        self._count += 1
        dest = Path(self._dir.name) / f"model-{self._count}.tar.gz"
        if known is not None:
            known[1].path.unlink(missing_ok=True)
        artifact = build(export_dir, version, dest, code_dir=code_dir)
        self._built[key] = (fingerprint, artifact)
        return artifact
