"""CLI test fixtures: the ``fake`` target, a CliRunner, and copies of test exports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudserve import registry
from cloudserve.cli.main import app
from tests.cli.fake_adapter import FakeAdapter

FAKE_ENTRY = "tests.cli.fake_adapter:FakeAdapter"


@pytest.fixture
def fake_target(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdapter]:
    """Register the in-memory ``fake`` target (empty) for this test."""
    monkeypatch.setitem(registry._BUILTIN, "fake", FAKE_ENTRY)
    FakeAdapter.reset()
    yield FakeAdapter
    FakeAdapter.reset()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory with no CLOUDSERVE_* variables set."""
    import os

    for var in list(os.environ):
        if var.startswith("CLOUDSERVE_"):
            monkeypatch.delenv(var)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def export_copy(testdata: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy TF Serving's half_plus_two (TF2) to ``tmp/<name>/<version>`` and return it."""

    def make(version: str = "1", name: str = "hp") -> Path:
        dest = tmp_path / name / version
        shutil.copytree(testdata / "saved_model_half_plus_two_tf2_cpu" / "00000123", dest)
        return dest

    return make


class Cli:
    """Runs ``cloudserve`` in-process and parses JSON results."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(app, [str(a) for a in args], input=input)

    def json(self, *args: str, code: int = 0, input: str | None = None) -> dict:
        result = self("-o", "json", *args, input=input)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        data = json.loads(result.stdout)
        assert data["ok"] is (code == 0)
        return data


@pytest.fixture
def cli() -> Cli:
    return Cli()
