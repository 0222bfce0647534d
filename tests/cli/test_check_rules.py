"""Each common preflight rule, tripped by a real export and seen through ``cloudserve check``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cloudserve import limits


def findings(data: dict) -> dict[str, str]:
    """finding id -> severity, from a check result or a preflight error."""
    items = data["findings"] if data["ok"] else data["error"]["findings"]
    return {f["id"]: f["severity"] for f in items}


def give_fake_limits(monkeypatch: pytest.MonkeyPatch, table: dict) -> None:
    """Give the fake target a limits table (the real targets keep theirs)."""
    real = limits.table
    monkeypatch.setattr(limits, "table", lambda target: table if target == "fake" else real(target))


@pytest.fixture
def check(cli, isolated, fake_target):
    def run(export: Path, *args: str, code: int = 3) -> dict:
        return cli.json(
            "check",
            "--target",
            "fake",
            "--model",
            "half-plus-two",
            "--export",
            export,
            *args,
            code=code,
        )

    return run


def test_clean_export_passes(check, export_copy):
    data = check(export_copy("1"), code=0)
    assert data["findings"] == [] and data["version"] == "1"
    assert set(data) == {"ok", "target", "model", "version", "export", "settings", "findings"}


def test_missing_variables_shard(check, export_copy):
    export = export_copy("1")
    (export / "variables" / "variables.data-00000-of-00001").unlink()
    data = check(export)
    assert findings(data)["export.incomplete"] == "error"
    assert data["error"]["exit_code"] == 3


def test_missing_variables_directory_in_a_graph_that_reads_variables(check, export_copy):
    export = export_copy("1")
    shutil.rmtree(export / "variables")
    data = check(export)
    assert findings(data)["export.variables"] == "error"
    (finding,) = [f for f in data["error"]["findings"] if f["id"] == "export.variables"]
    assert "its signatures read" in finding["message"] and finding["source"]


def test_missing_one_of_several_shards(check, export_copy):
    export = export_copy("1")
    variables = export / "variables"
    (variables / "variables.data-00000-of-00001").rename(
        variables / "variables.data-00000-of-00002"
    )
    data = check(export)
    assert "variables.data-00001-of-00002" in data["error"]["message"]


def test_no_serving_default(check, export_copy):
    export = export_copy("1")
    pb = export / "saved_model.pb"
    # rename the signature-map key in place (same length, so the protobuf stays valid): the
    # export then has only other signatures, like the mlp_two_inputs example, without TF
    data = pb.read_bytes()
    assert data.count(b"\x0a\x0fserving_default") == 1
    pb.write_bytes(data.replace(b"\x0a\x0fserving_default", b"\x0a\x0fyour_prediction"))
    data = check(export)
    assert findings(data)["export.serving_default"] == "error"
    assert "your_prediction" in data["error"]["message"]


def test_artifact_size_and_files_over_the_target_limits(check, export_copy, monkeypatch):
    table = {
        "artifact_max_bytes": {"value": 1000, "source": "https://example.test/size"},
        "artifact_max_files": {"value": 3, "source": "https://example.test/files"},
    }
    give_fake_limits(monkeypatch, table)
    data = check(export_copy("1"))
    items = {f["id"]: f for f in data["error"]["findings"]}
    assert items["export.size"]["severity"] == "error"
    assert items["export.size"]["source"] == "https://example.test/size"
    assert items["export.files"]["severity"] == "error"


def test_artifact_padded_past_the_limit(check, export_copy, monkeypatch):
    export = export_copy("1")
    table = {"artifact_max_bytes": {"value": 64 * 1024, "source": "https://example.test"}}
    give_fake_limits(monkeypatch, table)
    check(export, code=0)
    (export / "assets" / "padding.bin").write_bytes(b"\0" * 64 * 1024)
    assert findings(check(export))["export.size"] == "error"


def test_memory_too_small_is_an_error(check, export_copy):
    data = check(export_copy("1"), "--set", "targets.fake.memory_mb=256")
    assert findings(data)["memory.insufficient"] == "error"


def test_memory_nearly_full_is_a_warning(check, export_copy):
    data = check(export_copy("1"), "--set", "targets.fake.memory_mb=600", code=0)
    assert findings(data) == {"memory.estimate": "warning"}


def test_invalid_model_name(cli, isolated, fake_target, export_copy):
    data = cli.json(
        "check", "-t", "fake", "--model", "no spaces!", "--export", export_copy("1"), code=3
    )
    assert findings(data)["name.invalid"] == "error"


def test_model_name_not_portable_is_a_warning(cli, isolated, fake_target, export_copy):
    data = cli.json("check", "-t", "fake", "-m", "a_model", "-e", export_copy("1"))
    assert findings(data) == {"name.portable": "warning"}


def test_version_must_be_a_positive_integer(check, export_copy):
    assert findings(check(export_copy("1"), "--version", "007"))["version.format"] == "error"
    assert findings(check(export_copy("2"), "--version", "v2"))["version.format"] == "error"


def test_version_from_a_timestamp_directory(check, export_copy):
    assert check(export_copy("1700000000"), code=0)["version"] == "1700000000"


def test_no_version_anywhere_is_a_config_error(check, export_copy, tmp_path):
    export = export_copy("1").rename(tmp_path / "latest")
    data = check(export, code=2)
    assert "--version" in data["error"]["hint"]
    assert check(export, "--version", "4", code=0)["version"] == "4"
