"""The model repository on disk: TF Serving's layout plus cloudserve's bookkeeping.

::

    <root>/models/<model>/<version>/saved_model.pb   one SavedModel per numeric version dir
    <root>/models.config                            text ModelServerConfig the runtime serves
    <root>/state.json                               default-version history per model
    <root>/runtime.json, runtime.log                the background runtime (runtime_process)
    <root>/.staging/                                copies in progress, same filesystem
    <root>/.lock                                    serialises changes between processes

Every change a polling runtime could observe is made atomic with ``os.rename``/``os.replace``
of something fully written under ``.staging`` or beside its target.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cloudserve.errors import ConfigError
from cloudserve.export import export_files

MODEL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_CHUNK = 1 << 20


def model_name_problem(model: str) -> str | None:
    """Why ``model`` cannot name a local model, or None when it can."""
    if MODEL_NAME.fullmatch(model):
        return None
    return (
        f"model name {model!r} is not valid here: use 1-128 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit"
    )


def version_problem(version: str) -> str | None:
    """Why ``version`` cannot name a TF Serving version directory, or None when it can."""
    if version.isascii() and version.isdigit() and 0 < int(version) < 2**63:
        return None
    return f"version {version!r} is not valid here: TF Serving needs a positive integer"


def check_names(model: str, version: str | None = None) -> None:
    """Raise ConfigError for a model name or version that cannot be a directory name."""
    problem = model_name_problem(model)
    if problem is None and version is not None:
        problem = version_problem(version)
    if problem:
        raise ConfigError(problem, provider="local")


def tree_digest(path: Path) -> str:
    """SHA-256 over every file's relative path and bytes under ``path`` (sorted, stable)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old or the new file."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class Repository:
    """Paths and file operations of one model repository root.

    Args:
        root: the repository directory; made absolute (the runtime needs absolute base paths).
    """

    def __init__(self, root: Path):
        self.root = root.expanduser().resolve()
        self.models_dir = self.root / "models"
        self.config_file = self.root / "models.config"
        self.state_file = self.root / "state.json"
        self.staging_dir = self.root / ".staging"

    # ------------------------------------------------------------------ layout

    def model_dir(self, model: str) -> Path:
        return self.models_dir / model

    def version_dir(self, model: str, version: str) -> Path:
        return self.model_dir(model) / str(int(version))

    def versions_on_disk(self, model: str) -> list[str]:
        """Numeric version directories of ``model``, newest first ([] when none)."""
        model_dir = self.model_dir(model)
        if not model_dir.is_dir():
            return []
        numbers = {int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}
        return [str(n) for n in sorted(numbers, reverse=True)]

    def models_on_disk(self) -> list[str]:
        """Model directories present under ``models/``, sorted."""
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if p.is_dir())

    # ------------------------------------------------------------------ changes

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the repository's exclusive lock (blocks while another process holds it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def install_version(
        self,
        source: Path,
        model: str,
        version: str,
        on_progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Copy ``source`` in as ``models/<model>/<version>``, atomically.

        The copy is written under ``.staging/`` and renamed into place, so a polling server
        sees either no version directory or a complete one. ``on_progress`` gets the bytes
        copied so far. Raises ConfigError if the version directory already exists, and
        PreflightError for a symbolic link leaving ``source`` or a link loop.
        """
        export_files(source)  # refuses links leaving the export and link loops (exit 3)
        target = self.version_dir(model, version)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        staged = self.staging_dir / uuid.uuid4().hex
        copied = 0

        def copy(src: str, dst: str) -> None:
            nonlocal copied
            shutil.copy2(src, dst)
            copied += os.path.getsize(dst)
            if on_progress:
                on_progress(copied)

        try:
            shutil.copytree(source, staged, copy_function=copy)
            os.utime(staged)  # the version directory's mtime says when it was deployed
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staged, target)
            except OSError as e:
                raise ConfigError(
                    f"{target} already exists", hint="deploy as a new version", provider="local"
                ) from e
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return target

    def remove_tree(self, path: Path) -> bool:
        """Rename ``path`` out of sight into ``.staging``, then delete it. False if absent."""
        if not path.exists():
            return False
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        doomed = self.staging_dir / f"delete-{uuid.uuid4().hex}"
        os.rename(path, doomed)
        shutil.rmtree(doomed)
        return True

    # ------------------------------------------------------------------ state

    def read_state(self) -> dict[str, Any]:
        """The bookkeeping in ``state.json`` (``{"models": {}}`` when there is none)."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"models": {}}
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot read {self.state_file}: {e}",
                hint="fix or delete the file (it only holds rollback history)",
                provider="local",
            ) from e
        state.setdefault("models", {})
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace ``state.json`` atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def default_history(self, model: str) -> list[str]:
        """Earlier default versions of ``model``, oldest first."""
        return list(self.read_state()["models"].get(model, {}).get("default_history", []))

    def set_default_history(self, model: str, history: list[str]) -> None:
        """Store ``history`` for ``model`` (an empty history removes the model's entry)."""
        state = self.read_state()
        if history:
            state["models"].setdefault(model, {})["default_history"] = history
        else:
            state["models"].pop(model, None)
        self.write_state(state)
