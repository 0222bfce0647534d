"""``cloudserve targets`` and ``cloudserve init``; targets that are not supported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloudserve import spec
from tests.cli.plugin import install_plugin


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tmp_path / "site"


def test_targets_lists_the_plugin(site: Path, cli):
    install_plugin(site)
    rows = {row["name"]: row for row in cli.json("targets")["targets"]}
    plugged = rows["plugged"]
    assert plugged["installed"] and plugged["sdk_installed"] is True
    settings = {s["name"]: s for s in plugged["settings"]}
    assert settings["region"] == {
        "name": "region",
        "type": "str",
        "required": False,
        "default": "test-1",
        "description": "Region of the fake cloud.",
    }
    assert settings["serverless.memory_mb"]["type"] == "1024 | 2048 | 3072"
    assert settings["memory_mb"]["type"] == "int | None"
    assert {"local", "aws", "gcp"} <= rows.keys()


def test_plugin_whose_module_is_missing(site: Path, cli):
    install_plugin(site, name="ghost", entry="cloudserve_ghost.adapter:Ghost")
    row = next(r for r in cli.json("targets")["targets"] if r["name"] == "ghost")
    assert row["installed"] is False and "not installed" in row["error"]


@pytest.mark.parametrize("name", ["ml-v1", "ai-platform"], ids=["mlv1", "aip"])
def test_not_supported_targets_exit_7(name: str, cli, isolated):
    data = cli.json("--target", name, "status", "--model", "m", code=7)
    assert data["error"]["kind"] == "not_supported" and data["error"]["hint"]


def test_init_writes_a_valid_commented_file(cli, isolated):
    data = cli.json("init", "--model", "half-plus-two", "--export", "models/hp")
    assert data == {"ok": True, "path": "cloudserve.yaml", "target": "local"}
    text = (isolated / "cloudserve.yaml").read_text()
    assert text.count("\n# ") > 5 and "    # repository:" in text  # local settings documented
    assert "# aws:" in text and "# gcp:" in text
    settings = spec.load(None, env={})
    assert settings.project.model == "half-plus-two"
    assert settings.project.export == isolated / "models/hp"
    assert settings.target == "local"


def test_init_refuses_to_overwrite(cli, isolated):
    cli.json("init")
    data = cli.json("init", code=2)
    assert "already exists" in data["error"]["message"] and "--force" in data["error"]["hint"]
    cli.json("init", "--force", "--target", "vertex")
    assert yaml.safe_load((isolated / "cloudserve.yaml").read_text())["target"] == "gcp"


def test_init_for_a_target_with_required_settings(cli, isolated):
    cli.json("init", "other.yaml", "--target", "gcp")
    data = cli.json("--config", "other.yaml", "check", code=3)
    missing = {f["message"] for f in data["error"]["findings"] if f["id"] == "settings.missing"}
    assert "targets.gcp.project is required and not set" in missing
