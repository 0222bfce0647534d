"""The docker target against a real Docker engine running the built runtime image.

Every contract test deploys into a fresh repository; the model's container
(``cloudserve-contract-model``) is created by the first deploy and removed by the delete that
ends each test. The engine has no bridge network here, so containers use ``network: host``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudserve.errors import PreflightError, ProviderError
from cloudserve.records import DeploySpec
from cloudserve.runtime_images import BuiltImage
from cloudserve_adapters.docker.adapter import DockerAdapter, DockerClients
from cloudserve_adapters.docker.config import DockerConfig
from cloudserve_adapters.docker.container import container_name
from tests.adapters.contract import ANSWERS, PAYLOAD, AdapterContract, predictions
from tests.dockerd import DockerEngine

pytestmark = pytest.mark.slow


def files_under(path: Path) -> list[str]:
    if not path.is_dir():
        return []
    return sorted(
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and "/models/" in f"/{p.relative_to(path).as_posix()}"
    )


def make_adapter(engine: DockerEngine, root: Path, **settings) -> DockerAdapter:
    config = DockerConfig(repository=root, network="host", startup_timeout_s=120, **settings)
    return DockerAdapter(config, clients=DockerClients(base_url=engine.base_url))


@pytest.fixture
def docker_adapter(
    docker_engine: DockerEngine, runtime_image: BuiltImage, tmp_path: Path
) -> Iterator[DockerAdapter]:
    """A docker target on an empty repository; its containers are removed afterwards."""
    adapter = make_adapter(docker_engine, tmp_path / "repo")
    yield adapter
    client = docker_engine.client()
    for container in client.containers.list(all=True, filters={"label": "io.cloudserve.model"}):
        container.remove(force=True)


class TestDockerContract(AdapterContract):
    target = "docker"

    @pytest.fixture
    def adapter(self, docker_adapter: DockerAdapter) -> DockerAdapter:
        return docker_adapter

    def stored_objects(self, adapter: DockerAdapter) -> list[str]:
        return files_under(adapter.config.repository)

    def container(self, adapter: DockerAdapter):
        return adapter.docker().containers.get(container_name(self.model))

    def test_container_settings(self, adapter, export_v1, runtime_image: BuiltImage):
        """Restart policy, memory limit from the estimate, read-only repository, image."""
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        container = self.container(adapter)
        host = container.attrs["HostConfig"]
        assert host["RestartPolicy"]["Name"] == "unless-stopped"
        from cloudserve.preflight import estimate_memory_mb

        assert host["Memory"] == (int(2.0 * estimate_memory_mb(export_v1)) + 1) * 1024 * 1024
        root = str(adapter.config.repository.resolve() / self.model)
        (mount,) = container.attrs["Mounts"]
        assert mount["Source"] == root and mount["Destination"] == root and not mount["RW"]
        assert container.image.id == runtime_image.id
        assert container.attrs["Config"]["User"] == "cloudserve"

    def test_new_version_is_hot_loaded(self, adapter, export_v1, export_v2):
        """The second version loads in the same container: no restart."""
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        started = self.container(adapter).attrs["State"]["StartedAt"]
        adapter.deploy(self.spec(export_v2, "2", set_default=True), export_v2, timeout=120)
        assert self.container(adapter).attrs["State"]["StartedAt"] == started
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["2"]

    def test_restart_keeps_serving(self, adapter, export_v1, export_v2):
        """After the container restarts, the runtime serves the same default again."""
        self.deploy_both(adapter, export_v1, export_v2)
        adapter.set_default(self.model, "2", timeout=120)
        self.container(adapter).restart(timeout=40)
        again = make_adapter_like(adapter)
        record = again.set_default(self.model, "2", timeout=120)  # waits until it serves
        assert not record.changed
        assert predictions(again.predict(self.model, PAYLOAD)) == ANSWERS["2"]

    def test_version_logs_are_docker_logs(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        logs = adapter.version_logs(self.model, "1", lines=200)
        assert logs and any(self.model in line for line in logs)

    def test_delete_removes_the_container(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        removed = adapter.delete(self.model)
        assert container_name(self.model) in removed
        names = [c.name for c in adapter.docker().containers.list(all=True)]
        assert container_name(self.model) not in names


def make_adapter_like(adapter: DockerAdapter) -> DockerAdapter:
    """A second adapter on the same settings: what a later CLI command gets."""
    return DockerAdapter(adapter.config, clients=adapter.clients)


def test_missing_image_is_a_preflight_error(
    docker_engine: DockerEngine, tmp_path: Path, export_v1
) -> None:
    """With no runtime image for the export's TF (or newer) on the host, nothing is copied and
    the fix names the build command."""
    adapter = make_adapter(docker_engine, tmp_path / "repo")
    future = dataclasses.replace(export_v1, tf_version="9.99.0")  # newer than any image built
    spec = DeploySpec(model="m", export=future.path, version="1", target="docker")
    with pytest.raises(PreflightError) as caught:
        adapter.deploy(spec, future, timeout=60)
    finding = next(f for f in caught.value.findings if f.id == "docker.image")
    assert "cloudserve image build --tf-version 9.99" in finding.fix
    assert files_under(tmp_path / "repo") == []


def test_gpu_setting_requests_gpus(
    docker_engine: DockerEngine, runtime_image: BuiltImage, tmp_path: Path
) -> None:
    """``gpus`` reaches the engine as a GPU device request (docker run --gpus): this engine has
    no NVIDIA runtime, so it refuses exactly that request, and the error says so."""
    adapter = make_adapter(docker_engine, tmp_path / "repo", gpus=1, image=runtime_image.id)
    with adapter._model("gpu-model"), pytest.raises(ProviderError) as caught:
        adapter.runtime.ensure_running()
    assert "capabilities: [[gpu]]" in caught.value.message
    names = [c.name for c in docker_engine.client().containers.list(all=True)]
    assert container_name("gpu-model") not in names  # nothing left behind
