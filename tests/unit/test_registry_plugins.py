"""Adapters found through the ``cloudserve.adapters`` entry-point group of installed dists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cloudserve import registry
from cloudserve.errors import ConfigError, MissingDependency
from tests.cli.fake_adapter import FakeAdapter
from tests.cli.plugin import install_plugin


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_of_an_installed_dist_is_found(site: Path):
    install_plugin(site)
    assert registry.available()["plugged"] == "tests.cli.fake_adapter:FakeAdapter"
    assert registry.load("plugged") is FakeAdapter
    assert registry.load("PLUGGED ") is FakeAdapter


def test_plugin_whose_module_is_missing(site: Path):
    install_plugin(site, name="ghost", entry="cloudserve_ghost.adapter:Ghost")
    with pytest.raises(MissingDependency):
        registry.load("ghost")


def test_plugin_that_is_not_an_adapter(site: Path):
    install_plugin(site, name="notadapter", entry="pathlib:Path")
    with pytest.raises(ConfigError, match="not a cloudserve Adapter"):
        registry.load("notadapter")


@pytest.mark.parametrize(("alias", "name"), [("sagemaker", "aws"), ("vertex", "gcp")])
def test_aliases(alias: str, name: str):
    assert registry.canonical_name(alias) == name


def test_plugin_modules_are_not_imported_until_used(site: Path):
    install_plugin(site, name="lazy", entry="cloudserve_lazy_probe:Adapter")
    registry.available()
    assert "cloudserve_lazy_probe" not in sys.modules
