"""The installed ``cloudserve`` as a real process: light --help, exit codes, plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.plugin import install_plugin
from tests.conftest import ROOT

HEAVY = ("tensorflow", "boto3", "botocore", "google.cloud", "googleapiclient", "azure", "moto")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSERVE_")}
    return subprocess.run(
        [sys.executable, "-m", "cloudserve", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_imports_no_tensorflow_and_no_cloud_sdk(tmp_path: Path):
    probe = (
        "import sys\n"
        "from cloudserve.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "deploy" in result.stdout and "versions" in result.stdout


def test_inspect_text_and_json(tmp_path: Path, testdata: Path):
    export = testdata / "saved_model_half_plus_two_cpu"
    text = run("inspect", str(export), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "signature 'serving_default'" in text.stdout and "DT_FLOAT (-1, 1)" in text.stdout
    data = json.loads(run("-o", "json", "inspect", str(export), cwd=tmp_path).stdout)
    assert data["ok"] and data["export"]["version"] == "123"
    assert data["export"]["signatures"]["serving_default"]["inputs"]["x"]["shape"] == [-1, 1]


def test_inspect_missing_export_is_a_preflight_finding(tmp_path: Path):
    result = run("inspect", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 3
    assert (
        result.stderr.startswith("error: preflight failed: export path")
        and "hint:" in result.stderr
    )
    assert "export.missing" in result.stderr and "fix: pass the directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_through_an_entry_point_plugin(tmp_path: Path, testdata: Path):
    install_plugin(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    export = testdata / "saved_model_half_plus_two_tf2_cpu"
    ok = run(
        "-o",
        "json",
        "check",
        "-t",
        "plugged",
        "-m",
        "hp-model",
        "-e",
        str(export),
        cwd=tmp_path,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["target"] == "fake"
    bad = run("check", "-t", "plugged", "-m", "bad name", "-e", str(export), cwd=tmp_path, env=env)
    assert bad.returncode == 3 and "name.invalid" in bad.stderr
    listed = run("targets", cwd=tmp_path, env=env)
    assert "target plugged" in listed.stdout


def test_init_then_check_local(tmp_path: Path, testdata: Path):
    export = testdata / "saved_model_half_plus_two_tf2_cpu"
    assert run("init", "-m", "half-plus-two", "-e", str(export), cwd=tmp_path).returncode == 0
    assert run("init", cwd=tmp_path).returncode == 2
    result = run("-o", "json", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == "local" and data["version"] == "123"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--target", "azure", "status", "-m", "m"], 3),  # workspace settings missing
        (["--target", "ml-v1", "status", "-m", "m"], 7),
        (["--target", "heroku", "status", "-m", "m"], 2),
        (["deploy", "--bogus"], 2),
        (["nosuchcommand"], 2),
        (["--config", "missing.yaml", "status"], 2),
    ],
    ids=["az", "mlv1", "unknown", "bad-flag", "bad-command", "missing-config"],
)
def test_exit_codes(tmp_path: Path, args: list[str], code: int):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
