"""Availability under version faults (issue 11, items 1-3), against the real server process.

Each test keeps a client predicting in a loop while the fault happens and asserts that not one
request failed: the serving version stays until a healthy replacement is AVAILABLE.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import HALF_PLUS_TWO, ServerProcess, serving, wait_for

MODEL = "hp2"
GOOD = HALF_PLUS_TWO / "00000123"


class PredictLoop:
    """Predicts in a background thread until stopped; counts failures and versions seen."""

    def __init__(self, server: ServerProcess) -> None:
        self._url = f"{server.rest_url}/v1/models/{MODEL}:predict"
        self._stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                try:
                    reply = client.post(self._url, json={"instances": [[1.0]]})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if reply.status_code == 200 and reply.json() == {"predictions": [[2.5]]}:
                    self.ok += 1
                else:
                    self.failures.append(f"{reply.status_code} {reply.text[:200]}")
                time.sleep(0.01)

    def __enter__(self) -> PredictLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(15)
        print(f"availability: {self.ok} ok, {len(self.failures)} failed")


def status(server: ServerProcess) -> dict[int, tuple[str, str]]:
    """Version -> (state, error message) from REST GetModelStatus."""
    reply = httpx.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=10.0).json()
    return {
        int(entry["version"]): (entry["state"], entry["status"].get("error_message", ""))
        for entry in reply["model_version_status"]
    }


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A base path holding a good version 1."""
    shutil.copytree(GOOD, tmp_path / "model" / "1")
    return tmp_path / "model"


@pytest.fixture
def server(base: Path, log_dir: Path) -> Iterator[ServerProcess]:
    with serving(
        f"--model_name={MODEL}",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=0.2",
        "--max_num_load_retries=0",
        log_dir=log_dir,
    ) as running:
        yield running


def test_failed_new_version_keeps_old_serving(server: ServerProcess, base: Path) -> None:
    with PredictLoop(server) as loop:
        time.sleep(0.5)
        broken = base / "2"
        shutil.copytree(GOOD, broken)
        (broken / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff not a SavedModel")
        wait_for(lambda: status(server).get(2, ("",))[0] == "END", 60.0, "version 2 to fail")
        time.sleep(1.0)  # several polls with version 2 in error
        assert status(server)[1][0] == "AVAILABLE"
        assert status(server)[2][1], "the failed version reports its load error"
        # Fixing the directory loads it, and only then does version 1 go.
        fixed = base / ".fixed"
        shutil.copytree(GOOD, fixed)
        shutil.rmtree(broken)
        os.rename(fixed, broken)
        wait_for(lambda: status(server).get(1, ("",))[0] == "END", 60.0, "version 1 to be unloaded")
        time.sleep(0.3)
    assert status(server)[2][0] == "AVAILABLE"
    assert loop.failures == []
    assert loop.ok > 20


def _make_unlistable(base: Path) -> Callable[[], None]:
    """Turns ``base`` into a symlink loop (listing fails with ELOOP, even for root)."""
    real = base.with_name("real")
    os.rename(base, real)
    os.symlink(base.name, base)  # base -> base: too many levels of symbolic links

    def restore() -> None:
        os.unlink(base)
        os.rename(real, base)

    return restore


def test_unlistable_base_path_keeps_loaded_versions(server: ServerProcess, base: Path) -> None:
    with PredictLoop(server) as loop:
        time.sleep(0.5)
        restore = _make_unlistable(base)
        wait_for(lambda: "keeping the loaded versions [1]" in server.log(), 60.0, "the poll error")
        time.sleep(1.0)
        assert status(server)[1][0] == "AVAILABLE"
        restore()
        time.sleep(1.0)
    assert status(server)[1][0] == "AVAILABLE"
    assert loop.failures == []
    assert loop.ok > 20


def test_half_written_version_never_replaces_serving_one(server: ServerProcess, base: Path) -> None:
    with PredictLoop(server) as loop:
        time.sleep(0.5)
        slow = base / "2"
        slow.mkdir()
        shutil.copy2(GOOD / "saved_model.pb", slow / "saved_model.pb")
        time.sleep(3.0)  # variables arrive seconds later
        shutil.copytree(GOOD / "assets", slow / "assets")
        shutil.copytree(GOOD / "variables", slow / "variables")
        wait_for(lambda: status(server).get(2, ("",))[0] == "AVAILABLE", 60.0, "version 2 to load")
        wait_for(lambda: status(server).get(1, ("",))[0] == "END", 60.0, "version 1 to be unloaded")
        time.sleep(0.3)
    assert loop.failures == []
    assert loop.ok > 20
