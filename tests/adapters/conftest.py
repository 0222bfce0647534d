"""Fixtures shared by the adapter suites."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cloudserve.export import inspect
from cloudserve.records import ExportInfo
from tests.conftest import ROOT


@pytest.fixture(scope="session")
def broken_export(tmp_path_factory: pytest.TempPathFactory) -> ExportInfo:
    """Version 3 of an export that loads fine and fails every predict (a TF assertion): what a
    stand-in that really runs the model answers with an error. A suite whose stand-in only
    pretends to run models (aws) overrides this."""
    out = tmp_path_factory.mktemp("broken") / "3"
    writer = ROOT / "tests" / "cli" / "write_exports.py"
    subprocess.run([sys.executable, str(writer), "broken", str(out)], check=True)
    return inspect(out)
