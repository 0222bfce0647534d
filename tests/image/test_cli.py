"""``cloudserve image build|push`` as a user runs them, against the test engine and a registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cloudserve import runtime_images
from cloudserve.runtime_images import BuiltImage
from tests.dockerd import BASE_IMAGE, DockerEngine, local_ca_certificates

pytestmark = pytest.mark.slow


def cloudserve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudserve", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture
def cli_env(docker_engine: DockerEngine, tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_HOST": docker_engine.base_url, "CLOUDSERVE_HOME": str(tmp_path / "home")}


def build_flags(tmp_path: Path) -> list[str]:
    """What this machine needs: the offline base, its proxy's CA, host networking."""
    flags = ["--base-image", BASE_IMAGE, "--network", "host"]
    pems = local_ca_certificates()
    if pems:
        (tmp_path / "ca.pem").write_text(pems)
        flags += ["--ca-certs", str(tmp_path / "ca.pem")]
    return flags


def test_build_prints_id_and_size(
    runtime_image: BuiltImage, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Same build arguments as the fixture's build: every layer comes from the cache."""
    result = cloudserve(
        "image", "build", "--tf-version", runtime_image.tf_version, "--tag", "mine:1",
        *build_flags(tmp_path), "--output", "json", env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = json.loads(result.stdout)["image"]
    assert image["id"] == runtime_image.id
    assert image["size_bytes"] == runtime_image.size
    assert "mine:1" in image["tags"]
    assert runtime_images.default_tag("cpu", runtime_image.tf_version) in image["tags"]
    assert "Using cache" in result.stderr  # the build's progress is streamed

    text = cloudserve("image", "build", "--tf-version", runtime_image.tf_version,
                      *build_flags(tmp_path), env=cli_env)  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert f"built {runtime_image.id}" in text.stdout and " GB " in text.stdout


def test_build_with_a_bad_version_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = cloudserve("image", "build", "--tf-version", "latest", env=cli_env)
    assert result.returncode == 2
    assert "--tf-version 'latest' is not a version" in result.stderr


def test_push_to_a_registry_records_the_digest(
    runtime_image: BuiltImage,
    local_registry: str,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = cloudserve(
        "image", "push", "--registry", f"{local_registry}/team", "--no-build",
        "--tf-version", runtime_image.tf_minor, "--output", "json", env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pushed = json.loads(result.stdout)["pushed"]
    repository = f"{local_registry}/team/cloudserve-runtime"
    assert pushed["repository"] == repository
    assert pushed["reference"] == f"{repository}@{pushed['digest']}"
    # the registry serves the manifest under that digest
    request = urllib.request.Request(
        f"http://{local_registry}/v2/team/cloudserve-runtime/manifests/{pushed['digest']}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == pushed["digest"]
    # and the record is what deploys look up
    monkeypatch.setenv("CLOUDSERVE_HOME", cli_env["CLOUDSERVE_HOME"])
    found = runtime_images.find(local_registry, variant="cpu", tf_version=runtime_image.tf_minor)
    assert found is not None and found.reference == pushed["reference"]
    # pushing again is idempotent: same digest
    again = cloudserve(
        "image", "push", "--registry", f"{local_registry}/team", "--no-build",
        "--output", "json", env=cli_env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["pushed"]["digest"] == pushed["digest"]


def test_push_without_a_local_image_says_how_to_build(cli_env: dict[str, str]) -> None:
    result = cloudserve(
        "image", "push", "--registry", "127.0.0.1:1/x", "--no-build", "--tf-version", "1.0",
        env=cli_env,
    )  # fmt: skip
    assert result.returncode == 8, result.stderr
    assert "no local cpu runtime image with TF 1.0" in result.stderr
    assert "cloudserve image build --tf-version 1.0" in result.stderr


def test_push_needs_a_destination(cli_env: dict[str, str]) -> None:
    result = cloudserve("image", "push", env=cli_env)
    assert result.returncode == 2
    assert "--registry" in result.stderr
