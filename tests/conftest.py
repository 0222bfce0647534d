"""Shared fixtures: test models, fake cloud credentials, opt-in real-cloud smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudserve.export import inspect
from cloudserve.records import ExportInfo

pytest_plugins = ["tests.dockerd"]  # docker_engine, runtime_image fixtures

ROOT = Path(__file__).resolve().parents[1]
#: TF Serving's test models: $CLOUDSERVE_TESTDATA when set (the directory holding ``tfserving/``),
#: else ``../shared/testdata`` beside the checkout (where CI clones shared/)
TESTDATA = (
    Path(os.environ["CLOUDSERVE_TESTDATA"]).expanduser()
    if os.environ.get("CLOUDSERVE_TESTDATA")
    else ROOT.parent / "shared" / "testdata"
) / "tfserving"

SMOKE_FLAGS = ("aws", "gcp", "azure")


def pytest_addoption(parser: pytest.Parser) -> None:
    for name in SMOKE_FLAGS:
        parser.addoption(
            f"--{name}",
            action="store_true",
            default=False,
            help=f"also run the real-{name.upper()} smoke tests (needs credentials; costs money)",
        )


def pytest_configure(config: pytest.Config) -> None:
    for name in SMOKE_FLAGS:
        config.addinivalue_line("markers", f"{name}: real-{name} smoke test, opt-in with --{name}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in SMOKE_FLAGS:
            if name in item.keywords and not config.getoption(f"--{name}"):
                item.add_marker(pytest.mark.skip(reason=f"real-cloud smoke test: pass --{name}"))


@pytest.fixture(autouse=True)
def _no_real_cloud_credentials(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake credentials and a fixed region, so no test can reach a real account.

    Opt-in real-cloud smoke tests (marked aws/gcp/azure) keep the caller's credentials.
    """
    if any(request.node.get_closest_marker(name) for name in SMOKE_FLAGS):
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


@pytest.fixture(scope="session")
def testdata() -> Path:
    """TF Serving's own test models (``$CLOUDSERVE_TESTDATA/tfserving``, else
    ``../shared/testdata/tfserving``); skips, saying where to put them, when absent."""
    if not TESTDATA.is_dir():
        pytest.skip(
            f"TF Serving test models not found at {TESTDATA}: clone shared/ beside the checkout "
            "or set CLOUDSERVE_TESTDATA to the directory holding tfserving/"
        )
    return TESTDATA


def export_example(name: str, out: Path, version: int = 1, *extra: str) -> Path:
    """Write an example model with examples/export_models.py; returns the SavedModel dir."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "export_models.py"),
            name,
            "--out",
            str(out),
            "--version",
            str(version),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out / str(version)


@pytest.fixture(scope="session")
def export_v1(testdata: Path) -> ExportInfo:
    """half_plus_two (TF Serving's test model): {"instances": [[1.0]]} -> [[2.5]]."""
    return inspect(testdata / "saved_model_half_plus_two_cpu" / "00000123")


@pytest.fixture(scope="session")
def export_v2(tmp_path_factory: pytest.TempPathFactory) -> ExportInfo:
    """The linear example y = 2x + 1: {"instances": [[1.0]]} -> [[3.0]]."""
    out = tmp_path_factory.mktemp("linear")
    return inspect(export_example("linear", out, 2, "--weight", "2.0", "--bias", "1.0"))
