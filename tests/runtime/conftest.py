"""Fixtures that start the real runtime server (``python -m cloudserve_runtime``) on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from tests.conftest import TESTDATA
from tests.support import free_port

HALF_PLUS_TWO = TESTDATA / "saved_model_half_plus_two_cpu"
TWO_VERSIONS = TESTDATA / "saved_model_half_plus_two_2_versions"
START_TIMEOUT_S = 90.0
MAX_BODY_BYTES = 100_000


@dataclass
class ServerProcess:
    """A running server process and how to reach it."""

    proc: subprocess.Popen[bytes]
    grpc_port: int
    rest_port: int
    log_path: Path

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signals the process and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def run_server(
    *flags: str,
    log_dir: Path,
    wait: bool = True,
    env: dict[str, str] | None = None,
    rest: bool = True,
) -> ServerProcess:
    """Starts the server with ``flags``; with ``wait`` blocks until /healthz answers.

    Raises:
        RuntimeError: the process exited or did not come up in time (message has its log).
    """
    grpc_port, rest_port = free_port(), free_port()
    log_path = log_dir / f"server-{grpc_port}.log"
    cmd = [
        sys.executable,
        "-m",
        "cloudserve_runtime",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port if rest else 0}",
        "--host=127.0.0.1",
        *flags,
    ]
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env)
    server = ServerProcess(proc, grpc_port, rest_port, log_path)
    if wait:
        wait_until_up(server)
    return server


def wait_until_up(server: ServerProcess, timeout: float = START_TIMEOUT_S) -> None:
    """Blocks until the server answers on its REST port (or gRPC port when REST is off)."""
    deadline = time.monotonic() + timeout
    rest = "--rest_api_port=0" not in server.proc.args
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log()}")
        if rest:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.rest_url}/healthz", timeout=1.0).status_code == 200:
                    return
        else:
            with grpc.insecure_channel(server.grpc_target) as channel:
                ready = grpc.channel_ready_future(channel)
                try:
                    ready.result(timeout=0.5)
                    return
                except grpc.FutureTimeoutError:
                    pass
                finally:
                    ready.cancel()
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not come up in {timeout}s:\n{server.log()}")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Polls ``condition`` every 0.1 s (gRPC errors count as not yet) until it holds.

    Raises:
        AssertionError: it did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


@contextlib.contextmanager
def serving(*flags: str, log_dir: Path, **kwargs: object) -> Iterator[ServerProcess]:
    """Runs a server for the duration of the block, then stops it with SIGTERM.

    The SIGTERM stop must be graceful: exit status 0.
    """
    server = run_server(*flags, log_dir=log_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        status = server.stop()
    assert status == 0, f"server exited with {status} on SIGTERM:\n{server.log()}"


def copy_model(source: Path, target: Path, versions: list[str] | None = None) -> Path:
    """Copies a model's version dirs (all, or the named ones) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        if child.is_dir() and (versions is None or child.name in versions):
            shutil.copytree(child, target / child.name)
    return target


def write_config(path: Path, entries: list[str]) -> Path:
    """Writes a model config file with one ``config { … }`` per entry body."""
    body = "\n".join(f"  config {{\n{entry}\n  }}" for entry in entries)
    path.write_text(f"model_config_list {{\n{body}\n}}\n")
    return path


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-module directory for server logs and scratch files."""
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="module")
def hp2(log_dir: Path) -> Iterator[ServerProcess]:
    """half_plus_two (cpu) as ``half_plus_two``: Prometheus and CORS on, small body limit."""
    monitoring = log_dir / "monitoring.txt"
    monitoring.write_text(
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
    )
    with serving(
        "--model_name=half_plus_two",
        f"--model_base_path={HALF_PLUS_TWO}",
        f"--monitoring_config_file={monitoring}",
        "--rest_api_enable_cors_support",
        f"--rest_api_max_body_bytes={MAX_BODY_BYTES}",
        log_dir=log_dir,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def rest(hp2: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the ``hp2`` server."""
    with httpx.Client(base_url=hp2.rest_url, timeout=30.0) as client:
        yield client
