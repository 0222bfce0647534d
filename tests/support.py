"""Small helpers shared by the test suites: free ports, a recording Progress, a TF predictor,
the gcp-storage-emulator process.

One home for what several stand-ins and suites need, so no test file keeps its own copy.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingProgress:
    """A Progress that keeps every status line and transfer it is told, and can raise Ctrl-C
    (KeyboardInterrupt) once: on the first status containing ``interrupt_on``, or on the first
    transfer report when ``interrupt_on == "transfer"``."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        self.statuses: list[str] = []
        self.transfers: list[tuple[str, int, int]] = []
        self.interrupt_on = interrupt_on

    def status(self, message: str) -> None:
        self.statuses.append(message)
        if self.interrupt_on and self.interrupt_on in message:
            self.interrupt_on = None
            raise KeyboardInterrupt

    def transfer(self, label: str, done: int, total: int) -> None:
        self.transfers.append((label, done, total))
        if self.interrupt_on == "transfer":  # the first report, on the calling thread
            self.interrupt_on = None
            raise KeyboardInterrupt


def tf_predictor(directory: str) -> Callable[[list[Any]], list[Any]]:
    """What a managed model server does with an uploaded SavedModel: load it with TensorFlow
    and answer row-format ``instances`` through its ``serving_default`` signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(directory)
    fn = loaded.signatures["serving_default"]
    _, specs = fn.structured_input_signature

    def predict(instances: list[Any]) -> list[Any]:
        if len(specs) == 1:
            ((name, spec),) = specs.items()
            outputs = fn(**{name: tf.constant(instances, dtype=spec.dtype)})
        else:
            outputs = fn(
                **{n: tf.constant([i[n] for i in instances], s.dtype) for n, s in specs.items()}
            )
        if len(outputs) == 1:
            return next(iter(outputs.values())).numpy().tolist()
        return [
            {k: v[i].numpy().tolist() for k, v in outputs.items()} for i in range(len(instances))
        ]

    predict.loaded = loaded  # type: ignore[attr-defined]  # keeps the model alive
    return predict


@contextmanager
def gcs_emulator(log: Path, *, default_bucket: str | None = None) -> Iterator[str]:
    """Run a gcp-storage-emulator process (in memory) on a free loopback port.

    Yields its URL once it answers; output goes to ``log``. Stopped by PID on exit (SIGTERM,
    then SIGKILL after 10 s). ``default_bucket`` is created at start.
    """
    port = free_port()
    exe = shutil.which("gcp-storage-emulator")
    command = [exe] if exe else [sys.executable, "-m", "gcp_storage_emulator"]
    command += ["start", "--host=127.0.0.1", f"--port={port}", "--in-memory"]
    if default_bucket:
        command.append(f"--default-bucket={default_bucket}")
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).read()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gcp-storage-emulator did not start: {log.read_text()}"
                    ) from e
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_local_cli(cwd: Path, model: str, *args: str, timeout: float = 240) -> CompletedProcess[str]:
    """Run the real ``cloudserve`` executable (``python -m cloudserve``) in ``cwd`` against the
    local target, with the model ``model`` and the repository ``cwd/repo``; every other
    ``CLOUDSERVE_*`` variable of the caller is dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSERVE_")}
    env.update(
        CLOUDSERVE_MODEL=model,
        CLOUDSERVE_TARGET="local",
        CLOUDSERVE_LOCAL__REPOSITORY=str(cwd / "repo"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return subprocess.run(
        [sys.executable, "-m", "cloudserve", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
