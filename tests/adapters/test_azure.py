"""The azure (Azure ML managed online endpoints) adapter against Azurite and the Azure ML fake.

Blob storage is a real Azurite process (``azurite-blob``); the workspace datastore the fake
describes points at it, and the adapter's blob URL template sends azure-storage-blob there.
The Azure ML control plane is :mod:`tests.adapters.fakes.azureml`, reached through
``AZUREML_DEV_URL_MFE`` by azure-ai-ml's own generated ARM client; it validates every body
against azure-ai-ml's REST models and answers predictions with the SavedModel actually
uploaded to Azurite (loaded with TensorFlow), so v1 answers [[2.5]] and v2 [[3.0]].
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudserve import registry, runtime_images
from cloudserve.errors import (
    ConfigError,
    CredentialsError,
    DeployTimeout,
    NotFound,
    PreflightError,
    ProviderError,
)
from cloudserve.records import DeploySpec, ExportInfo
from tests.adapters.contract import PAYLOAD, AdapterContract, predictions
from tests.adapters.test_gcp import RecordingProgress, _tf_predictor

pytest.importorskip("azure.ai.ml", reason="run: bash scripts/install-test-deps.sh")

from cloudserve_adapters.azure import preflight as az_preflight  # noqa: E402
from cloudserve_adapters.azure.adapter import AzureMLAdapter  # noqa: E402
from cloudserve_adapters.azure.config import AzureConfig  # noqa: E402
from cloudserve_adapters.azure.sdk import DEV_URL_ENV, AzureClients  # noqa: E402
from cloudserve_adapters.azure.state import TAG_HISTORY  # noqa: E402
from tests.adapters.fakes.azureml import FakeAzureML  # noqa: E402

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
TOKEN = "test-token"
MODEL = "contract-model"
ACR = "cloudservetest"
DIGEST = "sha256:" + "ab" * 32
_containers = itertools.count(1)


# --------------------------------------------------------------------------- harness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An azurite-blob process on a free loopback port; yields its blob service URL root."""
    exe = shutil.which("azurite-blob")
    if exe is None:
        pytest.skip("azurite-blob is not installed; run: bash scripts/install-test-deps.sh")
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    log = location / "azurite.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                exe,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                str(location),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"azurite did not start: {log.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class StaticCredential:
    """A TokenCredential that hands out a fixed token (the fake accepts ``TOKEN``)."""

    def __init__(self, token: str = TOKEN, error: Exception | None = None):
        self.token, self.error = token, error

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + 3600)


def _http_bearer_policy(credential: Any) -> Any:
    """ARM's bearer policy, allowed over plain http (the fake is on loopback)."""
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    class LoopbackBearerPolicy(ARMChallengeAuthenticationPolicy):
        def on_request(self, request: Any) -> None:
            request.context.options["enforce_https"] = False
            super().on_request(request)

    return LoopbackBearerPolicy(credential, "https://management.azure.com/.default")


_LOADED: dict[str, Callable[[list[Any]], list[Any]]] = {}


def _loader(container: Any) -> Callable[[str], Callable[[list[Any]], list[Any]]]:
    """What the serving container does: read the registered folder and load its newest version
    the way TF Serving does (``<base>/<int>/saved_model.pb``)."""

    def load(model_uri: str) -> Callable[[list[Any]], list[Any]]:
        prefix = model_uri.split("/paths/", 1)[1].rstrip("/") + "/"
        blobs = list(container.list_blobs(name_starts_with=prefix))
        versions = {
            b.name[len(prefix) :].split("/", 1)[0]
            for b in blobs
            if b.name.endswith("/saved_model.pb")
        }
        numeric = sorted((v for v in versions if v.isdigit()), key=int)
        if not numeric:
            raise RuntimeError(f"No versions of servable found under base path {prefix}")
        version_prefix = f"{prefix}{numeric[-1]}/"
        key = "|".join(
            sorted(f"{b.name}:{b.etag}" for b in blobs if b.name.startswith(version_prefix))
        )
        if key not in _LOADED:
            target = Path(tempfile.mkdtemp(prefix="azureml-fake-"))
            for blob in blobs:
                if not blob.name.startswith(version_prefix):
                    continue
                path = target / blob.name[len(version_prefix) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(container.download_blob(blob.name).readall())
            _LOADED[key] = _tf_predictor(str(target))
        return _LOADED[key]

    return load


@pytest.fixture
def container(azurite: str) -> Iterator[Any]:
    """A fresh blob container in Azurite (the workspace datastore's container)."""
    from azure.storage.blob import ContainerClient

    client = ContainerClient(
        f"{azurite}/{ACCOUNT}",
        f"azureml-blobstore-{os.getpid()}-{next(_containers)}",
        credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
    )
    client.create_container()
    yield client
    client.delete_container()


@pytest.fixture
def fake(container: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureML]:
    azureml = FakeAzureML(
        load_model=_loader(container),
        storage_account=ACCOUNT,
        storage_key=ACCOUNT_KEY,
        container=container.container_name,
        token=TOKEN,
    )
    monkeypatch.setenv(DEV_URL_ENV, azureml.start())
    yield azureml
    azureml.stop()


@pytest.fixture(autouse=True)
def pushed_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> runtime_images.PushedImage:
    """A recorded push of the runtime image to the test ACR (CLOUDSERVE_HOME is per test)."""
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path / "home"))
    return runtime_images.record(
        f"{ACR}.azurecr.io/{runtime_images.REPOSITORY_NAME}",
        DIGEST,
        variant="cpu",
        tf_version="2.21",
    )


def make_config(**overrides: Any) -> AzureConfig:
    settings: dict[str, Any] = {
        "subscription_id": "sub",
        "resource_group": "rg",
        "workspace": "ws",
        "acr": ACR,
        "poll_initial_s": 0.01,
        "poll_max_s": 0.05,
    }
    return AzureConfig(**{**settings, **overrides})


def make_clients(azurite: str, credential: Any | None = None) -> AzureClients:
    credential = credential or StaticCredential()
    return AzureClients(
        credential,
        blob_url=azurite + "/{account}",
        client_options={"authentication_policy": _http_bearer_policy(credential), "retry_total": 0},
    )


@pytest.fixture
def make_adapter(fake: FakeAzureML, azurite: str) -> Callable[..., AzureMLAdapter]:
    def build(**overrides: Any) -> AzureMLAdapter:
        return AzureMLAdapter(
            make_config(**overrides), clients=make_clients(azurite), progress=RecordingProgress()
        )

    return build


@pytest.fixture
def adapter(make_adapter: Callable[..., AzureMLAdapter]) -> AzureMLAdapter:
    return make_adapter()


def blob_names(container: Any) -> list[str]:
    return sorted(b.name for b in container.list_blobs())


def spec(export: ExportInfo, version: str, model: str = MODEL, **kw: Any) -> DeploySpec:
    return DeploySpec(model=model, export=export.path, version=version, target="azure", **kw)


# --------------------------------------------------------------------------- contract


class TestAzureMLContract(AdapterContract):
    target = "azure"

    @pytest.fixture(autouse=True)
    def _container(self, container: Any) -> None:
        self._blobs = container

    def stored_objects(self, adapter: AzureMLAdapter) -> list[str]:
        return blob_names(self._blobs)
