"""The preflight rules common to every target, one by one (no CLI)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from cloudserve import limits, preflight
from cloudserve.errors import PreflightError
from cloudserve.export import inspect
from cloudserve.records import DeploySpec, ExportInfo
from tests.cli.fake_adapter import FakeAdapter, FakeConfig


@pytest.fixture
def export(testdata: Path, tmp_path: Path) -> ExportInfo:
    dest = tmp_path / "m" / "1"
    shutil.copytree(testdata / "saved_model_half_plus_two_tf2_cpu" / "00000123", dest)
    return inspect(dest)


def spec_for(export: ExportInfo, model: str = "half-plus-two", version: str = "1") -> DeploySpec:
    return DeploySpec(model=model, export=export.path, version=version, target="fake")


def ids(findings) -> dict[str, str]:
    return {f.id: f.severity for f in findings}


def test_a_clean_export_has_no_findings(export):
    adapter = FakeAdapter(FakeConfig())
    assert preflight.run(adapter, spec_for(export), export) == []


def test_export_gone(export):
    shutil.rmtree(export.path)
    found = preflight.run(FakeAdapter(FakeConfig()), spec_for(export), export)
    assert ids(found) == {"export.missing": "error"}


def test_missing_shards_are_named():
    files = ["variables/variables.data-00000-of-00003", "variables/variables.index"]
    assert preflight._missing_shards(files) == [
        "variables/variables.data-00001-of-00003",
        "variables/variables.data-00002-of-00003",
    ]
    assert preflight._missing_shards(["variables/variables.data-00000-of-00001"]) == []


def test_required_signature_comes_from_the_adapter(export, monkeypatch):
    monkeypatch.setattr(FakeAdapter, "required_signature", "serving_other")
    found = preflight.run(FakeAdapter(FakeConfig()), spec_for(export), export)
    assert ids(found) == {"export.serving_default": "error"}
    monkeypatch.setattr(FakeAdapter, "required_signature", None)
    assert preflight.run(FakeAdapter(FakeConfig()), spec_for(export), export) == []


def test_artifact_limits_only_when_the_table_has_them(export, monkeypatch):
    assert preflight.check_artifact_limits(export, "no-such-target") == []
    table = {
        "artifact_max_bytes": {"value": export.total_bytes, "source": "https://x.test"},
        "artifact_max_files": {"value": export.file_count, "source": "https://x.test"},
    }
    monkeypatch.setattr(limits, "table", lambda target: table)
    assert preflight.check_artifact_limits(export, "t") == []  # at the limit is fine
    table["artifact_max_bytes"]["value"] -= 1
    table["artifact_max_files"]["value"] -= 1
    assert ids(preflight.check_artifact_limits(export, "t")) == {
        "export.size": "error",
        "export.files": "error",
    }


def test_memory_estimate_formula(export):
    baseline = limits.limit("common", "memory_baseline_mb")
    estimate = preflight.estimate_memory_mb(export)
    assert estimate == baseline + 1  # a 39 KB model rounds up to one MiB over the baseline


def test_memory_rules(export):
    assert preflight.check_memory(export, None) == []
    assert preflight.check_memory(export, 16384) == []
    assert ids(preflight.check_memory(export, 256)) == {"memory.insufficient": "error"}
    assert ids(preflight.check_memory(export, 600)) == {"memory.estimate": "warning"}


def test_memory_of_big_weights(export):
    with (export.path / "variables" / "variables.data-00000-of-00001").open("r+b") as shard:
        shard.truncate(300 << 20)  # sparse: 300 MiB of weights without writing them
    # the weights fit in 1 GiB (512 + 300 MiB) but the 2.5x loading estimate does not
    assert ids(preflight.check_memory(export, 1024)) == {"memory.estimate": "warning"}
    assert ids(preflight.check_memory(export, 768)) == {"memory.insufficient": "error"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("half-plus-two", {}),
        ("HalfPlusTwo3", {}),
        ("a_b", {"name.portable": "warning"}),
        ("ab", {"name.portable": "warning"}),
        ("1model", {"name.portable": "warning"}),
        ("m" * 40, {"name.portable": "warning"}),
        ("m" * 64, {"name.invalid": "error"}),
        ("has space", {"name.invalid": "error"}),
        ("a/b", {"name.invalid": "error"}),
        ("-lead", {"name.invalid": "error"}),
        ("", {"name.invalid": "error"}),
    ],
)
def test_model_names(name, expected):
    assert ids(preflight.check_model_name(name)) == expected


@pytest.mark.parametrize(
    ("version", "ok"),
    [("1", True), ("1700000000", True), ("0", False), ("01", False), ("v1", False)],
)
def test_versions(version, ok):
    assert (preflight.check_version(version) == []) is ok


def test_tf_version_recorded(export):
    assert preflight.check_tf_version(export) == []
    unknown = dataclasses.replace(export, tf_version=None)
    assert ids(preflight.check_tf_version(unknown)) == {"export.tf_version": "warning"}


def test_findings_carry_fix_and_source(export):
    (finding,) = preflight.check_version("0")
    assert finding.fix and finding.source.startswith("https://")


def test_raise_on_errors_keeps_every_finding(export):
    findings = preflight.check_model_name("x y") + preflight.check_model_name("a_b")
    with pytest.raises(PreflightError) as info:
        preflight.raise_on_errors(findings)
    assert info.value.exit_code == 3 and len(info.value.findings) == 2


def test_common_limits_table_has_sources():
    table = limits.table("common")
    assert table and all(entry["source"].startswith("https://") for entry in table.values())
