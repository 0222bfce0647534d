"""The runtime image as the clouds' fallback: a TF 2.21 export, which neither SageMaker's nor
Vertex's prebuilt images serve, is planned with the pushed runtime image, pinned by digest.

The image is really built and pushed (to Debian's docker-registry on loopback: ECR and Artifact
Registry cannot be reached from the tests); its registry digest is then recorded under the
target's own repository name, as ``cloudserve image push --target aws|gcp`` records it after its
push. The dry run is the CLI's (``cloudserve.deploy.dry_run``: every preflight check, then the
plan) against each target's stand-ins (moto server; the Vertex fake with gcp-storage-emulator),
reusing their test harnesses.
"""

from __future__ import annotations

import pytest

from cloudserve import runtime_images
from cloudserve.deploy import Prepared, dry_run
from cloudserve.records import DeploySpec, ExportInfo
from cloudserve.runtime_images import BuiltImage
from cloudserve_adapters.aws.adapter import SageMakerAdapter
from cloudserve_adapters.gcp.adapter import VertexAdapter
from cloudserve_adapters.gcp.sdk import GcpClients
from tests.adapters import test_aws, test_gcp
from tests.adapters.test_aws import harness, moto  # noqa: F401 - fixtures
from tests.adapters.test_gcp import PROJECT, REGION, fake, storage, storage_emulator  # noqa: F401
from tests.dockerd import DockerEngine

pytestmark = pytest.mark.slow

ECR_ACCOUNT = "123456789012"  # moto's account


@pytest.fixture
def pushed_digest(
    docker_engine: DockerEngine,
    runtime_image: BuiltImage,
    local_registry: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The built CPU image pushed for real; its registry digest. Records go to a fresh home."""
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path / "home"))
    return runtime_images.push(
        docker_engine.client(),
        runtime_image.id,
        f"{local_registry}/fallback/cloudserve-runtime",
        tag=f"tf{runtime_image.tf_minor}-cpu",
    )


@pytest.fixture
def make_gcp(fake):  # noqa: F811 - the imported fixture
    """A Vertex adapter on the Vertex fake and the GCS emulator (test_gcp's settings)."""
    from google.auth.credentials import AnonymousCredentials

    clients = GcpClients(
        credentials=AnonymousCredentials(), api_endpoint=fake.url, logging_endpoint=fake.url
    )
    return lambda **overrides: VertexAdapter(test_gcp.make_config(**overrides), clients=clients)


@pytest.fixture
def make_aws(moto):  # noqa: F811 - the imported fixture
    """A SageMaker adapter on the moto server (test_aws's settings)."""

    def make(**overrides) -> SageMakerAdapter:
        config = test_aws.config(**overrides)
        clients = moto.clients(config.region, read_timeout=config.timeouts.read_timeout_s)
        return SageMakerAdapter(config, clients=clients)

    return make


def tf_221(export: ExportInfo, runtime_image: BuiltImage) -> str:
    minor = ".".join(export.tf_version.split(".")[:2])
    if minor != runtime_image.tf_minor or export.tf_minor < (2, 16):
        pytest.skip(f"needs an export from TF >= 2.16 matching the image (export: {minor})")
    return minor


def planned_images(outcome) -> list[str]:
    return [a.detail for a in outcome.plan.actions if "@sha256:" in a.detail]


def test_gcp_dry_run_plans_the_pushed_image(
    pushed_digest: str, runtime_image: BuiltImage, make_gcp, export_v2: ExportInfo
) -> None:
    minor = tf_221(export_v2, runtime_image)
    repository = f"{REGION}-docker.pkg.dev/{PROJECT}/cloudserve/cloudserve-runtime"
    runtime_images.record(repository, pushed_digest, variant="cpu", tf_version=minor)
    adapter = make_gcp()
    spec = DeploySpec(model="fallback", export=export_v2.path, version="1", target="gcp")
    outcome = dry_run(Prepared(adapter=adapter, spec=spec, export=export_v2, sample=None))
    (detail,) = planned_images(outcome)
    assert f"{repository}@{pushed_digest}" in detail


def test_gcp_dry_run_without_a_push_names_the_push_command(
    pushed_digest: str, runtime_image: BuiltImage, make_gcp, export_v2: ExportInfo
) -> None:
    from cloudserve.errors import PreflightError

    minor = tf_221(export_v2, runtime_image)
    adapter = make_gcp()
    spec = DeploySpec(model="fallback", export=export_v2.path, version="1", target="gcp")
    with pytest.raises(PreflightError) as caught:
        dry_run(Prepared(adapter=adapter, spec=spec, export=export_v2, sample=None))
    fixes = [f.fix for f in caught.value.findings if f.severity == "error"]
    assert runtime_images.push_command("gcp", variant="cpu", tf_version=minor) in fixes


def test_aws_dry_run_plans_the_pushed_image(
    pushed_digest: str, runtime_image: BuiltImage, make_aws, export_v2: ExportInfo
) -> None:
    minor = tf_221(export_v2, runtime_image)
    repository = f"{ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/cloudserve-runtime"
    runtime_images.record(repository, pushed_digest, variant="cpu", tf_version=minor)
    adapter = make_aws(image=None)
    spec = DeploySpec(model="fallback", export=export_v2.path, version="1", target="aws")
    outcome = dry_run(Prepared(adapter=adapter, spec=spec, export=export_v2, sample=None))
    details = planned_images(outcome)
    assert details and all(f"{repository}@{pushed_digest}" in d for d in details)
