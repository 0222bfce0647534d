"""The runtime as a background process: start, find, stop.

The runtime (``python -m cloudserve_runtime``) runs detached in its own session, so it
outlives the CLI command that started it. ``<repository>/runtime.json`` records its pid,
ports and command line; the ports stay recorded after a stop so the next start reuses them.
Its stdout and stderr go to ``<repository>/runtime.log``.

A recorded pid counts as the runtime only while that process is alive (not a zombie) and,
where ``/proc`` exists, still runs the recorded command line; otherwise the record is stale
and the next start replaces it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloudserve.errors import ConfigError, DeployTimeout, MissingDependency, ProviderError
from cloudserve.progress import NullProgress, Progress
from cloudserve_adapters.local.config import LocalConfig
from cloudserve_adapters.local.repository import Repository, write_atomic
from cloudserve_adapters.local.runtime_client import RuntimeClient

DEFAULT_COMMAND = (sys.executable, "-m", "cloudserve_runtime")
TERM_GRACE_S = 10.0
LOG_TAIL_LINES = 20
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^'.]+)")

#: processes this interpreter started, kept so they can be reaped (no zombies, no warnings)
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``runtime.json`` records. ``pid`` is None once the runtime was stopped."""

    pid: int | None
    host: str
    grpc_port: int
    rest_port: int
    argv: tuple[str, ...] = ()
    started: str | None = None

    def client(self) -> RuntimeClient:
        return RuntimeClient(self.host, self.rest_port, self.grpc_port)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def process_alive(pid: int, argv: Sequence[str] = ()) -> bool:
    """Is ``pid`` a live process (running ``argv``, when given and ``/proc`` can tell)?

    Reaps ``pid`` first when it is an exited child of this interpreter.
    """
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        return not argv or [os.fsencode(a) for a in argv] == cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RuntimeProcess:
    """Start, find and stop the runtime serving one repository.

    Args:
        repository: the model repository the runtime serves.
        config: the local target's settings (host, ports, batching, timeouts).
        command: how to launch the runtime; the server flags are appended.
    """

    def __init__(
        self,
        repository: Repository,
        config: LocalConfig,
        command: Sequence[str] = DEFAULT_COMMAND,
    ):
        self.repository = repository
        self.config = config
        self.command = tuple(command)
        self.info_file = repository.root / "runtime.json"
        self.log_file = repository.root / "runtime.log"
        self.batching_file = repository.root / "batching.config"

    # ------------------------------------------------------------------ finding

    def recorded(self) -> RuntimeInfo | None:
        """The content of ``runtime.json`` (None when there is none or it is unreadable)."""
        try:
            data = json.loads(self.info_file.read_text(encoding="utf-8"))
            return RuntimeInfo(**{**data, "argv": tuple(data.get("argv", ()))})
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> RuntimeInfo | None:
        """The runtime's record when its process is alive; None when not running or stale."""
        info = self.recorded()
        if info is None or info.pid is None:
            return None
        return info if process_alive(info.pid, info.argv) else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of ``runtime.log`` ("" when there is no log)."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ starting

    def argv(self, grpc_port: int, rest_port: int) -> tuple[str, ...]:
        """The full command line for a runtime on these ports."""
        args = [
            *self.command,
            "--host",
            self.config.host,
            "--port",
            str(grpc_port),
            "--rest_api_port",
            str(rest_port),
            "--model_config_file",
            str(self.repository.config_file),
            "--model_config_file_poll_wait_seconds",
            "1",
            "--file_system_poll_wait_seconds",
            "1",
            "--allow_version_labels_for_unavailable_models",
            "true",
            "--max_num_load_retries",
            str(self.config.load_retries),
        ]
        if self.config.enable_batching:
            args += ["--enable_batching", "true"]
        if self.config.batching is not None:
            args += ["--batching_parameters_file", str(self.batching_file)]
        return tuple(args)

    def _ports(self) -> tuple[int, int]:
        """Configured ports, else the recorded ones while free, else fresh free ports."""
        host = self.config.host
        recorded = self.recorded()
        ports = []
        for configured, previous in (
            (self.config.grpc_port, recorded.grpc_port if recorded else 0),
            (self.config.rest_port, recorded.rest_port if recorded else 0),
        ):
            if configured:
                if not _port_free(host, configured):
                    raise ConfigError(
                        f"port {configured} on {host} is taken by another process",
                        hint="free it, or set grpc_port/rest_port to 0 to pick free ports",
                        provider="local",
                    )
                ports.append(configured)
            elif previous and previous not in ports and _port_free(host, previous):
                ports.append(previous)
            else:
                port = _free_port(host)
                while port in ports:
                    port = _free_port(host)
                ports.append(port)
        return ports[0], ports[1]

    def ensure_running(self, progress: Progress | None = None) -> RuntimeInfo:
        """Return the running runtime, starting it (or restarting it after a settings change).

        Blocks until it answers ``/readyz``; see :meth:`start` for what raises.
        """
        progress = progress or NullProgress()
        info = self.running()
        if info is not None:
            wanted = self.argv(
                self.config.grpc_port or info.grpc_port, self.config.rest_port or info.rest_port
            )
            if info.argv == wanted:
                return info
            progress.status("restarting the local runtime: its settings changed")
            self.stop()
        return self.start(progress)

    def start(self, progress: Progress | None = None) -> RuntimeInfo:
        """Start a runtime (the caller made sure none runs) and wait until it is ready.

        Raises:
            MissingDependency: the runtime could not import a module (the ``runtime`` extra).
            ProviderError: the process exited during start; the message ends with the
                last lines of ``runtime.log``.
            DeployTimeout: not ready after ``startup_timeout_s`` (the process is stopped).
        """
        progress = progress or NullProgress()
        root = self.repository.root
        root.mkdir(parents=True, exist_ok=True)
        if not self.repository.config_file.exists():
            write_atomic(self.repository.config_file, "model_config_list {\n}\n")
        if self.config.batching is not None:
            write_atomic(self.batching_file, self.config.batching.to_text_proto())
        grpc_port, rest_port = self._ports()
        argv = self.argv(grpc_port, rest_port)
        progress.status(f"starting the local runtime (REST port {rest_port}, gRPC {grpc_port})")
        with self.log_file.open("ab") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} starting: {' '.join(argv)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                argv,
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[child.pid] = child
        info = RuntimeInfo(
            child.pid,
            self.config.host,
            grpc_port,
            rest_port,
            argv,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._record(info)
        self._wait_ready(child, info)
        return info

    def _wait_ready(self, child: subprocess.Popen[bytes], info: RuntimeInfo) -> None:
        client = info.client()
        deadline = time.monotonic() + self.config.startup_timeout_s
        try:
            while not client.ready():
                if child.poll() is not None:
                    _children.pop(child.pid, None)
                    self._record(RuntimeInfo(None, **_ports_of(info)))
                    self._raise_start_failure(child.returncode)
                if time.monotonic() > deadline:
                    self.stop()
                    raise DeployTimeout(
                        f"the local runtime was not ready after {self.config.startup_timeout_s:g}"
                        f" s; runtime.log ends with:\n{self.log_tail()}",
                        hint="raise startup_timeout_s if loading the models takes longer",
                        provider="local",
                    )
                time.sleep(0.1)
        finally:
            client.close()

    def _raise_start_failure(self, returncode: int) -> None:
        tail = self.log_tail()
        missing = _MISSING_MODULE.findall(tail)
        if missing:
            raise MissingDependency(missing[-1], "runtime", provider="local")
        raise ProviderError(
            f"the local runtime exited during start (exit code {returncode}); "
            f"{self.log_file} ends with:\n{tail}",
            hint="see `cloudserve local logs`",
            provider="local",
        )

    def _record(self, info: RuntimeInfo) -> None:
        write_atomic(self.info_file, json.dumps(asdict(info), indent=2) + "\n")

    # ------------------------------------------------------------------ stopping

    def stop(self, grace_s: float = TERM_GRACE_S) -> bool:
        """Stop the runtime: SIGTERM to its process group, SIGKILL after ``grace_s``.

        Blocks until the process is gone. Idempotent: returns False when none was running
        (a stale record is cleared). Keeps the ports recorded for the next start.
        """
        info = self.recorded()
        if info is None or info.pid is None:
            return False
        was_running = process_alive(info.pid, info.argv)
        if was_running:
            for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(info.pid, sig)
                except ProcessLookupError:
                    break
                if self._wait_gone(info, wait_s):
                    break
        self._record(RuntimeInfo(None, **_ports_of(info)))
        return was_running

    @staticmethod
    def _wait_gone(info: RuntimeInfo, timeout: float) -> bool:
        assert info.pid is not None
        deadline = time.monotonic() + timeout
        while process_alive(info.pid, info.argv):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def _ports_of(info: RuntimeInfo) -> dict[str, object]:
    return {"host": info.host, "grpc_port": info.grpc_port, "rest_port": info.rest_port}
