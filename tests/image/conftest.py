"""Fixtures of the runtime image tests: running the built image, the image's ``-gcs`` build."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cloudserve.runtime_images import BuiltImage
from tests.dockerd import DockerEngine, build_runtime_image
from tests.support import gcs_emulator


def port_free(port: int) -> bool:
    """True when a server could listen on ``port`` now. SO_REUSEADDR, as the runtime's own
    listeners use it, so connections of an earlier test still in TIME_WAIT do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def need_ports(*ports: int) -> None:
    """Skip when a fixed contract port is taken: containers share the host's network here."""
    busy = [p for p in ports if not port_free(p)]
    if busy:
        pytest.skip(f"port(s) {busy} busy on this host; the test containers use host networking")


@dataclass
class Running:
    """A runtime container started by a test."""

    container: Any

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def wait_http(self, url: str, timeout: float = 120.0) -> bytes:
        """GET ``url`` until it answers 200; fails with the container's log if it exits."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.read()
            except OSError:
                self.container.reload()
                assert self.container.status in ("created", "running"), (
                    f"container exited:\n{self.logs()}"
                )
                assert time.monotonic() < deadline, f"{url} not ready:\n{self.logs()}"
                time.sleep(0.3)

    def stop(self, timeout: int = 40) -> int:
        """``docker stop`` (SIGTERM, then SIGKILL after ``timeout``); returns the exit code."""
        self.container.stop(timeout=timeout)
        return self.container.wait(timeout=timeout + 10)["StatusCode"]


@pytest.fixture
def run_image(docker_engine: DockerEngine) -> Iterator[Any]:
    """``run_image(image, *args, env=..., mounts={host: container})`` -> :class:`Running`."""
    client = docker_engine.client()
    started: list[Any] = []

    def run(
        image: str,
        *args: str,
        env: dict[str, str] | None = None,
        mounts: dict[str, str] | None = None,
    ) -> Running:
        container = client.containers.run(
            image,
            list(args),
            environment=env or {},
            volumes={h: {"bind": inside, "mode": "ro"} for h, inside in (mounts or {}).items()},
            network_mode="host",
            detach=True,
        )
        started.append(container)
        return Running(container)

    yield run
    for container in started:
        container.remove(force=True)


@pytest.fixture(scope="session")
def runtime_image_gcs(docker_engine: DockerEngine) -> BuiltImage:
    """The Vertex AI build: the CPU image with google-cloud-storage (``gs://`` model URIs)."""
    return build_runtime_image(docker_engine, gcs=True, tags=["cloudserve-runtime:test-cpu-gcs"])


@pytest.fixture(scope="session")
def gcs_emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gcp-storage-emulator process (in memory) on a free loopback port; stopped by PID."""
    with gcs_emulator(tmp_path_factory.mktemp("gcs") / "emulator.log") as url:
        yield url
