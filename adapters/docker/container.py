"""One model's runtime container: create, find, wait for, resize and remove it.

The container runs cloudserve's runtime image on the model's repository (bind-mounted
read-only at the same path), reading the model config file the adapter writes; the runtime
hot-loads new versions from it (config reload over gRPC, plus a 1 s poll). It exposes the same
``running()`` / ``ensure_running()`` / ``log_tail()`` as the local target's runtime process, so
the local target's repository and version logic drive it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from typing import Any

from cloudserve.errors import DeployTimeout, ProviderError
from cloudserve.progress import NullProgress, Progress
from cloudserve.waiting import Backoff, Interrupted, wait_until
from cloudserve_adapters.docker.config import DockerConfig
from cloudserve_adapters.local.repository import Repository, write_atomic
from cloudserve_adapters.local.runtime_process import RuntimeInfo

#: a runtime container is ready within seconds: poll often, never slower than once a second
READY_BACKOFF = Backoff(initial_s=0.2, max_s=1.0, factor=1.5)

LABEL_MODEL = "io.cloudserve.model"
LABEL_SETTINGS = "io.cloudserve.settings"
CONTAINER_GRPC = 8500
CONTAINER_REST = 8501
LOG_TAIL_LINES = 20


def container_name(model: str) -> str:
    """The runtime container of ``model``: ``cloudserve-<model>``."""
    return f"cloudserve-{model}"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ModelContainer:
    """The runtime container serving one model's repository.

    Args:
        client: a docker SDK ``DockerClient``.
        repository: the model's repository (its root is mounted into the container).
        config: the docker target's settings.
        model: the model's name.
        image: the image to create the container from (when it has to be created).
        memory_mb: the memory limit the container should have at least.
    """

    def __init__(
        self,
        client: Any,
        repository: Repository,
        config: DockerConfig,
        model: str,
        *,
        image: Callable[[], str],
        memory_mb: Callable[[], int | None],
    ):
        self.client = client
        self.repository = repository
        self.config = config
        self.model = model
        self.name = container_name(model)
        self._image = image
        self._memory_mb = memory_mb
        self.batching_file = repository.root / "batching.config"

    # ------------------------------------------------------------------ finding

    def container(self) -> Any | None:
        """The model's container (any state), or None."""
        import docker.errors

        try:
            return self.client.containers.get(self.name)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as error:
            raise ProviderError(f"Docker: {error}", provider="docker") from error

    def running(self) -> RuntimeInfo | None:
        """The container's runtime address while it runs; None otherwise. Starts nothing."""
        container = self.container()
        if container is None or container.status != "running":
            return None
        return self._info(container)

    def _info(self, container: Any) -> RuntimeInfo:
        labels = container.labels
        grpc, rest = json.loads(labels.get("io.cloudserve.ports", "[0, 0]"))
        if self.config.network != "host":
            ports = container.attrs["NetworkSettings"]["Ports"] or {}
            grpc = int(ports[f"{CONTAINER_GRPC}/tcp"][0]["HostPort"])
            rest = int(ports[f"{CONTAINER_REST}/tcp"][0]["HostPort"])
        return RuntimeInfo(
            pid=container.attrs["State"].get("Pid") or None,
            host=self.config.host,
            grpc_port=grpc,
            rest_port=rest,
            argv=tuple(container.attrs["Config"].get("Cmd") or ()),
            started=container.attrs["State"].get("StartedAt"),
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The container's last ``lines`` log lines ("" when there is no container)."""
        container = self.container()
        if container is None:
            return ""
        return container.logs(tail=lines).decode(errors="replace").rstrip("\n")

    # ------------------------------------------------------------------ starting

    def argv(self, grpc_port: int, rest_port: int) -> list[str]:
        """The runtime flags after the image's ENTRYPOINT (later flags win)."""
        args = [
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={self.repository.config_file}",
            "--model_config_file_poll_wait_seconds=1",
            "--file_system_poll_wait_seconds=1",
            "--allow_version_labels_for_unavailable_models=true",
            f"--max_num_load_retries={self.config.load_retries}",
        ]
        if self.config.enable_batching:
            args.append("--enable_batching=true")
        if self.config.batching is not None:
            args.append(f"--batching_parameters_file={self.batching_file}")
        return args

    def _settings_hash(self, image: str) -> str:
        """What the container was created with; a change recreates it."""
        settings = self.config.model_dump(
            mode="json",
            exclude={"memory_mb", "memory_factor", "startup_timeout_s", "unload_timeout_s"},
        )
        text = json.dumps({"image": image, **settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def ensure_running(self, progress: Progress | None = None) -> RuntimeInfo:
        """The running container's address; creates (or recreates after a settings change)
        and starts it, then blocks until the runtime answers ``/readyz``. Raises the errors of
        :meth:`start`."""
        progress = progress or NullProgress()
        image = self._image()
        container = self.container()
        if container is not None:
            if container.labels.get(LABEL_SETTINGS) != self._settings_hash(image):
                progress.status(f"recreating {self.name}: its settings changed")
                self.remove()
                container = None
            elif container.status != "running":
                progress.status(f"starting {self.name}")
                container.start()
                container.reload()
                return self._wait_ready(container)
        if container is not None:
            self.fit_memory(container)
            return self._wait_ready(container)  # a restarted container may still be loading
        return self.start(image, progress)

    def start(self, image: str, progress: Progress | None = None) -> RuntimeInfo:
        """Create and start the container; blocks until ready.

        Raises:
            ProviderError: Docker refused the container, or the runtime exited during start
                (the message ends with its last log lines).
            DeployTimeout: not ready after ``startup_timeout_s`` (the container is removed).
        """
        import docker.errors
        from docker.types import DeviceRequest

        progress = progress or NullProgress()
        root = self.repository.root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        if not self.repository.config_file.exists():
            write_atomic(self.repository.config_file, "model_config_list {\n}\n")
        if self.config.batching is not None:
            write_atomic(self.batching_file, self.config.batching.to_text_proto())
        cfg = self.config
        if cfg.network == "host":
            grpc = cfg.grpc_port or _free_port(cfg.host)
            rest = cfg.rest_port or _free_port(cfg.host)
            ports = None
        else:
            grpc, rest = CONTAINER_GRPC, CONTAINER_REST
            ports = {
                f"{CONTAINER_GRPC}/tcp": (cfg.host, cfg.grpc_port or None),
                f"{CONTAINER_REST}/tcp": (cfg.host, cfg.rest_port or None),
            }
        memory = self._memory_mb()
        restart: dict[str, Any] = {"Name": cfg.restart_policy}
        if cfg.restart_policy == "on-failure":
            restart["MaximumRetryCount"] = 5
        gpus = None
        if cfg.gpus is not None:
            count = -1 if cfg.gpus == "all" else cfg.gpus
            gpus = [DeviceRequest(count=count, capabilities=[["gpu"]])]
        progress.status(f"starting container {self.name} ({image})")
        try:
            container = self.client.containers.run(
                image,
                self.argv(grpc, rest),
                name=self.name,
                detach=True,
                labels={
                    LABEL_MODEL: self.model,
                    LABEL_SETTINGS: self._settings_hash(image),
                    "io.cloudserve.ports": json.dumps([grpc, rest]),
                    "io.cloudserve.repository": str(root),
                },
                volumes={str(root): {"bind": str(root), "mode": "ro"}},
                network_mode=cfg.network,
                ports=ports,
                restart_policy=restart,
                mem_limit=f"{memory}m" if memory else None,
                memswap_limit=f"{memory}m" if memory else None,
                device_requests=gpus,
                stop_signal="SIGTERM",
            )
        except docker.errors.ImageNotFound as error:
            raise ProviderError(
                f"image {image} is not on the Docker host",
                hint="build it (cloudserve image build) or set targets.docker.image",
                provider="docker",
            ) from error
        except docker.errors.APIError as error:
            self.remove()  # created but not started (e.g. no GPU driver): leave nothing behind
            raise ProviderError(
                f"Docker refused to start {self.name}: {error.explanation or error}",
                provider="docker",
            ) from error
        container.reload()
        return self._wait_ready(container)

    def _wait_ready(self, container: Any) -> RuntimeInfo:
        """Poll until the runtime in ``container`` is ready (through the shared waiting helper).

        Raises:
            ProviderError: the container exited while starting (its log tail attached).
            DeployTimeout: not ready within ``startup_timeout_s``; the container is removed.
        """

        def poll() -> RuntimeInfo | None:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                raise ProviderError(
                    f"container {self.name} exited during start (exit code {code}); "
                    f"its log ends with:\n{self.log_tail()}",
                    hint=f"docker logs {self.name}",
                    provider="docker",
                )
            if container.status != "running":
                return None
            info = self._info(container)
            client = info.client()
            try:
                return info if client.ready() else None
            finally:
                client.close()

        try:
            return wait_until(
                poll,
                settled=lambda info: info is not None,
                label=f"container {self.name}",
                describe=lambda info: "ready" if info else "starting",
                timeout=self.config.startup_timeout_s,
                backoff=READY_BACKOFF,
                provider="docker",
            )
        except Interrupted:
            raise
        except DeployTimeout as e:
            tail = self.log_tail()
            self.remove()
            raise DeployTimeout(
                f"container {self.name} was not ready after "
                f"{self.config.startup_timeout_s:g} s; its log ends with:\n{tail}",
                hint="raise targets.docker.startup_timeout_s",
                provider="docker",
            ) from e

    def fit_memory(self, container: Any) -> None:
        """Raise the container's memory limit to what the models now need (never lowers it)."""
        wanted = self._memory_mb()
        if not wanted:
            return
        current = container.attrs["HostConfig"].get("Memory") or 0
        if current and current >= wanted * 1024 * 1024:
            return
        container.update(mem_limit=f"{wanted}m", memswap_limit=f"{wanted}m")
        container.reload()

    # ------------------------------------------------------------------ stopping

    def remove(self) -> bool:
        """``docker stop`` (SIGTERM: the runtime drains) and remove the container. Idempotent."""
        import docker.errors

        container = self.container()
        if container is None:
            return False
        try:
            if container.status == "running":
                container.stop(timeout=self.config.stop_timeout_s)
            container.remove(force=True)
        except docker.errors.NotFound:
            return False
        return True
