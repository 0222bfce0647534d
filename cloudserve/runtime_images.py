"""Where the cloudserve runtime image was pushed: digests recorded by ``cloudserve image push``.

A target that has no managed container for an export serves it with the runtime image from
the target's own registry (ECR, Artifact Registry, ACR, any registry for docker/kubernetes),
referenced by digest. ``cloudserve image push`` records each push here; preflight and plan
look the reference up with :func:`find`, and when nothing was pushed the fix they print is
:func:`push_command`.

The record is a JSON file (``$CLOUDSERVE_HOME/images.json``, default ``~/.cloudserve``)::

    {"pushed": [{"repository": "123.dkr.ecr.us-east-1.amazonaws.com/cloudserve-runtime",
                 "digest": "sha256:...", "variant": "cpu", "tf_version": "2.21",
                 "pushed_at": "2026-12-07T15:00:00Z"}]}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

#: the repository name cloudserve pushes the runtime image to inside a registry
REPOSITORY_NAME = "cloudserve-runtime"


@dataclass(frozen=True)
class PushedImage:
    """One pushed runtime image."""

    repository: str  # registry host + path, no tag or digest
    digest: str  # "sha256:<64 hex>"
    variant: str  # "cpu" | "gpu"
    tf_version: str  # "2.21" (major.minor of the TensorFlow inside)
    pushed_at: str

    @property
    def reference(self) -> str:
        """The pull reference pinned by digest: ``<repository>@sha256:...``."""
        return f"{self.repository}@{self.digest}"


def store_path() -> Path:
    """The record file (``$CLOUDSERVE_HOME/images.json``, default ``~/.cloudserve``)."""
    home = os.environ.get("CLOUDSERVE_HOME")
    return Path(home) if home else Path.home() / ".cloudserve"


def _load() -> list[PushedImage]:
    path = store_path() / "images.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [PushedImage(**entry) for entry in data.get("pushed", [])]


def record(repository: str, digest: str, *, variant: str, tf_version: str) -> PushedImage:
    """Remember a push (replacing an earlier record of the same repository/variant/TF)."""
    pushed = PushedImage(
        repository=repository.rstrip("/"),
        digest=digest,
        variant=variant,
        tf_version=tf_version,
        pushed_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    kept = [
        p
        for p in _load()
        if (p.repository, p.variant, p.tf_version)
        != (pushed.repository, pushed.variant, pushed.tf_version)
    ]
    directory = store_path()
    directory.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"pushed": [asdict(p) for p in [*kept, pushed]]}, indent=2)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
        handle.write(body)
    os.replace(handle.name, directory / "images.json")
    return pushed


def find(
    registry_prefix: str, *, variant: str = "cpu", tf_version: str | None = None
) -> PushedImage | None:
    """The newest recorded push under ``registry_prefix`` (a registry host, optionally with a
    path) for ``variant``, and for ``tf_version`` ("2.21") when given; None when none was."""
    prefix = registry_prefix.rstrip("/")
    matches = [
        p
        for p in _load()
        if (p.repository == prefix or p.repository.startswith(prefix + "/"))
        and p.variant == variant
        and (tf_version is None or p.tf_version == tf_version)
    ]
    return max(matches, key=lambda p: p.pushed_at, default=None)


def push_command(target: str, *, variant: str = "cpu", tf_version: str | None = None) -> str:
    """The exact command that builds and pushes the runtime image for ``target``."""
    parts = ["cloudserve", "image", "push", "--target", target, "--variant", variant]
    if tf_version:
        parts += ["--tf-version", tf_version]
    return " ".join(parts)
