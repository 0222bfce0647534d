"""Test support: a real Docker engine started for the test session, and the CPU runtime image.

Registered for every test through ``pytest_plugins = ["tests.dockerd"]`` in tests/conftest.py.
Fixtures (session-scoped, started on first use):

- ``docker_engine`` -> :class:`DockerEngine` (``.socket``, ``.base_url``, ``.client()``): Debian's
  ``dockerd`` with its own data root, exec root, pid file and unix socket, ``--iptables=false
  --bridge=none`` (the machine's networking is left alone). Containers must use
  ``network_mode="host"``. Stopped by PID at the end of the session.
- ``runtime_image`` -> :class:`cloudserve.runtime_images.BuiltImage`: the CPU runtime image built
  from runtime_image/Dockerfile on a base image made offline with ``debootstrap`` (no public
  registry is reachable), with the TensorFlow version installed here.
- ``local_registry`` -> ``"127.0.0.1:<port>"``: Debian's ``docker-registry`` (the CNCF
  distribution registry) on loopback, plain HTTP (engines allow that for 127.0.0.0/8), storage
  in a temporary directory; stopped by PID at the end of the session.

The data root and the debootstrap base live in a cache outside the repository
(``$CLOUDSERVE_TEST_DOCKER_CACHE``, default ``/var/tmp/cloudserve-test-docker``), so later runs
reuse image layers (a cold build takes ~10 min, a warm one seconds). One engine uses a data root
at a time: a second session waits for the first (a lock file), up to
``$CLOUDSERVE_TEST_DOCKER_WAIT_S`` seconds (default 1200). Tests skip with "run: bash
scripts/install-test-deps.sh" when dockerd or debootstrap are missing or the caller is not root.

``python -m tests.dockerd build`` warms the cache (starts an engine, builds, stops it).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloudserve.runtime_images import BuiltImage, build

INSTALL_HINT = "run: bash scripts/install-test-deps.sh"
CACHE = Path(os.environ.get("CLOUDSERVE_TEST_DOCKER_CACHE", "/var/tmp/cloudserve-test-docker"))
BASE_IMAGE = "cloudserve-test/debian-bookworm-minbase:latest"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def missing_parts() -> str | None:
    """Why a real engine cannot start here (a skip reason), or None."""
    missing = [cmd for cmd in ("dockerd", "debootstrap") if shutil.which(cmd) is None]
    if missing:
        return f"{' and '.join(missing)} not installed; {INSTALL_HINT}"
    if os.geteuid() != 0:
        return f"dockerd needs root; {INSTALL_HINT} and run the tests as root"
    try:
        import docker  # noqa: F401
    except ImportError:
        return f"the docker SDK is not installed; {INSTALL_HINT}"
    return None


@dataclass
class DockerEngine:
    """A running ``dockerd`` owned by this process."""

    socket: Path
    pid: int
    exec_root: Path
    log: Path
    _lock: Any = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        """``unix://<socket>``: for ``DOCKER_HOST`` and ``docker.DockerClient(base_url=...)``."""
        return f"unix://{self.socket}"

    def client(self) -> Any:
        """A new docker SDK client for this engine."""
        import docker

        return docker.DockerClient(base_url=self.base_url, version="auto", timeout=600)

    def stop(self) -> None:
        """Stops the engine by PID (SIGTERM, then SIGKILL after 60 s) and frees the data root."""
        try:
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _alive(self.pid):
                time.sleep(0.2)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(self.pid)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def start_engine(cache: Path = CACHE) -> DockerEngine:
    """Starts ``dockerd`` on ``cache/data-root``; blocks until it answers (at most 120 s).

    Raises:
        RuntimeError: another session holds the data root past the wait, or dockerd did not
            come up (the message has its log's tail).
    """
    cache.mkdir(parents=True, exist_ok=True)
    lock = open(cache / "engine.lock", "w")  # noqa: SIM115 - held for the engine's lifetime
    deadline = time.monotonic() + float(os.environ.get("CLOUDSERVE_TEST_DOCKER_WAIT_S", "1200"))
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise RuntimeError(f"{cache} is in use by another test session's dockerd") from None
            time.sleep(2)
    # short path: unix socket paths are limited to 107 bytes
    exec_root = Path(tempfile.mkdtemp(prefix="csd-", dir="/tmp"))
    socket = exec_root / "docker.sock"
    log = cache / "dockerd.log"
    command = [
        "dockerd",
        f"--data-root={cache / 'data-root'}",
        f"--exec-root={exec_root / 'exec'}",
        f"--pidfile={exec_root / 'dockerd.pid'}",
        f"--host=unix://{socket}",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=overlay2",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    engine = DockerEngine(socket=socket, pid=process.pid, exec_root=exec_root, log=log, _lock=lock)
    up_by = time.monotonic() + 120
    while time.monotonic() < up_by:
        if process.poll() is not None:
            break
        if socket.exists():
            try:
                engine.client().ping()
                return engine
            except Exception:  # noqa: BLE001 - not up yet
                pass
        time.sleep(0.3)
    engine.stop()
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"dockerd did not start ({' '.join(command)}):\n{tail}")


