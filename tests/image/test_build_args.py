"""What the image build installs and how pushes are found again; no Docker needed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cloudserve import runtime_images
from cloudserve.errors import ConfigError

SCRIPT = Path(__file__).resolve().parents[2] / "runtime_image" / "scripts" / "requirements.py"
EXTRA = ["tensorflow>=2.15", "tensorflow-serving-api>=2.15", "numpy>=1.26"]


@pytest.fixture(scope="module")
def split():
    spec = importlib.util.spec_from_file_location("image_requirements", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.split_requirements


@pytest.mark.parametrize(
    ("package", "version", "expected_tf", "expected_api"),
    [
        ("tensorflow-cpu", "", "tensorflow-cpu>=2.15", "tensorflow-serving-api>=2.15"),
        ("tensorflow-cpu", "2.21", "tensorflow-cpu==2.21.*", "tensorflow-serving-api==2.21.*"),
        ("tensorflow-cpu", "2.21.0", "tensorflow-cpu==2.21.0", "tensorflow-serving-api==2.21.*"),
        ("tensorflow[and-cuda]", "2.21", "tensorflow[and-cuda]==2.21.*", None),
        ("tensorflow-cpu==2.20.0", "2.21", "tensorflow-cpu==2.20.0", None),
    ],
)
def test_tensorflow_requirement(split, package, version, expected_tf, expected_api) -> None:
    with_deps, without_deps = split(EXTRA, package, version)
    assert with_deps == [expected_tf, "numpy>=1.26"]
    assert len(without_deps) == 1 and without_deps[0].startswith("tensorflow-serving-api")
    if expected_api:
        assert without_deps == [expected_api]


def test_build_args_per_variant() -> None:
    assert runtime_images.build_args("cpu") == {"TF_PACKAGE": "tensorflow-cpu"}
    gpu = runtime_images.build_args("gpu", tf_version="2.21", gcs=True, extra_ca_certs="PEM")
    assert gpu == {
        "TF_PACKAGE": "tensorflow[and-cuda]",
        "TF_VERSION": "2.21",
        "EXTRA_PIP": "google-cloud-storage",
        "EXTRA_CA_CERTS": "PEM",
    }
    with pytest.raises(ConfigError, match="unknown runtime image variant"):
        runtime_images.build_args("tpu")
    with pytest.raises(ConfigError, match="is not a version"):
        runtime_images.build_args("cpu", tf_version="latest")


def test_find_matches_a_registry_pattern(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path))
    ecr = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/cloudserve-runtime"
    pushed = runtime_images.record(ecr, "sha256:" + "1" * 64, variant="cpu", tf_version="2.21")
    assert runtime_images.find("*.dkr.ecr.eu-west-1.amazonaws.com", tf_version="2.21") == pushed
    assert runtime_images.find("*.dkr.ecr.us-east-1.amazonaws.com") is None
    assert runtime_images.find("*.dkr.ecr.eu-west-1.amazonaws.com", variant="gpu") is None
    assert runtime_images.find("111122223333.dkr.ecr.eu-west-1.amazonaws.com") == pushed
    assert runtime_images.find("11112222333.dkr.ecr.eu-west-1.amazonaws.com") is None
    assert pushed.reference == f"{ecr}@sha256:{'1' * 64}"


def test_ecr_registry_token_and_repository(monkeypatch) -> None:
    """``image push --target aws``: an ECR token from boto3 and the repository created (once),
    against moto's ECR (the push itself is tested against a real registry in test_cli.py)."""
    import boto3

    from cloudserve.cli.image_cmd import _ecr
    from tests.adapters.aws_harness import Harness

    harness = Harness()
    harness.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", harness.url)
        first = _ecr("us-east-1")
        again = _ecr("us-east-1")  # the repository exists now: no error
        assert first.prefix == again.prefix
        assert first.prefix.endswith(".dkr.ecr.us-east-1.amazonaws.com")
        assert first.auth["username"] == "AWS" and first.auth["password"]
        ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=harness.url)
        names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
        assert names == [runtime_images.REPOSITORY_NAME]
    finally:
        harness.stop()
