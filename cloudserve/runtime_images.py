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

:func:`build` and :func:`push` do the Docker work of ``cloudserve image build|push`` through the
docker SDK (the ``docker`` extra, imported only inside them); the tests' Docker support
(``tests/dockerd.py``) builds the image with the same :func:`build`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudserve.errors import ConfigError, ProviderError

#: the repository name cloudserve pushes the runtime image to inside a registry
REPOSITORY_NAME = "cloudserve-runtime"
#: the pip package that provides TensorFlow in each variant
TF_PACKAGES = {"cpu": "tensorflow-cpu", "gpu": "tensorflow[and-cuda]"}
#: the repository root: the build context of runtime_image/Dockerfile
SOURCE_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "runtime_image/Dockerfile"
_TF_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
#: prints the TensorFlow version inside a built image (run with the image's venv python)
_TF_VERSION_PROBE = (
    "import importlib.metadata as m\n"
    "for name in ('tensorflow-cpu', 'tensorflow'):\n"
    "    try:\n"
    "        print(m.version(name)); break\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
)


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
    path) for ``variant``, and for ``tf_version`` ("2.21") when given; None when none was.

    ``*`` in the prefix matches within one name part, for targets that know the registry only
    by pattern before any network call (``*.dkr.ecr.us-east-1.amazonaws.com``: any account).
    """
    prefix = registry_prefix.rstrip("/")
    pattern = re.compile(
        "".join("[^./]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", prefix))
        + "(/.*)?"
    )
    matches = [
        p
        for p in _load()
        if pattern.fullmatch(p.repository)
        and p.variant == variant
        and (tf_version is None or p.tf_version == tf_version)
    ]
    return max(matches, key=lambda p: p.pushed_at, default=None)


def find_serving(
    registry_prefix: str, *, variant: str, tf_minor: tuple[int, int] | None
) -> PushedImage | None:
    """The push that serves an export written by TF ``tf_minor``: the newest with that TF
    version, else the newest whose TF is at least as new (a newer runtime loads an older
    export); None when no such image was pushed."""
    tf_version = f"{tf_minor[0]}.{tf_minor[1]}" if tf_minor else None
    pushed = find(registry_prefix, variant=variant, tf_version=tf_version)
    if pushed is None:
        newest = find(registry_prefix, variant=variant)
        if newest is not None and (tf_minor is None or _minor(newest.tf_version) >= tf_minor):
            pushed = newest
    return pushed


def _minor(version: str) -> tuple[int, int]:
    major, _, rest = version.partition(".")
    minor = rest.split(".", 1)[0]
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (0, 0)


def push_command(target: str, *, variant: str = "cpu", tf_version: str | None = None) -> str:
    """The exact command that builds and pushes the runtime image for ``target``."""
    parts = ["cloudserve", "image", "push", "--target", target, "--variant", variant]
    if tf_version:
        parts += ["--tf-version", tf_version]
    return " ".join(parts)


@dataclass(frozen=True)
class BuiltImage:
    """A runtime image built by :func:`build`."""

    id: str  # "sha256:..."
    tags: tuple[str, ...]
    size: int  # bytes, uncompressed
    variant: str
    tf_version: str  # "2.21.0", read from the image
    seconds: float

    @property
    def tf_minor(self) -> str:
        """The major.minor TensorFlow version ("2.21"), the key of push records."""
        return ".".join(self.tf_version.split(".")[:2])


def default_tag(variant: str, tf_version: str, *, gcs: bool = False) -> str:
    """The local tag of a built image: ``cloudserve-runtime:tf2.21-cpu`` (``-gcs`` appended
    for the build that reads ``gs://`` model URIs)."""
    minor = ".".join(tf_version.split(".")[:2])
    return f"{REPOSITORY_NAME}:tf{minor}-{variant}" + ("-gcs" if gcs else "")


def build_args(
    variant: str,
    *,
    tf_version: str | None = None,
    base_image: str | None = None,
    extra_pip: str | None = None,
    extra_ca_certs: str | None = None,
    gcs: bool = False,
) -> dict[str, str]:
    """The ``--build-arg`` values of runtime_image/Dockerfile for a variant.

    ``gcs`` adds google-cloud-storage, which the runtime needs to serve ``gs://`` model URIs
    (Vertex AI's ``AIP_STORAGE_URI``).

    Raises:
        ConfigError: unknown variant or a TF version that is not ``X.Y`` / ``X.Y.Z``.
    """
    if variant not in TF_PACKAGES:
        raise ConfigError(
            f"unknown runtime image variant {variant!r}", hint="use --variant cpu or gpu"
        )
    args = {"TF_PACKAGE": TF_PACKAGES[variant]}
    if tf_version:
        if not _TF_VERSION.match(tf_version):
            raise ConfigError(
                f"--tf-version {tf_version!r} is not a version",
                hint="give major.minor (2.21, newest patch) or an exact version (2.21.0)",
            )
        args["TF_VERSION"] = tf_version
    if base_image:
        args["BASE_IMAGE"] = base_image
    pip = " ".join(p for p in (extra_pip, "google-cloud-storage" if gcs else None) if p)
    if pip:
        args["EXTRA_PIP"] = pip
    if extra_ca_certs:
        args["EXTRA_CA_CERTS"] = extra_ca_certs
    return args


def docker_client(base_url: str | None = None) -> Any:
    """A docker SDK client for ``base_url`` (default: ``DOCKER_HOST`` or the local socket).

    Raises:
        MissingDependency: the ``docker`` extra is not installed.
        ProviderError: no Docker engine answers.
    """
    try:
        import docker
    except ImportError as error:
        from cloudserve.errors import MissingDependency

        raise MissingDependency("docker (the docker SDK)", "docker") from error
    try:
        client = (
            docker.DockerClient(base_url=base_url, version="auto")
            if base_url
            else docker.from_env(version="auto")
        )
        client.ping()
    except docker.errors.DockerException as error:
        where = base_url or os.environ.get("DOCKER_HOST") or "the local socket"
        raise ProviderError(
            f"no Docker engine answers at {where}: {error}",
            hint="start Docker, or set DOCKER_HOST to a reachable engine",
            provider="docker",
        ) from error
    return client


def build(
    client: Any,
    *,
    variant: str = "cpu",
    tf_version: str | None = None,
    tags: Iterable[str] = (),
    base_image: str | None = None,
    extra_pip: str | None = None,
    extra_ca_certs: str | None = None,
    gcs: bool = False,
    network_mode: str | None = None,
    context: Path = SOURCE_ROOT,
    progress: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Builds runtime_image/Dockerfile with the classic builder; blocks until it is done.

    Layers are reused from earlier builds (the engine's cache), so a rebuild after a runtime
    code change takes seconds. The image is tagged with every tag in ``tags`` and with
    :func:`default_tag` for the TensorFlow version found inside it.

    Args:
        client: a docker SDK ``DockerClient``.
        variant: "cpu" or "gpu".
        tf_version: "2.21" (newest patch) or "2.21.0"; None: the newest the runtime extra allows.
        tags: extra ``repo:tag`` names.
        base_image, extra_pip, extra_ca_certs, gcs: see :func:`build_args`.
        network_mode: the build containers' network ("host" on engines without a bridge).
        context: the repository root holding runtime_image/Dockerfile.
        progress: called with each line of build output.

    Raises:
        ConfigError: bad variant/version, or ``context`` has no runtime_image/Dockerfile.
        ProviderError: the build failed (the message has the failing step's last output).
    """
    args = build_args(
        variant,
        tf_version=tf_version,
        base_image=base_image,
        extra_pip=extra_pip,
        extra_ca_certs=extra_ca_certs,
        gcs=gcs,
    )
    if not (context / DOCKERFILE).is_file():
        raise ConfigError(
            f"{context / DOCKERFILE} not found: the runtime image is built from a source checkout",
            hint="run from a clone of the cloudserve repository",
        )
    started = time.monotonic()
    image_id = None
    tail: list[str] = []
    stream = client.api.build(
        path=str(context),
        dockerfile=DOCKERFILE,
        buildargs=args,
        rm=True,
        forcerm=True,
        decode=True,
        network_mode=network_mode,
    )
    for chunk in stream:
        if "error" in chunk:
            detail = "".join(tail[-15:]).rstrip()
            raise ProviderError(
                f"runtime image build failed: {chunk['error'].strip()}",
                hint=(detail + "\n" if detail else "")
                + "fix the step above and re-run; finished layers are cached",
                provider="docker",
            )
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        text = chunk.get("stream") or chunk.get("status")
        if text:
            tail = (tail + [text])[-40:]
            if progress:
                for line in text.splitlines():
                    if line.strip():
                        progress(line.rstrip())
            found = re.search(r"Successfully built ([0-9a-f]+)", text)
            if found and image_id is None:
                image_id = found.group(1)
    if image_id is None:
        raise ProviderError("the engine reported no image id for the build", provider="docker")
    image = client.images.get(image_id)
    inside = client.containers.run(
        image.id,
        entrypoint=["python", "-c", _TF_VERSION_PROBE],
        network_mode="none",
        remove=True,
    )
    found_version = inside.decode().strip()
    all_tags = [*tags, default_tag(variant, found_version, gcs=gcs)]
    for tag in all_tags:
        repository, _, name = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "")
        image.tag(repository, name or "latest")
    image.reload()
    return BuiltImage(
        id=image.id,
        tags=tuple(image.tags),
        size=int(image.attrs.get("Size", 0)),
        variant=variant,
        tf_version=found_version,
        seconds=round(time.monotonic() - started, 1),
    )


def push(
    client: Any,
    image: str,
    repository: str,
    *,
    tag: str,
    auth_config: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Tags ``image`` as ``repository:tag``, pushes it and returns the registry's digest.

    Idempotent: pushing the same image again uploads nothing and returns the same digest.

    Raises:
        ProviderError: the registry refused the push (auth, network, missing repository).
    """
    client.api.tag(image, repository, tag)
    digest = None
    last_status: dict[str, str] = {}
    for chunk in client.api.push(
        repository, tag=tag, stream=True, decode=True, auth_config=dict(auth_config or {}) or None
    ):
        if "error" in chunk:
            raise ProviderError(
                f"push of {repository}:{tag} failed: {chunk['error'].strip()}",
                hint="check the registry URL and credentials (cloudserve image push --help)",
                provider="docker",
            )
        if "aux" in chunk and "Digest" in chunk["aux"]:
            digest = chunk["aux"]["Digest"]
        status = chunk.get("status")
        if status and progress:
            layer = chunk.get("id", "")
            if last_status.get(layer) != status:
                last_status[layer] = status
                progress(f"{layer}: {status}" if layer else status)
    if not digest:
        raise ProviderError(
            f"the registry returned no digest for {repository}:{tag}", provider="docker"
        )
    return digest