def apt_mirror() -> str:
    """The Debian mirror apt uses here (from /etc/apt/sources.list*), for debootstrap."""
    paths = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and "security" not in line:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                uri = next(w for w in words[1:] if not w.startswith("["))
                return uri
    return "http://deb.debian.org/debian"


def ensure_base_image(engine: DockerEngine, cache: Path = CACHE) -> str:
    """The debootstrap'ed Debian base image, imported into the engine; made once per cache."""
    client = engine.client()
    try:
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        pass
    tarball = cache / "debian-bookworm-minbase.tar"
    if not tarball.is_file():
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
        try:
            subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.replace(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    repository, _, tag = BASE_IMAGE.rpartition(":")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    return BASE_IMAGE


def local_ca_certificates() -> str | None:
    """PEM text of the machine's local CA certificates (a TLS-intercepting proxy's), if any."""
    pems = [p.read_text() for p in sorted(LOCAL_CA_DIR.glob("*.crt"))]
    return "\n".join(pems) if pems else None


def installed_tf_version() -> str | None:
    """The TensorFlow version installed here (the image gets the same), or None."""
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def build_runtime_image(
    engine: DockerEngine,
    *,
    variant: str = "cpu",
    gcs: bool = False,
    tags: tuple[str, ...] | list[str] = ("cloudserve-runtime:test-cpu",),
    progress: Any = None,
) -> BuiltImage:
    """Builds the runtime image on the offline base (layers cached in the data root)."""
    return build(
        engine.client(),
        variant=variant,
        tf_version=installed_tf_version(),
        tags=tags,
        base_image=ensure_base_image(engine),
        gcs=gcs,
        extra_ca_certs=local_ca_certificates(),
        network_mode="host",
        progress=progress,
    )


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """A real Docker engine for this session (skips when it cannot run here)."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    engine = start_engine()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def runtime_image(docker_engine: DockerEngine) -> BuiltImage:
    """The CPU runtime image (``cloudserve-runtime:test-cpu``), built once per session."""
    return build_runtime_image(docker_engine, progress=_build_log())


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``docker-registry`` on ``127.0.0.1:<free port>``; yields ``host:port``."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip(f"docker-registry not installed; {INSTALL_HINT}")
    root = tmp_path_factory.mktemp("registry")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry failed:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _build_log() -> Any:
    path = CACHE / "last-build.log"
    handle = open(path, "w")  # noqa: SIM115 - appended to while the build runs

    def write(line: str) -> None:
        handle.write(line + "\n")
        handle.flush()

    return write


def main(argv: list[str]) -> int:
    """``python -m tests.dockerd build [cpu|gpu]``: warm the cache (the CPU image the tests use,
    or the GPU variant); prints the image id, size and time."""
    if argv[:1] != ["build"] or argv[1:] not in ([], ["cpu"], ["gpu"]):
        print("usage: python -m tests.dockerd build [cpu|gpu]", file=sys.stderr)
        return 2
    variant = argv[1] if len(argv) > 1 else "cpu"
    tags = ("cloudserve-runtime:test-cpu",) if variant == "cpu" else ()
    reason = missing_parts()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    engine = start_engine()
    try:
        image = build_runtime_image(engine, variant=variant, tags=tags, progress=print)
    finally:
        engine.stop()
    print(f"{image.id} {image.size / 1e9:.2f} GB tf {image.tf_version} in {image.seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
