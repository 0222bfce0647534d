"""The README demo's flow as a CI step would run it: real `cloudserve` processes, the real
local runtime, JSON output and exit codes (deploy, predict, versions, set-default, rollback,
status, delete, local stop)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import export_example
from tests.support import run_local_cli


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    """A project directory with two exports; the local runtime is stopped at the end."""
    root = tmp_path_factory.mktemp("e2e")
    export_example("half_plus_two", root / "exports" / "hp2", 1)
    export_example("linear", root / "exports" / "linear", 2, "--weight", "2", "--bias", "1")
    yield root
    cli(root, "local", "stop")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_local_cli(cwd, "e2e-model", *args, timeout=180)


def ok_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    return data


def predictions(cwd: Path, *extra: str) -> list:
    result = cli(cwd, "-o", "json", "predict", *extra, "--data", '{"instances": [[1.0], [2.0]]}')
    return ok_json(result)["response"]["predictions"]


def test_demo_flow_through_the_cli(workdir: Path):
    first = ok_json(cli(workdir, "-o", "json", "deploy", "--export", "exports/hp2/1"))
    assert first["record"]["version"] == "1" and first["record"]["is_default"]
    assert predictions(workdir) == [[2.5], [3.0]]

    again = ok_json(cli(workdir, "-o", "json", "deploy", "--export", "exports/hp2/1"))
    assert again["record"]["changed"] is False

    second = ok_json(cli(workdir, "-o", "json", "deploy", "--export", "exports/linear/2"))
    assert second["record"]["version"] == "2" and not second["record"]["is_default"]
    assert predictions(workdir) == [[2.5], [3.0]]  # still version 1
    assert predictions(workdir, "--version", "2") == [[3.0], [5.0]]

    listed = ok_json(cli(workdir, "-o", "json", "versions", "list"))["versions"]
    assert [(v["version"], v["is_default"], v["state"]) for v in listed] == [
        ("2", False, "AVAILABLE"),
        ("1", True, "AVAILABLE"),
    ]

    ok_json(cli(workdir, "-o", "json", "versions", "set-default", "2"))
    assert predictions(workdir) == [[3.0], [5.0]]
    assert ok_json(cli(workdir, "-o", "json", "status"))["default"] == "2"

    rolled = ok_json(cli(workdir, "-o", "json", "rollback"))
    assert rolled["record"]["version"] == "1"
    assert predictions(workdir) == [[2.5], [3.0]]

    refused = cli(workdir, "-o", "json", "delete", "--version", "1", "--yes")
    assert refused.returncode == 2, refused.stdout  # the default while version 2 remains
    assert json.loads(refused.stdout)["error"]["kind"] == "config"

    deleted = ok_json(cli(workdir, "-o", "json", "delete", "--version", "2", "--yes"))
    assert deleted["deleted"]
    missing = cli(
        workdir, "-o", "json", "predict", "--version", "2", "--data", '{"instances": [[1.0]]}'
    )
    assert missing.returncode == 8, missing.stdout


def test_local_stop_leaves_no_runtime(workdir: Path):
    info = json.loads((workdir / "repo" / "runtime.json").read_text())
    stopped = cli(workdir, "local", "stop")
    assert stopped.returncode == 0, stopped.stderr
    status = Path(f"/proc/{info['pid']}/status")
    # gone, or a zombie waiting for a PID 1 that does not reap (as in some containers)
    assert not status.exists() or "State:\tZ" in status.read_text()
