"""The ``docker`` target: the self-hosted TF Serving deployment, managed.

What TF Serving's Docker tutorials teach (``docker run -p 8501:8501 -v DIR:/models/NAME
tensorflow/serving``), with cloudserve's runtime image and verbs:

* one runtime container per model (``cloudserve-<model>``) on a Docker host (the local engine,
  ``DOCKER_HOST`` or ``targets.docker.docker_host``), with a restart policy, published ports, a
  memory limit from the export's memory estimate, and GPUs (``--gpus``) when configured;
* each model has its own TF Serving model repository under ``targets.docker.repository``,
  bind-mounted read-only at the same path; deploy copies the version in, and the container
  hot-loads it (model config reload, no restart);
* default version, rollback, delete, predict and the repository layout are the local
  target's own (:class:`~cloudserve_adapters.local.adapter.LocalAdapter`): the ``default``
  version label, ``state.json`` rollback history, atomic copies. Only the runtime differs: a
  container instead of a process.

Deleting a model unloads it, removes its files and removes its container.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cloudserve import runtime_images
from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import ProviderError
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord
from cloudserve_adapters.docker.config import DockerConfig
from cloudserve_adapters.docker.container import ModelContainer, container_name
from cloudserve_adapters.local.adapter import LocalAdapter
from cloudserve_adapters.local.repository import Repository, check_names

_LOCAL_TAG = re.compile(rf"^{runtime_images.REPOSITORY_NAME}:tf(\d+)\.(\d+)-(cpu|gpu)$")


@dataclass(frozen=True)
class DockerClients:
    """The seam tests use: which Docker engine to talk to.

    Attributes:
        base_url: the engine's URL; None: ``targets.docker.docker_host``, else ``DOCKER_HOST``.
    """

    base_url: str | None = None


class SharedReadRepository(Repository):
    """A model repository whose files the container's unprivileged user can read."""

    def install_version(self, source: Any, model: str, version: str, on_progress: Any = None):
        """:meth:`Repository.install_version`, then directories 755 and files 644."""
        target = super().install_version(source, model, version, on_progress)
        for path in [target.parent, target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return target


class DockerAdapter(LocalAdapter):
    """Deploys each model to its own cloudserve runtime container on a Docker host.

    Args:
        config: a :class:`DockerConfig`.
        clients: a :class:`DockerClients` (default: the configured engine).
        progress: where copies and waits report.
    """

    name = "docker"
    config_class = DockerConfig  # type: ignore[assignment]
    extra = "docker"
    features = frozenset({Feature.GPU})

    def __init__(
        self,
        config: DockerConfig,
        *,
        clients: DockerClients | None = None,
        progress: Progress | None = None,
    ):
        Adapter.__init__(self, config, clients=clients or DockerClients(), progress=progress)
        self.config: DockerConfig = config  # type: ignore[assignment]
        self._docker: Any | None = None
        self._export: ExportInfo | None = None

    # ------------------------------------------------------------------ per-model runtime

    def docker(self) -> Any:
        """The docker SDK client (created on first use)."""
        if self._docker is None:
            url = self.clients.base_url or self.config.docker_host
            self._docker = runtime_images.docker_client(url)
        return self._docker

    @contextlib.contextmanager
    def _model(self, model: str, export: ExportInfo | None = None) -> Iterator[None]:
        """Point the local target's machinery at ``model``'s repository and container."""
        check_names(model)
        self.repository = SharedReadRepository(self.config.repository / model)
        self.runtime = ModelContainer(
            self.docker(),
            self.repository,
            self.config,
            model,
            image=lambda: self._image(export),
            memory_mb=lambda: self._memory_mb(export),
        )
        try:
            yield
        finally:
            del self.repository, self.runtime

    def _image(self, export: ExportInfo | None) -> str:
        """``targets.docker.image``, else the local runtime image for the export's TF."""
        if self.config.image:
            return self.config.image
        image, _ = self._local_image(export)
        if image is None:
            raise ProviderError(
                "no cloudserve runtime image on the Docker host",
                hint=self._build_hint(export),
                provider=self.name,
            )
        return image

    def _local_image(self, export: ExportInfo | None) -> tuple[str | None, list[str]]:
        """The local ``cloudserve-runtime:tf<X.Y>-<variant>`` serving ``export`` (the same TF
        minor, else the newest newer one: TF loads older SavedModels), and every such tag."""
        variant = "gpu" if self.config.gpus is not None else "cpu"
        tags = []
        for image in self.docker().images.list(name=runtime_images.REPOSITORY_NAME):
            tags += [t for t in image.tags if (m := _LOCAL_TAG.match(t)) and m[3] == variant]
        wanted = export.tf_minor if export else None

        def minor(tag: str) -> tuple[int, int]:
            match = _LOCAL_TAG.match(tag)
            assert match is not None
            return int(match[1]), int(match[2])

        usable = [t for t in tags if wanted is None or minor(t) >= wanted]
        exact = [t for t in usable if wanted is not None and minor(t) == wanted]
        chosen = exact[0] if exact else max(usable, key=minor, default=None)
        return chosen, tags

    def _build_hint(self, export: ExportInfo | None) -> str:
        minor = export.tf_minor if export else None
        version = f" --tf-version {minor[0]}.{minor[1]}" if minor else ""
        variant = " --variant gpu" if self.config.gpus is not None else ""
        return f"build it: cloudserve image build{variant}{version} (or set targets.docker.image)"

    def _memory_mb(self, export: ExportInfo | None) -> int | None:
        if self.config.memory_mb:
            return self.config.memory_mb
        if export is None:
            return None
        from cloudserve.preflight import estimate_memory_mb

        return int(self.config.memory_factor * estimate_memory_mb(export)) + 1

    # ------------------------------------------------------------------ checks and plan

    def instance_memory_mb(self) -> int | None:
        """The configured container memory limit (None: it follows the estimate)."""
        return self.config.memory_mb

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Names as the local target checks them, and a runtime image on the Docker host."""
        findings = super().preflight(spec, export)
        if not self.config.image:
            image, _ = self._local_image(export)
            if image is None:
                minor = export.tf_minor
                findings.append(
                    Finding(
                        "docker.image",
                        "error",
                        "no cloudserve runtime image for TF "
                        f"{'.'.join(map(str, minor)) if minor else '(unknown)'} or newer on the "
                        "Docker host",
                        fix=self._build_hint(export),
                    )
                )
        return findings

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """The local target's plan for the model's repository, with the container in it."""
        with self._model(spec.model, export):
            plan = super().plan(spec, export)
            actions = []
            for action in plan.actions:
                if action.resource == "local-runtime":
                    image = self.config.image or self._local_image(export)[0] or "(none)"
                    memory = self._memory_mb(export)
                    action = PlanAction(
                        "create",
                        "docker-container",
                        container_name(spec.model),
                        f"{image}, memory {memory or 'unlimited'} MiB, "
                        f"restart {self.config.restart_policy}",
                    )
                actions.append(action)
            return Plan(self.name, plan.model, plan.version, tuple(actions))

    # ------------------------------------------------------------------ the contract

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """The local target's deploy into the model's repository; its container is created
        (or its memory limit raised) first. See :meth:`LocalAdapter.deploy`."""
        self.ensure_deployable(spec, export)
        with self._model(spec.model, export):
            return super().deploy(spec, export, wait=wait, timeout=timeout)

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """See :meth:`LocalAdapter.set_default`."""
        with self._model(model):
            return super().set_default(model, version, timeout=timeout)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """See :meth:`LocalAdapter.rollback`."""
        with self._model(model):
            return super().rollback(model, timeout=timeout)

    def list_versions(self, model: str) -> list[VersionRecord]:
        """See :meth:`LocalAdapter.list_versions`."""
        with self._model(model):
            return super().list_versions(model)

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`LocalAdapter.predict` (a stopped container is started again)."""
        with self._model(model):
            return super().predict(model, payload, version=version)

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The model container's last ``lines`` log lines (``docker logs``); [] when none."""
        try:
            with self._model(model):
                return self.runtime.log_tail(lines).splitlines()
        except Exception:  # noqa: BLE001 - never raises, per the contract
            return []

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """See :meth:`LocalAdapter.delete`; deleting the model also removes its container and
        its repository directory."""
        with self._model(model):
            removed = super().delete(model, version)
            if version is None or not self.repository.versions_on_disk(model):
                if self.runtime.remove():
                    removed.append(container_name(model))
                shutil.rmtree(self.repository.root, ignore_errors=True)
            return removed
