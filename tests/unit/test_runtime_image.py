"""The runtime image definition, checked without Docker: args, ports, entrypoint, imports."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "runtime_image" / "Dockerfile"
PACKAGE = ROOT / "runtime_image" / "cloudserve_runtime"
FORBIDDEN_IMPORTS = ("typer", "boto3", "botocore", "googleapiclient", "google.cloud", "azure")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile; continuations joined, heredocs skipped."""
    result: list[tuple[str, str]] = []
    heredoc_end: str | None = None
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
        marker = re.search(r"<<-?'?(\w+)'?", rest)
        if marker:
            heredoc_end = marker.group(1)
    return result


def values(keyword: str) -> list[str]:
    return [rest for name, rest in instructions() if name == keyword]


def test_one_definition_for_cpu_and_gpu() -> None:
    args = dict(arg.split("=", 1) for arg in values("ARG"))
    assert args["BASE_IMAGE"] == "python:3.11-slim"
    assert args["TF_PACKAGE"] == "tensorflow-cpu"
    assert values("FROM") == ["${BASE_IMAGE}"]


def test_ports_env_user_and_healthcheck() -> None:
    assert values("EXPOSE") == ["8500 8501"]
    env = " ".join(values("ENV"))
    assert "MODEL_NAME=model" in env
    assert "MODEL_BASE_PATH=/models" in env
    (user,) = values("USER")
    assert user not in ("root", "0")
    (healthcheck,) = values("HEALTHCHECK")
    assert "http://127.0.0.1:8501/readyz" in healthcheck


def test_entrypoint_runs_the_runtime_module() -> None:
    (entrypoint,) = values("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv[:3] == ["python", "-m", "cloudserve_runtime"]
    assert "--port=8500" in argv and "--rest_api_port=8501" in argv
    assert importlib.util.find_spec("cloudserve_runtime") is not None
    assert (PACKAGE / "__main__.py").is_file()


def test_image_installs_only_the_runtime_extra() -> None:
    text = DOCKERFILE.read_text()
    script = (ROOT / "runtime_image" / "scripts" / "requirements.py").read_text()
    assert "runtime_image/scripts/requirements.py" in text
    assert '["optional-dependencies"]["runtime"]' in script
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["runtime"]
    assert not any(re.match(r"(typer|boto3|google-|azure)", req) for req in extra)
    assert "pip install ." not in text and "pip install -e" not in text
    assert "COPY runtime_image/cloudserve_runtime " in text


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_runtime_imports_no_cli_or_cloud_sdk(path: Path) -> None:
    bad = {
        name
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS)
        or name == "cloudserve"
        or name.startswith("cloudserve.")
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_forbidden_import_scan_catches_offenders(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import typer\nfrom boto3 import client\nfrom googleapiclient import x\n")
    assert imported_modules(sample) >= {"typer", "boto3", "googleapiclient"}


def test_batching_module_is_importable_without_tensorflow() -> None:
    """batching.py is pure numpy: its unit tests and the gRPC path never need TF to import it."""
    assert "tensorflow" not in {m.split(".")[0] for m in imported_modules(PACKAGE / "batching.py")}
