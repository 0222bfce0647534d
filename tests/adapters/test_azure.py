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
from tests.support import RecordingProgress, free_port, tf_predictor

pytest.importorskip("azure.ai.ml", reason="run: bash scripts/install-test-deps.sh")

from cloudserve_adapters.azure import preflight as az_preflight  # noqa: E402
from cloudserve_adapters.azure import upload  # noqa: E402
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


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An azurite-blob process on a free loopback port; yields its blob service URL root."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    exe = shutil.which("azurite-blob") or shutil.which(
        "azurite-blob", path=str(cache / "cloudserve-test/azurite/node_modules/.bin")
    )
    if exe is None:
        pytest.skip("azurite-blob is not installed; run: bash scripts/install-test-deps.sh")
    port = free_port()
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
            sorted(
                f"{b.name[len(version_prefix) :]}:{bytes(b.content_settings.content_md5 or b'')!r}"
                for b in blobs
                if b.name.startswith(version_prefix)
            )
        )
        if key not in _LOADED:
            target = Path(tempfile.mkdtemp(prefix="azureml-fake-"))
            for blob in blobs:
                if not blob.name.startswith(version_prefix):
                    continue
                path = target / blob.name[len(version_prefix) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(container.download_blob(blob.name).readall())
            _LOADED[key] = tf_predictor(str(target))
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


# --------------------------------------------------------------------------- upload, register


def test_register_follows_the_azure_ml_sequence_and_tf_serving_layout(
    adapter, fake, container, export_v1
):
    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    calls = [(m, p.rsplit("/workspaces/ws", 1)[-1]) for m, p in fake.requests()]
    register = [
        ("GET", f"/models/{MODEL}/versions"),
        ("GET", "/datastores/workspaceblobstore"),
        ("POST", "/datastores/workspaceblobstore/listSecrets"),
        ("PUT", f"/models/{MODEL}/versions/1"),
    ]
    positions = [calls.index(c) for c in register]
    assert positions == sorted(positions)
    folder = f"cloudserve/{MODEL}/1/{MODEL}/"
    assert blob_names(container) == sorted(f"{folder}1/{f}" for f in export_v1.files)
    (body,) = fake.bodies("PUT", f"/models/{MODEL}/versions/1")
    assert body["properties"]["modelType"] == "custom_model"
    assert body["properties"]["modelUri"] == (
        "azureml://subscriptions/sub/resourcegroups/rg/workspaces/ws/datastores/"
        f"workspaceblobstore/paths/{folder}"
    )
    assert record.artifact_uri == body["properties"]["modelUri"]


def test_upload_reports_progress_and_skips_content_already_there(
    adapter, fake, container, export_v1
):
    fake.fail_next("deployment", "Liveness probe failed: connection refused")
    with pytest.raises(ProviderError, match="Liveness probe failed"):
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    transfers = adapter.progress.transfers
    assert transfers[-1][1] == transfers[-1][2] == export_v1.total_bytes
    etags = {b.name: b.etag for b in container.list_blobs()}
    assert len(etags) == export_v1.file_count
    # the registered version is reused; a fresh adapter resuming from scratch skips the blobs
    fake.models.clear()
    again = AzureMLAdapter(adapter.config, clients=adapter.clients, progress=RecordingProgress())
    record = again.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert record.is_default and record.state == "AVAILABLE"
    assert {b.name: b.etag for b in container.list_blobs()} == etags
    assert again.progress.transfers == [(again.progress.transfers[0][0], 0, 0)]


def test_ctrl_c_during_upload_exits_130_and_resumes(adapter, fake, container, export_v1):
    from cloudserve.waiting import Interrupted

    class StopAfterFirstFile(RecordingProgress):
        def transfer(self, label: str, done: int, total: int) -> None:
            super().transfer(label, done, total)
            if done:
                raise KeyboardInterrupt

    stopped = AzureMLAdapter(adapter.config, clients=adapter.clients, progress=StopAfterFirstFile())
    with pytest.raises(Interrupted) as info:
        stopped.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert info.value.exit_code == 130 and "re-run" in info.value.hint
    assert len(blob_names(container)) == 1 and MODEL not in fake.models
    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert record.is_default and len(blob_names(container)) == export_v1.file_count


# --------------------------------------------------------------------------- endpoint, deployment


def test_endpoint_is_created_through_its_long_running_operation(adapter, fake, export_v1):
    fake.operation_polls = 2
    fake.retry_after = 0
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    create_answer = next(a for a in fake.answers if a[0] == "PUT" and "/onlineEndpoints/" in a[1])
    assert create_answer[2] == 201
    assert {"Azure-AsyncOperation", "Location", "Retry-After"} <= set(create_answer[3])
    assert len(fake.requests("GET", "mfeOperationsStatus")) >= 3 * 3  # endpoint, deploy, route
    (create, *_) = fake.bodies("PUT", f"/onlineEndpoints/{MODEL}")
    assert create["properties"]["authMode"] == "Key"
    assert create["properties"]["traffic"] == {}
    assert create["tags"]["cloudserve-model"] == MODEL
    assert any("InProgress" in s for s in adapter.progress.statuses)
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {"v01": 100}


def test_deployment_carries_typed_settings_and_the_runtime_image(
    make_adapter, fake, export_v1, pushed_runtime
):
    adapter = make_adapter(
        instance_type="Standard_F4s_v2",
        instance_count=3,
        request={"request_timeout_ms": 90000, "max_concurrent_requests_per_instance": 4},
        liveness_probe={"initial_delay_s": 30, "failure_threshold": 10},
    )
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    (body,) = fake.bodies("PUT", "/deployments/v01")
    props = body["properties"]
    assert body["sku"] == {"name": "Default", "capacity": 3}
    assert props["instanceType"] == "Standard_F4s_v2"
    assert props["requestSettings"] == {
        "requestTimeout": "PT90S",
        "maxConcurrentRequestsPerInstance": 4,
    }
    assert props["livenessProbe"]["initialDelay"] == "PT30S"
    assert props["livenessProbe"]["failureThreshold"] == 10
    assert props["readinessProbe"]["period"] == "PT10S"
    assert props["environmentVariables"] == {
        "MODEL_BASE_PATH": f"/var/azureml-app/azureml-models/{MODEL}/1",
        "MODEL_NAME": MODEL,
    }
    assert props["model"].endswith(f"/workspaces/ws/models/{MODEL}/versions/1")
    (environment,) = fake.environments.values()
    assert environment["properties"]["image"] == pushed_runtime.reference
    assert environment["properties"]["inferenceConfig"] == {
        "livenessRoute": {"port": 8501, "path": f"/v1/models/{MODEL}"},
        "readinessRoute": {"port": 8501, "path": f"/v1/models/{MODEL}"},
        "scoringRoute": {"port": 8501, "path": f"/v1/models/{MODEL}:predict"},
    }
    assert props["environmentId"] == environment["id"]


def test_version_logs_come_from_the_deployment(adapter, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    lines = adapter.version_logs(MODEL, "1", lines=1)
    assert len(lines) == 1 and "Successfully loaded servable" in lines[0]
    assert adapter.version_logs(MODEL, "7") == []


def test_each_file_is_hashed_once_for_plan_and_deploy(adapter, export_v1, monkeypatch):
    hashed: list[Path] = []
    real = upload.file_md5

    def counting(path: Path) -> bytes:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(upload, "file_md5", counting)
    adapter.plan(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert sorted(hashed) == sorted(export_v1.path / f for f in export_v1.files)


# --------------------------------------------------------------------------- default, traffic


def test_canary_traffic_split(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    r2 = adapter.deploy(spec(export_v2, "2", traffic={"1": 90, "2": 10}), export_v2, timeout=60)
    assert r2.traffic == 10 and not r2.is_default
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {"v01": 90, "v02": 10}
    listed = {v.version: (v.traffic, v.is_default) for v in adapter.list_versions(MODEL)}
    assert listed == {"2": (10, False), "1": (90, True)}
    answers = [predictions(adapter.predict(MODEL, PAYLOAD)) for _ in range(100)]
    assert answers.count([[3.0]]) == 10 and answers.count([[2.5]]) == 90
    promoted = adapter.set_default(MODEL, "2", timeout=60)
    assert promoted.traffic == 100 and promoted.is_default


def test_canary_naming_an_undeployed_version_is_refused(adapter, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    with pytest.raises(ConfigError, match="not deployed"):
        adapter.deploy(spec(export_v2, "2", traffic={"3": 50, "2": 50}), export_v2, timeout=60)
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_rollback_uses_the_default_history(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert fake.endpoints[MODEL]["tags"][TAG_HISTORY] == "1,2"
    record = adapter.rollback(MODEL, timeout=60)
    assert record.version == "1" and record.traffic == 100
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {"v01": 100}
    assert fake.endpoints[MODEL]["tags"][TAG_HISTORY] == "1"
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]
    with pytest.raises(NotFound):
        adapter.rollback(MODEL, timeout=60)


def test_keep_previous_zero_deletes_the_old_deployment(make_adapter, fake, export_v1, export_v2):
    adapter = make_adapter(keep_previous=0)
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert list(fake.deployments[MODEL]) == ["v02"]
    v1 = adapter.list_versions(MODEL)[1]
    assert "deployment" not in v1.resources and "not deployed" in v1.message
    record = adapter.rollback(MODEL, timeout=60)  # deploys v1 again, then routes to it
    assert record.is_default and record.traffic == 100
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_keep_previous_one_keeps_the_old_default_deployed(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert sorted(fake.deployments[MODEL]) == ["v01", "v02"]
    assert fake.requests("DELETE", "/deployments/") == []


def test_failed_deployment_leaves_the_previous_default_serving(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.fail_next("deployment", "ResourceNotReady: liveness probe returned 502")
    with pytest.raises(ProviderError) as info:
        adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert "previous default v1 keeps serving" in info.value.message
    assert "liveness probe returned 502" in info.value.message  # container log lines
    assert "initial_delay_s" in info.value.hint
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {"v01": 100}
    assert [v.version for v in adapter.list_versions(MODEL) if v.is_default] == ["1"]
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]
    fixed = adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert fixed.is_default and fixed.state == "AVAILABLE"


def test_wrong_model_layout_fails_the_deployment_like_the_container_would(adapter, fake, export_v1):
    original = fake._container_start

    def moved_mount(model, version, registered, environment, props):
        props = {**props, "modelMountPath": "/somewhere/else"}
        return original(model, version, registered, environment, props)

    fake._container_start = moved_mount  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="No versions of servable"):
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)


def test_a_full_endpoint_is_refused_before_any_upload(
    adapter, fake, container, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    for n in range(10, 29):  # 19 more deployments: 20 in all, Azure's ceiling per endpoint
        fake.deployments[MODEL][f"v{n}"] = {
            "name": f"v{n}",
            "properties": {"provisioningState": "Succeeded"},
        }
    before = blob_names(container)
    with pytest.raises(ConfigError, match="20 per endpoint"):
        adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert blob_names(container) == before and "2" not in fake.models[MODEL]


# --------------------------------------------------------------------------- predict


def test_predict_version_uses_the_deployment_header(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]
    with pytest.raises(NotFound):
        adapter.predict(MODEL, PAYLOAD, version="9")


def test_predict_body_over_the_request_limit_is_refused_locally(make_adapter, fake, export_v1):
    adapter = make_adapter(request={"request_timeout_ms": 1000})
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    scored = len(fake.requests("POST", "/score/"))
    huge = {"instances": [[1.0]] * 1_000_000}  # ~7 MB: more than 5 MB/s for 1 s
    with pytest.raises(PreflightError) as info:
        adapter.predict(MODEL, huge)
    assert info.value.findings[0].id == "azure.predict.payload"
    assert len(fake.requests("POST", "/score/")) == scored


def test_predict_container_errors_are_explained(adapter, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert adapter.predict(MODEL, {"inputs": [[1.0]]})["outputs"] == [[2.5]]
    with pytest.raises(ProviderError) as info:
        adapter.predict(MODEL, {"instances": [["not a number"]]})
    assert info.value.http_status == 424
    assert "424" in info.value.message and "container status 400" in info.value.message


def test_predict_unknown_model(adapter, fake):
    with pytest.raises(NotFound):
        adapter.predict("no-such-model", PAYLOAD)


def test_predict_with_a_rejected_key_is_a_credentials_error(adapter, fake, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.endpoints[MODEL]["_keys"] = {"primaryKey": "rotated", "secondaryKey": "rotated-2"}
    original = fake._list_keys
    fake._list_keys = lambda e: (200, {"primaryKey": "stale", "secondaryKey": "x"}, {})  # type: ignore[method-assign]
    try:
        with pytest.raises(CredentialsError):
            adapter.predict(MODEL, PAYLOAD)
    finally:
        fake._list_keys = original  # type: ignore[method-assign]


# --------------------------------------------------------------------------- delete


def test_delete_model_removes_endpoint_versions_and_blobs(adapter, fake, container, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    removed = adapter.delete(MODEL)
    assert MODEL in removed and f"{MODEL}:1" in removed
    assert fake.endpoints == {} and MODEL not in fake.models
    assert blob_names(container) == []
    assert adapter.delete(MODEL) == []


def test_delete_canary_version_moves_its_traffic_to_the_default(
    adapter, fake, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", traffic={"1": 80, "2": 20}), export_v2, timeout=60)
    adapter.delete(MODEL, "2")
    (v1,) = adapter.list_versions(MODEL)
    assert v1.traffic == 100 and v1.is_default
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {"v01": 100}


# --------------------------------------------------------------------------- operations


def test_operation_timeout_raises_deploy_timeout(adapter, fake, export_v1):
    fake.operation_polls = 10**9
    started = time.monotonic()
    with pytest.raises(DeployTimeout, match="endpoint"):
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=0.5)
    assert time.monotonic() - started < 10


def test_deploy_without_wait_returns_creating(adapter, fake, export_v1):
    fake.operation_polls = 3
    record = adapter.deploy(spec(export_v1, "1"), export_v1, wait=False, timeout=60)
    assert record.state == "CREATING" and not record.is_default
    assert fake.endpoints[MODEL]["properties"]["traffic"] == {}


def test_redeploying_what_is_deployed_changes_nothing(adapter, fake, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    puts = len(fake.requests("PUT"))
    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert not record.changed and len(fake.requests("PUT")) == puts


# --------------------------------------------------------------------------- preflight


PREFLIGHT_CASES = [
    ({"instance_type": "Standard_X9_v9"}, {}, "azure.instance_type"),
    ({"instance_count": 0}, {}, "azure.instance_count"),
    ({"instance_count": 51}, {}, "azure.instance_count"),
    ({"instance_count": 2, "vcpu_quota": 8}, {}, "azure.quota"),  # DS3_v2: 3 x 4 = 12 > 8
    ({"endpoint_name": "ab"}, {}, "azure.endpoint_name"),
    ({"endpoint_name": "1-model"}, {}, "azure.endpoint_name"),
    ({"endpoint_name": "m" * 33}, {}, "azure.endpoint_name"),
    ({"endpoint_name": "my--model"}, {}, "azure.endpoint_name"),
    ({}, {"model": "model_with_underscore"}, "azure.endpoint_name"),
    ({"liveness_probe": {"timeout_s": 20, "period_s": 10}}, {}, "azure.probe.liveness"),
    ({"request": {"request_timeout_ms": 180001}}, {}, "azure.request_timeout"),
    ({}, {"traffic": {"1": 50, "2": 40}}, "azure.traffic"),
    ({}, {"traffic": {"1": 50, "2": 50}, "set_default": True}, "azure.traffic"),
    ({"acr": None}, {}, "azure.image"),
    ({"acr": "otherregistry"}, {}, "azure.image"),
    ({"instance_type": "Standard_NC4as_T4_v3"}, {}, "azure.image"),  # no GPU image pushed
]


@pytest.mark.parametrize(("config", "spec_changes", "rule"), PREFLIGHT_CASES)
def test_preflight_rule_trips(config, spec_changes, rule, export_v1):
    adapter = AzureMLAdapter(make_config(**config))
    base = dataclasses.replace(spec(export_v1, "2"), **spec_changes)
    findings = adapter.preflight(base, export_v1)
    assert rule in {f.id for f in findings if f.severity == "error"}, findings
    assert all(f.source for f in findings if f.id == rule)


def test_quota_arithmetic_includes_the_20_percent_reservation():
    ten = make_config(instance_type="Standard_F4s_v2", instance_count=10)
    assert az_preflight.quota_needed(ten) == 12 * 4  # 10 instances need quota for 12
    assert az_preflight.check_quota(ten.model_copy(update={"vcpu_quota": 48})) == []
    (short,) = az_preflight.check_quota(ten.model_copy(update={"vcpu_quota": 47}))
    assert short.severity == "error" and "OutOfQuota" in short.message
    (info,) = az_preflight.check_quota(ten)
    assert info.severity == "info" and "48 vCPUs" in info.message


def test_preflight_missing_image_fix_is_the_push_command(export_v1):
    findings = AzureMLAdapter(make_config(acr="emptyacr")).preflight(
        spec(export_v1, "1"), export_v1
    )
    (image,) = [f for f in findings if f.id == "azure.image"]
    assert image.fix == runtime_images.push_command("azure", variant="cpu", tf_version="1.14")


def test_preflight_slow_liveness_window_warns(export_v1):
    adapter = AzureMLAdapter(make_config(liveness_probe={"failure_threshold": 3}))
    findings = adapter.preflight(spec(export_v1, "1"), export_v1)
    assert any(f.id == "azure.probe.liveness" and f.severity == "warning" for f in findings)


def test_preflight_clean_config_has_no_errors(export_v1):
    findings = AzureMLAdapter(make_config()).preflight(spec(export_v1, "1"), export_v1)
    assert [f for f in findings if f.severity == "error"] == []


def test_preflight_refuses_before_any_call(adapter, fake, container, export_v1):
    bad = make_config(instance_count=0)
    with pytest.raises(PreflightError):
        AzureMLAdapter(bad, clients=adapter.clients).deploy(spec(export_v1, "1"), export_v1)
    assert fake.calls == [] and blob_names(container) == []


def test_instance_memory_from_the_sku_table():
    assert AzureMLAdapter(make_config(instance_type="Standard_F4s_v2")).instance_memory_mb() == 8192
    assert AzureMLAdapter(make_config(instance_type="Standard_X1")).instance_memory_mb() is None


# --------------------------------------------------------------------------- credentials


def test_missing_credentials_exit_6_with_the_fix(fake, azurite, export_v1):
    from azure.core.exceptions import ClientAuthenticationError

    failing = StaticCredential(
        error=ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
    )
    adapter = AzureMLAdapter(make_config(), clients=make_clients(azurite, failing))
    with pytest.raises(CredentialsError) as info:
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=30)
    assert info.value.exit_code == 6
    assert "az login" in info.value.hint and "AZURE_CLIENT_SECRET" in info.value.hint
    assert fake.calls == []


def test_rejected_credentials_exit_6(fake, azurite):
    adapter = AzureMLAdapter(
        make_config(), clients=make_clients(azurite, StaticCredential("expired-token"))
    )
    with pytest.raises(CredentialsError) as info:
        adapter.list_versions(MODEL)
    assert info.value.exit_code == 6 and "InvalidAuthenticationToken" not in info.value.hint
    assert fake.requests()  # the request reached the fake, which refused the token


def test_default_azure_credential_without_any_login_exit_6(fake, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", "/nonexistent")  # no az, azd or pwsh to ask
    clients = AzureClients(client_options={"retry_total": 0})
    credential = clients.credential()
    assert type(credential).__name__ == "DefaultAzureCredential"
    clients.client_options["authentication_policy"] = _http_bearer_policy(credential)
    adapter = AzureMLAdapter(make_config(), clients=clients)
    with pytest.raises(CredentialsError) as info:
        adapter.list_versions(MODEL)
    assert info.value.exit_code == 6


# --------------------------------------------------------------------------- the fake itself


def test_fake_rejects_a_misspelt_field(adapter, fake):
    ws = adapter._ws()
    body = {"location": fake.location, "properties": {"authMode": "Key", "trafic": {}}}
    with pytest.raises(ProviderError) as info:
        ws.put_endpoint("typo-endpoint", body)
    assert info.value.http_status == 400 and "trafic" in info.value.message
    assert "typo-endpoint" not in fake.endpoints


def test_fake_rejects_read_only_fields_wrong_verbs_and_missing_api_version(adapter, fake):
    import httpx

    ws = adapter._ws()
    body = {
        "location": fake.location,
        "properties": {"authMode": "Key", "scoringUri": "https://x"},
    }
    with pytest.raises(ProviderError, match="read-only"):
        ws.put_endpoint("ro-endpoint", body)
    path = f"{fake.url}/subscriptions/sub/resourceGroups/rg/providers/" + (
        "Microsoft.MachineLearningServices/workspaces/ws/onlineEndpoints/e1"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(path + "?api-version=2025-12-01", headers=headers).status_code == 405
    assert httpx.get(path, headers=headers).status_code == 400


# --------------------------------------------------------------------------- packaging


def test_registered_as_the_azure_target():
    assert registry.load("azure") is AzureMLAdapter


def test_no_azure_sdk_needed_to_import(tmp_path):
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == 'azure' or name.startswith('azure.'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
from cloudserve_adapters.azure.adapter import AzureMLAdapter
from cloudserve_adapters.azure.config import AzureConfig
from cloudserve.errors import MissingDependency
adapter = AzureMLAdapter(AzureConfig(subscription_id='s', resource_group='g', workspace='w'))
try:
    adapter.list_versions('m')
except MissingDependency as e:
    print(e.message, '|', e.hint)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "is not installed" in out.stdout and "pip install 'cloudserve[azure]'" in out.stdout
