"""The CLI says exactly what happened: each point found by trying cloudserve as a new user,
checked through the installed ``cloudserve`` executable (a real process)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudserve import registry

EXE = shutil.which("cloudserve") or pytest.fail("the cloudserve console script is not installed")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSERVE_")}
    base.pop("CI", None)
    return subprocess.run(
        [EXE, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_of(result: subprocess.CompletedProcess, code: int) -> dict:
    assert result.returncode == code, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["error"]["exit_code"] == code
    return data["error"]


@pytest.fixture
def hp(testdata: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "exports" / "hp" / "1"
    shutil.copytree(testdata / "saved_model_half_plus_two_tf2_cpu" / "00000123", dest)
    return dest


# --------------------------------------------------------------------------- exit codes


def test_missing_export_is_a_preflight_finding(tmp_path: Path):
    error = error_of(run("-o", "json", "check", "-m", "m", "-e", "nope", cwd=tmp_path), 3)
    (finding,) = error["findings"]
    assert finding["id"] == "export.missing" and finding["source"]


def test_directory_without_saved_model_is_a_preflight_finding(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    error = error_of(run("-o", "json", "deploy", "-m", "m", "-e", "empty", cwd=tmp_path), 3)
    assert [f["id"] for f in error["findings"]] == ["export.no_saved_model"]


@pytest.mark.parametrize("name", ["model.keras", "weights.h5"])
def test_keras_files_get_the_model_export_fix(tmp_path: Path, name: str):
    (tmp_path / name).write_bytes(b"not a SavedModel")
    error = error_of(run("-o", "json", "check", "-m", "m", "-e", name, cwd=tmp_path), 3)
    (finding,) = error["findings"]
    assert finding["id"] == "export.keras_file" and "model.export(DIR)" in finding["fix"]
    (tmp_path / "saved").mkdir()
    shutil.move(tmp_path / name, tmp_path / "saved" / name)
    error = error_of(run("-o", "json", "check", "-m", "m", "-e", "saved", cwd=tmp_path), 3)
    assert name in error["findings"][0]["message"]
    assert "model.export(DIR)" in error["findings"][0]["fix"]


#: targets with settings every deploy needs (aws: bucket; gcp: project, bucket; ...)
TARGETS_WITH_REQUIRED_SETTINGS = ("aws", "gcp", "azure", "kubernetes")


# ids not equal to "aws"/"gcp"/"azure": those keywords mark opt-in real-cloud smoke tests
@pytest.mark.parametrize("target", TARGETS_WITH_REQUIRED_SETTINGS, ids=lambda t: f"target-{t}")
def test_missing_required_target_settings_exit_the_same_way(tmp_path: Path, hp: Path, target):
    if target not in registry.available():
        pytest.skip(f"target {target} is not installed here")
    result = run("-o", "json", "check", "-t", target, "-m", "my-model", "-e", str(hp), cwd=tmp_path)
    error = error_of(result, 3)
    assert error["kind"] == "preflight"
    errors = [f for f in error["findings"] if f["severity"] == "error"]
    assert errors and all(f["fix"] for f in errors)


def test_answering_no_at_the_prompt_deletes_nothing_and_is_no_error(tmp_path: Path):
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSERVE_")}
    env.pop("CI", None)
    proc = subprocess.Popen(
        [EXE, "delete", "-t", "local", "-m", "kept"],
        cwd=tmp_path,
        env=env,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the question before answering
            if proc.poll() is not None or select.select([proc.stderr], [], [], 0.2)[0]:
                break
        os.write(main, b"n\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
    assert proc.returncode == 0, err
    assert "Delete model 'kept' (every version) on target 'local'? [y/N]" in err
    assert "nothing deleted: you answered no" in out and "internal error" not in err


# --------------------------------------------------------------------------- settings


def test_local_repository_is_relative_to_the_config_file(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "cloudserve.yaml").write_text("targets:\n  local:\n    repository: repo\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = json.loads(
        run(
            "-c", str(project / "cloudserve.yaml"), "-o", "json", "local", "status", cwd=elsewhere
        ).stdout
    )
    assert status["repository"] == str(project / "repo")


# --------------------------------------------------------------------------- output


def test_version_is_a_string_everywhere(tmp_path: Path, hp: Path):
    inspected = json.loads(run("-o", "json", "inspect", str(hp), cwd=tmp_path).stdout)
    checked = json.loads(run("-o", "json", "check", "-m", "m", "-e", str(hp), cwd=tmp_path).stdout)
    env = {"CLOUDSERVE_LOCAL__REPOSITORY": str(tmp_path / "repo")}
    planned = json.loads(
        run(
            "-o", "json", "deploy", "--dry-run", "-m", "m", "-e", str(hp), cwd=tmp_path, env=env
        ).stdout
    )
    assert inspected["export"]["version"] == checked["version"] == planned["plan"]["version"] == "1"


def test_text_shows_the_fix_of_every_error_finding(tmp_path: Path, hp: Path):
    (hp / "variables" / "variables.data-00000-of-00001").unlink()
    result = run("check", "-m", "bad name!", "-e", str(hp), "--version", "v1", cwd=tmp_path)
    assert result.returncode == 3
    for finding_id, fix in [
        ("export.incomplete", "fix: re-export the model"),
        ("name.invalid", "fix: set another model name"),
        ("version.format", "fix: pass --version N"),
    ]:
        assert finding_id in result.stderr and fix in result.stderr
    assert "\nhint: " in result.stderr


def test_every_finding_carries_its_source(tmp_path: Path, hp: Path):
    data = json.loads(run("-o", "json", "check", "-m", "m_1", "-e", str(hp), cwd=tmp_path).stdout)
    assert data["findings"] and all(f["source"] for f in data["findings"])


def test_hint_is_never_null(tmp_path: Path):
    (tmp_path / "cloudserve.yaml").write_text("model: [not, a, name]\n")
    json_error = error_of(run("-o", "json", "check", cwd=tmp_path), 2)
    assert json_error["hint"]
    text = run("check", cwd=tmp_path)
    assert "\nhint: " in text.stderr and "hint: None" not in text.stderr


def test_global_options_work_after_the_command(tmp_path: Path, hp: Path):
    data = json.loads(run("inspect", str(hp), "--output", "json", cwd=tmp_path).stdout)
    assert data["ok"] and data["export"]["version"] == "1"
    data = json.loads(run("check", "-m", "m", "-e", str(hp), "-o", "json", cwd=tmp_path).stdout)
    assert data["ok"] and data["model"] == "m"
    verbose = run("check", "-m", "m", "-e", "nope", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 3 and "Traceback" in verbose.stderr


@pytest.mark.parametrize("args", [(), ("deploy",), ("local",), ("delete",)])
def test_flags_show_no_value_placeholder(tmp_path: Path, args: tuple[str, ...]):
    result = run(*args, "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0 and "Usage:" in result.stdout
    assert "<bool>" not in result.stdout


def test_help_loads_no_adapter(tmp_path: Path):
    probe = (
        "import sys\n"
        "from cloudserve.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "loaded = [m for m in ('cloudserve_adapters.local.adapter', 'httpx', 'pydantic')\n"
        "          if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "local" in result.stdout
