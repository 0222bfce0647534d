"""The real ``cloudserve`` CLI with hostile exports and secrets (issue 11, items 11-12)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from adapters.aws import packaging
from adapters.local.repository import Repository
from cloudserve.errors import PreflightError
from tests.runtime.conftest import HALF_PLUS_TWO
from tests.support import run_local_cli

SECRET = "hunter2-do-not-print"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_local_cli(cwd, "hardening", *args, timeout=120)


def finding_ids(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 3, result.stdout + result.stderr
    error = json.loads(result.stdout)["error"]
    return [finding["id"] for finding in error["findings"]]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    target = tmp_path / "export" / "1"
    shutil.copytree(HALF_PLUS_TWO / "00000123", target)
    return target


# ---- item 11: symbolic links --------------------------------------------------------------------


def test_link_leaving_the_export_is_refused(tmp_path: Path, export: Path) -> None:
    outside = tmp_path / "private.txt"
    outside.write_text(SECRET)
    (export / "assets" / "passwd").symlink_to(outside)
    for command in (["inspect", str(export)], ["deploy", "--export", str(export)]):
        result = cli(tmp_path, "-o", "json", *command)
        assert finding_ids(result) == ["export.symlink"]
        assert "outside the export" in result.stdout
    assert not (tmp_path / "repo" / "models").exists() or not any(
        path.name == "passwd" for path in (tmp_path / "repo").rglob("*")
    )
    with pytest.raises(PreflightError):
        Repository(tmp_path / "repo2").install_version(export, "m", "1")
    with pytest.raises(PreflightError):
        packaging.build(export, "1", tmp_path / "model.tar.gz")


@pytest.mark.parametrize("loop", ["self", "parent"])
def test_link_loop_is_a_clear_preflight_error(tmp_path: Path, export: Path, loop: str) -> None:
    link = export / "assets" / "loop"
    link.symlink_to(link.name if loop == "self" else "..")
    result = cli(tmp_path, "-o", "json", "inspect", str(export))
    assert finding_ids(result) == ["export.symlink_loop"]
    assert "symbolic link loop" in result.stdout
    text = cli(tmp_path, "inspect", str(export))
    assert text.returncode == 3 and "Traceback" not in text.stderr


def test_linked_files_count_in_size_checks(tmp_path: Path, export: Path) -> None:
    before = json.loads(cli(tmp_path, "-o", "json", "inspect", str(export)).stdout)["export"]
    (export / "assets" / "vars").symlink_to("../variables", target_is_directory=True)
    after = json.loads(cli(tmp_path, "-o", "json", "inspect", str(export)).stdout)["export"]
    variables = sum(p.stat().st_size for p in (export / "variables").iterdir())
    assert after["total_bytes"] == before["total_bytes"] + variables
    assert after["file_count"] == before["file_count"] + 2
    # What the size checks counted is what the AWS tarball packs.
    artifact = packaging.build(export, "1", tmp_path / "model.tar.gz")
    with tarfile.open(artifact.path) as tar:
        names = tar.getnames()
    assert "1/assets/vars/variables.index" in names


# ---- item 12: secrets in CLI output --------------------------------------------------------------


def test_yaml_syntax_error_does_not_echo_the_line(tmp_path: Path) -> None:
    (tmp_path / "cloudserve.yaml").write_text(
        f'model: m\ntargets:\n  aws:\n    secret_key: "{SECRET}\n  x: [\n'
    )
    result = cli(tmp_path, "check")
    assert result.returncode == 2, result.stderr
    assert "is not valid YAML" in result.stderr and "line 4, column 17" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_set_typos_do_not_echo_values(tmp_path: Path, export: Path) -> None:
    for args in (
        ["--set", f"targets.local.passwd {SECRET}"],  # '=' forgotten
        ["--set", "model=x", "--set", f"model.password={SECRET}"],  # path through a value
    ):
        result = cli(tmp_path, "-v", "-o", "json", "check", "--export", str(export), *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--set" in result.stderr
        assert SECRET not in result.stdout + result.stderr


def test_verbose_traceback_is_redacted(tmp_path: Path) -> None:
    signed = f"/exports/m?X-Amz-Signature={SECRET}&X-Goog-Signature={SECRET}&sig={SECRET}"
    result = cli(tmp_path, "-v", "inspect", signed)
    assert result.returncode == 3
    assert "Traceback" in result.stderr  # --verbose still shows where it failed
    assert "X-Amz-Signature=***" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_redaction_covers_more_secret_shapes() -> None:
    from cloudserve.output import redact, redact_text

    settings = {
        "passphrase": SECRET,
        "db_pwd": SECRET,
        "jwt": SECRET,
        "endpoint": f"https://:{SECRET}@db.example.com/x",
        "s3": f"https://b.s3.amazonaws.com/k?X-Amz-Credential=a&X-Amz-Signature={SECRET}",
        "gcs": f"https://storage.googleapis.com/b/o?X-Goog-Signature={SECRET}",
        "sas": f"https://a.blob.core.windows.net/c/b?sv=2024&sig={SECRET}&se=1",
        "link": f"https://h/x?token={SECRET}",
        "signatures": {"serving_default": "kept"},
    }
    shown = json.dumps(redact(settings))
    assert SECRET not in shown and "kept" in shown
    assert SECRET not in redact_text(f"--set targets.aws.secret_key={SECRET} {{'pwd': '{SECRET}'}}")
