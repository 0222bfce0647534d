"""The gcp (Vertex AI) adapter against gcp-storage-emulator and the loopback Vertex fake.

Cloud Storage is a real ``gcp-storage-emulator`` process (google-cloud-storage reaches it through
``STORAGE_EMULATOR_HOST``). Vertex AI is :mod:`tests.adapters.fakes.vertex`, which validates every
request against the discovery document and answers predictions with the SavedModel actually
uploaded to the emulator (loaded with TensorFlow), so v1 answers [[2.5]] and v2 [[3.0]].
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cloudserve import registry, runtime_images
from cloudserve.errors import (
    ConfigError,
    CredentialsError,
    DeployTimeout,
    NotFound,
    NotSupported,
    PreflightError,
    ProviderError,
)
from cloudserve.export import inspect
from cloudserve.records import DeploySpec, ExportInfo
from cloudserve_adapters.gcp import images, upload
from cloudserve_adapters.gcp.adapter import VertexAdapter
from cloudserve_adapters.gcp.config import GcpConfig
from cloudserve_adapters.gcp.sdk import GcpClients, translate
from cloudserve_adapters.gcp.vertex import LABEL_HISTORY, Version
from tests.adapters.contract import PAYLOAD, AdapterContract, predictions
from tests.adapters.fakes.vertex import FakeVertex
from tests.support import RecordingProgress, gcs_emulator, tf_predictor

PROJECT = "test-project"
REGION = "us-central1"
BUCKET = "cloudserve-test"
CHUNK = 256 * 1024
MODEL = "contract-model"


# --------------------------------------------------------------------------- harness


@dataclasses.dataclass
class StorageEmulator:
    url: str
    log: Path

    def wipe(self) -> None:
        urllib.request.urlopen(self.url + "/wipe", timeout=10).read()

    def upload_puts(self) -> int:
        """How many resumable-upload PUTs (one per chunk) the emulator has logged."""
        return sum(
            1 for line in self.log.read_text().splitlines() if '"PUT /upload/storage' in line
        )


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """A gcp-storage-emulator process on a free loopback port, in memory."""
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    with gcs_emulator(log) as url:
        yield StorageEmulator(url, log)


_LOADED: dict[str, Callable[[list[Any]], list[Any]]] = {}


def _load_from_bucket(client: Any, artifact_uri: str) -> Callable[[list[Any]], list[Any]]:
    """What a Vertex model server does at deploy: fetch the artifactUri and load it."""
    bucket_name, _, prefix = artifact_uri.removeprefix("gs://").partition("/")
    blobs = list(client.list_blobs(bucket_name, prefix=prefix))
    if not any(b.name.endswith("saved_model.pb") for b in blobs):
        raise AssertionError(f"no SavedModel under {artifact_uri}")
    key = "|".join(sorted(f"{b.name[len(prefix) :]}:{b.md5_hash}" for b in blobs))
    if key not in _LOADED:
        target = Path(tempfile.mkdtemp(prefix="vertex-fake-"))
        for blob in blobs:
            path = target / blob.name[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(path))
        _LOADED[key] = tf_predictor(str(target))
    return _LOADED[key]


@pytest.fixture
def storage(storage_emulator: StorageEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean emulator with the test bucket; STORAGE_EMULATOR_HOST points at it."""
    from google.cloud import storage as gcs

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.url)
    storage_emulator.wipe()
    client = gcs.Client(project=PROJECT)
    client.create_bucket(BUCKET)
    return client


@pytest.fixture(autouse=True)
def runtime_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, export_v2: ExportInfo
) -> runtime_images.PushedImage:
    """The runtime image as `cloudserve image push --target gcp` records it, for the TF the
    example exports are written with (what `image: auto` needs for TF >= 2.16)."""
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path / "cloudserve-home"))
    tf = ".".join(export_v2.tf_version.split(".")[:2])
    repository = f"{REGION}-docker.pkg.dev/{PROJECT}/cloudserve/cloudserve-runtime"
    runtime_images.record(repository, "sha256:" + "a" * 64, variant="gpu", tf_version=tf)
    return runtime_images.record(repository, "sha256:" + "b" * 64, variant="cpu", tf_version=tf)


@pytest.fixture
def fake(storage: Any) -> Iterator[FakeVertex]:
    vertex = FakeVertex(load_model=lambda uri: _load_from_bucket(storage, uri))
    vertex.url = vertex.start()  # type: ignore[attr-defined]
    yield vertex
    vertex.stop()


def make_config(**overrides: Any) -> GcpConfig:
    settings: dict[str, Any] = {
        "project": PROJECT,
        "region": REGION,
        "bucket": BUCKET,
        "poll_initial_s": 0.01,
        "poll_max_s": 0.05,
        "upload_chunk_size": CHUNK,
    }
    return GcpConfig(**{**settings, **overrides})


@pytest.fixture
def make_adapter(fake: FakeVertex) -> Callable[..., VertexAdapter]:
    from google.auth.credentials import AnonymousCredentials

    def build(**overrides: Any) -> VertexAdapter:
        clients = GcpClients(
            credentials=AnonymousCredentials(), api_endpoint=fake.url, logging_endpoint=fake.url
        )
        return VertexAdapter(
            make_config(**overrides), clients=clients, progress=RecordingProgress()
        )

    return build


@pytest.fixture
def adapter(make_adapter: Callable[..., VertexAdapter]) -> VertexAdapter:
    return make_adapter()


def bucket_objects(client: Any) -> list[str]:
    return sorted(b.name for b in client.list_blobs(BUCKET))


def spec(export: ExportInfo, version: str, model: str = MODEL, **kw: Any) -> DeploySpec:
    return DeploySpec(model=model, export=export.path, version=version, target="gcp", **kw)


@pytest.fixture
def big_export(export_v1: ExportInfo, tmp_path: Path) -> ExportInfo:
    """half_plus_two with its asset padded to 700 KiB, so it uploads in 3 chunks of 256 KiB."""
    copy = tmp_path / "half_plus_two"
    shutil.copytree(export_v1.path, copy)
    (copy / "assets" / "foo.txt").write_bytes(b"x" * (700 * 1024))
    return inspect(copy)


# --------------------------------------------------------------------------- contract


class TestVertexContract(AdapterContract):
    target = "gcp"

    def stored_objects(self, adapter: VertexAdapter) -> list[str]:
        return bucket_objects(adapter.clients.storage(PROJECT))


# --------------------------------------------------------------------------- storage


def test_upload_layout_is_the_savedmodel_dir(adapter, storage, export_v1):
    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    prefix = f"cloudserve/{MODEL}/1/"
    assert bucket_objects(storage) == sorted(prefix + f for f in export_v1.files)
    assert record.artifact_uri == f"gs://{BUCKET}/{prefix}"
    assert f"{prefix}saved_model.pb" in bucket_objects(storage)


def test_resumable_upload_in_256k_chunks(adapter, storage, storage_emulator, big_export):
    puts_before = storage_emulator.upload_puts()
    adapter.deploy(spec(big_export, "1"), big_export, timeout=60)
    # 3 chunks for the 700 KiB asset plus one (final) chunk for each of the 3 other files
    assert storage_emulator.upload_puts() - puts_before >= 6
    label = f"gs://{BUCKET}/cloudserve/{MODEL}/1/"
    steps = [done for lbl, done, total in adapter.progress.transfers if lbl == label]
    assert steps == sorted(steps) and steps[-1] == big_export.total_bytes
    chunk_steps = [b - a for a, b in zip([0, *steps], steps, strict=False)]
    assert chunk_steps.count(CHUNK) >= 2
    blob = storage.bucket(BUCKET).get_blob(f"cloudserve/{MODEL}/1/assets/foo.txt")
    assert blob.size == 700 * 1024
    assert blob.md5_hash == upload.file_md5(big_export.path / "assets" / "foo.txt")


def test_redeploy_skips_objects_with_the_same_digest(adapter, storage, fake, big_export):
    fake.fail_next("upload", "internal error")
    with pytest.raises(ProviderError, match="internal error"):
        adapter.deploy(spec(big_export, "1"), big_export, timeout=60)
    prefix = f"cloudserve/{MODEL}/1/"
    generations = {b.name: b.generation for b in storage.list_blobs(BUCKET, prefix=prefix)}
    assert len(generations) == big_export.file_count
    puts = len(adapter.progress.transfers)
    record = adapter.deploy(spec(big_export, "1"), big_export, timeout=60)
    assert record.is_default and record.state == "AVAILABLE"
    assert {b.name: b.generation for b in storage.list_blobs(BUCKET, prefix=prefix)} == generations
    assert len(adapter.progress.transfers) - puts <= big_export.file_count + 1  # no chunk steps


def test_stale_objects_under_the_version_prefix_are_removed(adapter, storage, export_v1):
    storage.bucket(BUCKET).blob(f"cloudserve/{MODEL}/1/leftover.bin").upload_from_string(b"x")
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert f"cloudserve/{MODEL}/1/leftover.bin" not in bucket_objects(storage)


# --------------------------------------------------------------------------- models, endpoint


def test_versions_are_uploaded_with_parent_model_aliases_and_labels(
    adapter, fake, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    first, second = fake.bodies("upload")
    assert first["modelId"] == MODEL and "parentModel" not in first
    assert second["parentModel"].endswith(f"/locations/{REGION}/models/{MODEL}")
    assert first["model"]["versionAliases"] == ["v1"]
    assert second["model"]["versionAliases"] == ["v2"]
    digest = upload.export_digest(export_v2, upload.FileHashes())
    assert second["model"]["versionDescription"] == (
        f"cloudserve version 2 (export digest {digest})"
    )
    versions = fake.models[MODEL]
    assert versions["1"]["versionAliases"] == ["v1", "default"]
    assert versions["2"]["versionAliases"] == ["v2"]
    spec_body = first["model"]["containerSpec"]
    assert spec_body["ports"] == [{"containerPort": 8501}]
    assert spec_body["predictRoute"] == f"/v1/models/{MODEL}:predict"
    assert spec_body["healthRoute"] == f"/v1/models/{MODEL}"


def test_endpoint_is_created_once(make_adapter, fake, export_v1, export_v2):
    adapter = make_adapter(preview_endpoints=False)
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert fake.methods_called().count("create") == 1
    assert list(fake.endpoints) == [MODEL]
    assert len(fake.endpoints[MODEL]["deployedModels"]) == 2


def test_deploy_model_dedicated_resources(make_adapter, fake, export_v1):
    adapter = make_adapter(
        machine_type="n1-standard-4",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=1,
        min_replicas=1,
        max_replicas=3,
        autoscaling_cpu_target=70,
        image="us-docker.pkg.dev/acme/serving/tfs:1",
    )
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    (body,) = fake.bodies("deployModel")
    assert body["trafficSplit"] == {"0": 100}
    assert body["deployedModel"]["dedicatedResources"] == {
        "machineSpec": {
            "machineType": "n1-standard-4",
            "acceleratorType": "NVIDIA_TESLA_T4",
            "acceleratorCount": 1,
        },
        "minReplicaCount": 1,
        "maxReplicaCount": 3,
        "autoscalingMetricSpecs": [
            {
                "metricName": "aiplatform.googleapis.com/prediction/online/cpu/utilization",
                "target": 70,
            }
        ],
    }
    (upload_body,) = fake.bodies("upload")
    assert (
        upload_body["model"]["containerSpec"]["imageUri"] == "us-docker.pkg.dev/acme/serving/tfs:1"
    )


def test_prebuilt_image_table():
    assert images.prebuilt_uri((2, 12), "us-central1", gpu=False) == (
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
    )
    assert images.prebuilt_uri((2, 15), "europe-west4", gpu=True) == (
        "europe-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.2-15:latest"
    )
    assert images.prebuilt_uri((2, 16), "us-central1", gpu=False) is None


def choose(image: str, export: ExportInfo, tf: str | None, today: str, **kw: Any):
    changed = dataclasses.replace(export, tf_version=tf)
    settings = {"region": "asia-east1", "project": PROJECT, "gpu": False, "port": 8501, **kw}
    return images.choose(image, changed, "m", today=date.fromisoformat(today), **settings)


@pytest.mark.parametrize(
    ("tf", "today"),
    [
        ("2.10.1", "2024-11-15"),  # retired that day
        ("2.11.0", "2025-01-01"),
        ("2.12.1", "2025-06-30"),
        ("2.13.0", "2025-11-28"),
        ("2.13.0", "2026-12-07"),
        ("2.5.0", "2026-12-07"),
    ],
)
def test_auto_never_picks_a_retired_prebuilt_image(tf, today, export_v1, runtime_image):
    choice = choose("auto", export_v1, tf, today, region=REGION)
    assert choice.image.kind == "cloudserve"
    assert choice.image.uri == runtime_image.reference  # pinned by digest
    assert "retired" in " ".join(f.message for f in choice.findings)
    refused = choose("prebuilt", export_v1, tf, today, region=REGION)
    assert refused.image is None and refused.findings[0].severity == "error"
    assert "retired" in refused.findings[0].message


def test_auto_picks_a_prebuilt_image_while_it_is_served(export_v1):
    choice = choose("auto", export_v1, "2.13.0", "2025-11-27")
    assert choice.image.kind == "prebuilt" and choice.image.uri.startswith("asia-docker.pkg.dev/")
    assert "ports" not in choice.image.container_spec(600)
    assert [f.severity for f in choice.findings] == ["warning"]  # retires within 90 days
    assert "2025-11-28" in choice.findings[0].message
    calm = choose("auto", export_v1, "2.15.0", "2026-06-01")
    assert calm.image.kind == "prebuilt" and calm.findings == ()


def test_newer_tf_without_a_pushed_runtime_image_is_an_error_naming_the_push(
    export_v1, monkeypatch, tmp_path
):
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path / "empty"))
    choice = choose("auto", export_v1, "2.21.0", "2026-12-07", region=REGION, gpu=True)
    assert choice.image is None
    (error,) = [f for f in choice.findings if f.severity == "error"]
    assert error.fix == runtime_images.push_command("gcp", variant="gpu", tf_version="2.21")
    assert f"{REGION}-docker.pkg.dev/{PROJECT}/" in error.message
    text = (Path(images.__file__).parent / "images.yaml").read_text()
    assert "ghcr.io" not in text and "docker.io" not in text  # no default outside AR/GCR


def test_an_older_export_uses_a_newer_pushed_runtime(export_v1, runtime_image):
    choice = choose("auto", export_v1, "1.14.0", "2026-12-07", region=REGION)
    assert choice.image.uri == runtime_image.reference
    other_region = choose("cloudserve", export_v1, "1.14.0", "2026-12-07", region="europe-west4")
    assert other_region.image is None  # pushed to us-central1 only


@pytest.mark.parametrize(
    "uri",
    [
        "ghcr.io/cloudserve/cloudserve-runtime:0.1.0-cpu",
        "docker.io/tensorflow/serving:2.15.0",
        "tensorflow/serving:2.15.0",
        "registry.example.com/team/tfs:1",
        "evil-docker.pkg.dev.example.com/x/y:1",
    ],
)
def test_image_outside_artifact_or_container_registry_is_a_preflight_error(uri, export_v1):
    adapter = VertexAdapter(make_config(image=uri))
    findings = adapter.preflight(spec(export_v1, "1"), export_v1)
    errors = [f for f in findings if f.severity == "error"]
    assert [f.id for f in errors] == ["gcp.image"]
    assert "Artifact Registry" in errors[0].message and errors[0].source


@pytest.mark.parametrize(
    "uri",
    [
        "gcr.io/acme/tfs:1",
        "eu.gcr.io/acme/tfs:1",
        "europe-west4-docker.pkg.dev/acme/serving/tfs@sha256:" + "c" * 64,
    ],
)
def test_images_in_artifact_or_container_registry_are_accepted(uri, export_v1):
    findings = VertexAdapter(make_config(image=uri)).preflight(spec(export_v1, "1"), export_v1)
    assert [f for f in findings if f.severity == "error"] == []


def test_deploy_without_a_usable_image_uploads_nothing(
    make_adapter, fake, storage, export_v2, monkeypatch, tmp_path
):
    monkeypatch.setenv("CLOUDSERVE_HOME", str(tmp_path / "empty"))
    with pytest.raises(PreflightError) as info:
        make_adapter().deploy(spec(export_v2, "1"), export_v2, timeout=60)
    fixes = [f.fix for f in info.value.findings if f.severity == "error"]
    assert fixes == [runtime_images.push_command("gcp", variant="cpu", tf_version="2.21")]
    assert fake.calls == [] and bucket_objects(storage) == []


# --------------------------------------------------------------------------- default, traffic


def test_set_default_moves_alias_and_all_traffic(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    r2 = adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert r2.traffic == 0
    adapter.set_default(MODEL, "2", timeout=60)
    endpoint = fake.endpoints[MODEL]
    assert endpoint["trafficSplit"] == {r2.resources["deployed_model_id"]: 100}
    assert "default" in fake.models[MODEL]["2"]["versionAliases"]
    assert "default" not in fake.models[MODEL]["1"]["versionAliases"]
    assert endpoint["labels"][LABEL_HISTORY] == "1_2"
    again = adapter.set_default(MODEL, "2", timeout=60)
    assert not again.changed


def test_canary_traffic_split(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    r2 = adapter.deploy(spec(export_v2, "2", traffic={"1": 90, "2": 10}), export_v2, timeout=60)
    assert r2.traffic == 10 and not r2.is_default
    v1_id = fake.endpoints[MODEL]["deployedModels"][0]["id"]
    assert fake.bodies("deployModel")[1]["trafficSplit"] == {"0": 10, v1_id: 90}
    listed = {v.version: (v.traffic, v.is_default) for v in adapter.list_versions(MODEL)}
    assert listed == {"2": (10, False), "1": (90, True)}
    answers = [predictions(adapter.predict(MODEL, PAYLOAD)) for _ in range(100)]
    assert answers.count([[3.0]]) == 10 and answers.count([[2.5]]) == 90
    canary = [predictions(adapter.predict(MODEL, PAYLOAD, version="2")) for _ in range(10)]
    assert canary == [[[3.0]]] * 10  # --version reaches the canary alone


def test_redeploy_with_another_split_moves_traffic_only(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", traffic={"1": 90, "2": 10}), export_v2, timeout=60)
    uploads = len(fake.bodies("upload"))
    moved = adapter.deploy(spec(export_v2, "2", traffic={"1": 50, "2": 50}), export_v2, timeout=60)
    assert moved.changed and moved.traffic == 50
    assert len(fake.bodies("upload")) == uploads
    assert "mutateDeployedModel" not in fake.methods_called()


def test_a_split_naming_an_undeployed_version_is_refused_before_upload(
    adapter, fake, storage, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    with pytest.raises(ConfigError, match=r"version\(s\) 7 are not deployed"):
        adapter.deploy(spec(export_v2, "2", traffic={"7": 10, "2": 90}), export_v2, timeout=60)
    assert not any(o.startswith(f"cloudserve/{MODEL}/2/") for o in bucket_objects(storage))
    assert len(fake.bodies("upload")) == 1


def test_rollback_uses_the_default_history(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert fake.endpoints[MODEL]["labels"][LABEL_HISTORY] == "1_2"
    record = adapter.rollback(MODEL, timeout=60)
    assert record.version == "1" and record.traffic == 100
    assert fake.endpoints[MODEL]["labels"][LABEL_HISTORY] == "1"
    with pytest.raises(NotFound):
        adapter.rollback(MODEL, timeout=60)


def test_keep_previous_zero_undeploys_the_old_default(make_adapter, fake, export_v1, export_v2):
    adapter = make_adapter(keep_previous=0)
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    deployed = fake.endpoints[MODEL]["deployedModels"]
    assert [d["modelVersionId"] for d in deployed] == ["2"]
    v1 = adapter.list_versions(MODEL)[1]
    assert "deployed_model_id" not in v1.resources and "not deployed" in v1.message
    record = adapter.rollback(MODEL, timeout=60)  # redeploys v1, then routes to it
    assert record.is_default and record.traffic == 100
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_keep_previous_one_keeps_the_old_default_deployed(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    versions = sorted(d["modelVersionId"] for d in fake.endpoints[MODEL]["deployedModels"])
    assert versions == ["1", "2"]
    assert "undeployModel" not in fake.methods_called()


def test_failed_deploy_keeps_the_previous_default(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.fail_next("deployModel", "Model server never became ready")
    with pytest.raises(ProviderError, match="never became ready"):
        adapter.deploy(spec(export_v2, "2", set_default=True), export_v2, timeout=60)
    assert [v.version for v in adapter.list_versions(MODEL) if v.is_default] == ["1"]
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


# --------------------------------------------------------------------------- version identity


def test_versions_are_told_apart_by_alias_not_by_merged_labels(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    listed = {v.version: v.resources["version_id"] for v in adapter.list_versions(MODEL)}
    assert listed == {"2": "2", "1": "1"}
    again = adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert not again.changed and again.version == "2"
    with pytest.raises(ConfigError, match="different content"):
        adapter.deploy(spec(export_v1, "2"), export_v1, timeout=60)


def test_version_from_a_model_body_ignores_labels():
    body = {
        "versionId": "7",
        "versionAliases": ["default", "golden", "v3"],
        "versionDescription": "cloudserve version 3 (export digest " + "f" * 32 + ")",
        "labels": {"cloudserve-version": "1", "cloudserve-digest": "0" * 32},
    }
    version = Version.from_model(body)
    assert (version.version, version.version_id, version.digest) == ("3", "7", "f" * 32)
    assert version.is_default
    foreign = Version.from_model({"versionId": "3", "labels": {"cloudserve-version": "3"}})
    assert foreign.version == "3" and not foreign.named  # listed, never taken for v3


def test_fake_merges_model_and_version_labels(adapter, fake, export_v1, export_v2):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    api = adapter._vertex()
    models = api.client.projects().locations().models()
    body = {
        "parentModel": api.model_name(MODEL),
        "model": {
            "displayName": MODEL,
            "containerSpec": {"imageUri": "us-docker.pkg.dev/a/b/c:1"},
            "labels": {"managed-by": "someone-else", "team": "x"},
        },
    }
    models.upload(parent=api.parent, body=body).execute()
    returned = models.get(name=api.model_name(MODEL, "2")).execute()
    assert returned["labels"] == {"managed-by": "cloudserve", "team": "x"}  # the model's wins


@pytest.mark.parametrize("alias", ["V2", "2v", "v_2", "v2-", "a" * 129, "v"])
def test_fake_enforces_the_alias_format(adapter, fake, export_v1, alias):
    from googleapiclient.errors import HttpError

    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    api = adapter._vertex()
    models = api.client.projects().locations().models()
    body = {
        "parentModel": api.model_name(MODEL),
        "model": {
            "displayName": MODEL,
            "containerSpec": {"imageUri": "us-docker.pkg.dev/a/b/c:1"},
            "versionAliases": [alias],
        },
    }
    with pytest.raises(HttpError) as info:
        models.upload(parent=api.parent, body=body).execute()
    assert info.value.status_code == 400 and "alias" in str(info.value)
    merge = models.mergeVersionAliases(
        name=api.model_name(MODEL, "1"), body={"versionAliases": [alias]}
    )
    if alias == "v2-":  # merge allows a trailing dash (its field's own pattern)
        assert "v2-" in merge.execute()["versionAliases"]
        return
    with pytest.raises(HttpError):
        merge.execute()


def test_fake_refuses_an_image_outside_artifact_or_container_registry(adapter, fake):
    from googleapiclient.errors import HttpError

    api = adapter._vertex()
    body = {
        "modelId": "ghcr",
        "model": {
            "displayName": "ghcr",
            "containerSpec": {"imageUri": "ghcr.io/cloudserve/cloudserve-runtime:0.1.0-cpu"},
        },
    }
    request = api.client.projects().locations().models().upload(parent=api.parent, body=body)
    with pytest.raises(HttpError) as info:
        request.execute()
    assert info.value.status_code == 400 and "Artifact Registry" in str(info.value)


def test_fake_refuses_splits_that_do_not_sum_to_100_or_name_unknown_models(
    adapter, fake, export_v1
):
    from googleapiclient.errors import HttpError

    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    deployed_id = record.resources["deployed_model_id"]
    api = adapter._vertex()
    for split in ({deployed_id: 90}, {deployed_id: 90, "424242": 10}, {deployed_id: 101}):
        with pytest.raises(ProviderError):
            api.patch_endpoint(MODEL, {"trafficSplit": split}, ["trafficSplit"])
    endpoints = api.client.projects().locations().endpoints()
    bad = endpoints.deployModel(
        endpoint=api.endpoint_name(MODEL),
        body={
            "deployedModel": {
                "model": api.model_name(MODEL, "1"),
                "dedicatedResources": {
                    "machineSpec": {"machineType": "n1-standard-2"},
                    "minReplicaCount": 1,
                },
            },
            "trafficSplit": {"0": 50, deployed_id: 40},
        },
    )
    with pytest.raises(HttpError, match="sum to 100"):
        bad.execute()
    assert fake.endpoints[MODEL]["trafficSplit"] == {deployed_id: 100}


# --------------------------------------------------------------------------- scaling on redeploy


def test_changed_scaling_is_applied_on_redeploy(make_adapter, fake, export_v1):
    make_adapter().deploy(spec(export_v1, "1"), export_v1, timeout=60)
    scaled = make_adapter(min_replicas=2, max_replicas=5, autoscaling_cpu_target=70)
    plan = scaled.plan(spec(export_v1, "1"), export_v1)
    assert [a.verb for a in plan.actions if a.resource == "vertex-deployed-model"] == ["update"]
    record = scaled.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert record.changed
    (body,) = fake.bodies("mutateDeployedModel")
    assert body["deployedModel"]["id"] == record.resources["deployed_model_id"]
    resources = fake.endpoints[MODEL]["deployedModels"][0]["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (2, 5)
    assert resources["autoscalingMetricSpecs"][0]["target"] == 70
    assert not scaled.deploy(spec(export_v1, "1"), export_v1, timeout=60).changed
    assert len(fake.bodies("mutateDeployedModel")) == 1


def test_redeploy_ignores_what_vertex_fills_in_by_itself(adapter, fake, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    resources = fake.endpoints[MODEL]["deployedModels"][0]["dedicatedResources"]
    resources["machineSpec"]["acceleratorType"] = "ACCELERATOR_TYPE_UNSPECIFIED"
    resources["autoscalingMetricSpecs"] = [
        {"metricName": "aiplatform.googleapis.com/prediction/online/cpu/utilization", "target": 60}
    ]
    assert not adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60).changed
    assert "mutateDeployedModel" not in fake.methods_called()


def test_a_changed_machine_on_redeploy_is_refused(make_adapter, fake, export_v1):
    make_adapter().deploy(spec(export_v1, "1"), export_v1, timeout=60)
    with pytest.raises(ConfigError, match="cannot change"):
        make_adapter(machine_type="n1-standard-4").deploy(
            spec(export_v1, "1"), export_v1, timeout=60
        )
    assert "mutateDeployedModel" not in fake.methods_called()


# --------------------------------------------------------------------------- bucket region


def test_a_bucket_in_another_region_is_refused_before_upload(adapter, fake, storage, export_v1):
    bucket = storage.bucket(BUCKET)
    bucket._patch_property("location", "EUROPE-WEST4")
    bucket.patch()
    with pytest.raises(ConfigError) as info:
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert "EUROPE-WEST4" in info.value.message and REGION in info.value.message
    assert bucket_objects(storage) == [] and "upload" not in fake.methods_called()
    with pytest.raises(ConfigError, match="EUROPE-WEST4"):
        adapter.plan(spec(export_v1, "1"), export_v1)


def test_bucket_location_rules(adapter, storage, export_v1):
    bucket = storage.bucket(BUCKET)
    for location in ("US-CENTRAL1", "us-central1"):
        bucket._patch_property("location", location)
        bucket.patch()
        assert upload.check_bucket_location(storage.bucket(BUCKET), REGION) is None
    bucket._patch_property("location", "US")
    bucket.patch()
    assert "multi-region US" in upload.check_bucket_location(storage.bucket(BUCKET), REGION)
    with pytest.raises(ConfigError):
        upload.check_bucket_location(storage.bucket(BUCKET), "europe-west4")
    with pytest.raises(ConfigError, match="does not exist"):
        upload.check_bucket_location(storage.bucket("no-such-bucket"), REGION)


def test_a_multi_region_bucket_deploys_with_a_warning(adapter, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert any("multi-region US" in s for s in adapter.progress.statuses)


# --------------------------------------------------------------------------- retries


def test_reads_and_idempotent_updates_are_resent_after_transport_errors(adapter, fake, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.fail_requests("listVersions")
    fake.fail_requests("get")
    (v1,) = adapter.list_versions(MODEL)
    assert v1.is_default
    assert fake.attempts.count("listVersions") >= 2
    fake.fail_requests("patch")
    adapter._vertex().patch_endpoint(MODEL, {"labels": {"team": "x"}}, ["labels"])
    assert fake.endpoints[MODEL]["labels"] == {"team": "x"}


def test_uploads_deploys_and_predictions_are_not_resent(adapter, fake, export_v1):
    fake.fail_requests("upload")
    with pytest.raises(ProviderError) as info:
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert info.value.http_status == 503
    assert fake.attempts.count("upload") == 1 and MODEL not in fake.models
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.fail_requests("predict")
    with pytest.raises(ProviderError):
        adapter.predict(MODEL, PAYLOAD)
    assert fake.attempts.count("predict") == 1


# --------------------------------------------------------------------------- work done once


def test_each_file_is_hashed_once_for_plan_and_deploy(adapter, big_export, monkeypatch):
    hashed: list[Path] = []
    real = upload.file_md5

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(upload, "file_md5", counting)
    adapter.plan(spec(big_export, "1"), big_export)
    adapter.deploy(spec(big_export, "1"), big_export, timeout=60)
    assert sorted(hashed) == sorted(big_export.path / f for f in big_export.files)


# --------------------------------------------------------------------------- logs


def test_version_logs_come_from_cloud_logging(adapter, fake, export_v1, export_v2):
    r1 = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    r2 = adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    for i in range(5):
        fake.add_log(
            MODEL,
            r1.resources["deployed_model_id"],
            f"v1 line {i}",
            timestamp=f"2026-12-07T10:00:0{i}Z",
        )
    fake.add_log(
        MODEL, r2.resources["deployed_model_id"], "v2 line", timestamp="2026-12-07T10:00:09Z"
    )
    fake.add_log(
        "other", r1.resources["deployed_model_id"], "elsewhere", timestamp="2026-12-07T10:00:09Z"
    )
    assert adapter.version_logs(MODEL, "1", lines=3) == ["v1 line 2", "v1 line 3", "v1 line 4"]
    assert adapter.version_logs(MODEL, "2") == ["v2 line"]
    query = next(b for m, b in fake.calls if m == "list")
    assert query["filter"].startswith('resource.type="aiplatform.googleapis.com/Endpoint"')
    assert adapter.version_logs(MODEL, "9") == [] and adapter.version_logs("nope", "1") == []
    fake.fail_requests("list", status=403)
    assert adapter.version_logs(MODEL, "1") == []


# --------------------------------------------------------------------------- predict


def test_predict_body_over_1_5_mb_is_refused_locally(adapter, fake, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    huge = {"instances": [[1.0]] * 300_000}
    with pytest.raises(PreflightError) as info:
        adapter.predict(MODEL, huge)
    assert info.value.findings[0].id == "gcp.predict.payload"
    assert "predict" not in fake.methods_called()


def test_predict_rejects_columnar_bodies(adapter, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    with pytest.raises(ConfigError, match="inputs"):
        adapter.predict(MODEL, {"inputs": {"x": [[1.0]]}})


def test_predict_version_reaches_a_deployed_non_default_version(
    adapter, fake, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    planned = adapter.plan(spec(export_v2, "2"), export_v2)
    (action,) = [a for a in planned.actions if a.resource == "vertex-preview-endpoint"]
    assert action.name.endswith(f"/endpoints/{MODEL}-v2")
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)  # no traffic: verify first
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="1")) == [[2.5]]
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]  # default untouched
    preview = fake.endpoints[f"{MODEL}-v2"]
    assert preview["trafficSplit"] == {preview["deployedModels"][0]["id"]: 100}
    assert preview["deployedModels"][0]["dedicatedResources"]["maxReplicaCount"] == 1
    adapter.set_default(MODEL, "2", timeout=60)
    assert list(fake.endpoints) == [MODEL]  # the preview endpoint went with the promotion
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]


def test_a_failed_preview_deploy_says_the_version_is_deployed_and_resumes(
    adapter, fake, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    fake.fail_requests("create")  # the preview endpoint's create; not resent (creates)
    with pytest.raises(ProviderError, match="v2 is deployed with 0% of the traffic"):
        adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    record = adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    assert record.changed and f"{MODEL}-v2" in fake.endpoints
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]


def test_predict_version_without_a_preview_endpoint_is_not_supported(
    make_adapter, export_v1, export_v2
):
    adapter = make_adapter(preview_endpoints=False)
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2"), export_v2, timeout=60)
    with pytest.raises(NotSupported, match="preview endpoint"):
        adapter.predict(MODEL, PAYLOAD, version="2")


def test_predict_unknown_model(adapter):
    with pytest.raises(NotFound):
        adapter.predict("no-such-model", PAYLOAD)


# --------------------------------------------------------------------------- delete


def test_delete_model_removes_endpoint_and_artifacts(adapter, fake, storage, export_v1):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    removed = adapter.delete(MODEL)
    assert any(r.endswith(f"/endpoints/{MODEL}") for r in removed)
    assert fake.endpoints == {} and MODEL not in fake.models
    assert bucket_objects(storage) == []
    assert adapter.delete(MODEL) == []


def test_delete_canary_version_moves_its_traffic_to_the_default(
    adapter, fake, export_v1, export_v2
):
    adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    adapter.deploy(spec(export_v2, "2", traffic={"1": 80, "2": 20}), export_v2, timeout=60)
    adapter.delete(MODEL, "2")
    (v1,) = adapter.list_versions(MODEL)
    assert v1.traffic == 100 and v1.is_default
    assert list(fake.endpoints) == [MODEL]  # the canary's preview endpoint is gone too


# --------------------------------------------------------------------------- operations


def test_long_running_operations_are_polled(adapter, fake, export_v1):
    fake.operation_polls = 3
    record = adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert record.is_default
    assert any("waiting" in s for s in adapter.progress.statuses)
    assert fake.methods_called().count("get") >= 3 * 3  # upload, endpoint, deploy operations


def test_operation_timeout_raises_deploy_timeout(adapter, fake, export_v1):
    fake.operation_polls = 10**9
    started = time.monotonic()
    with pytest.raises(DeployTimeout, match="operation"):
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=0.5)
    assert time.monotonic() - started < 10


def test_ctrl_c_during_upload_says_how_to_resume(adapter, fake, export_v1, monkeypatch):
    from cloudserve.waiting import Interrupted

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(upload, "_write_resumable", interrupted)
    with pytest.raises(Interrupted) as info:
        adapter.deploy(spec(export_v1, "1"), export_v1, timeout=60)
    assert info.value.exit_code == 130 and "re-run" in info.value.hint


def test_deploy_without_wait_returns_creating(adapter, fake, export_v1):
    fake.operation_polls = 1
    record = adapter.deploy(spec(export_v1, "1"), export_v1, wait=False, timeout=60)
    assert record.state == "CREATING"


# --------------------------------------------------------------------------- preflight


PREFLIGHT_CASES = [
    ({"region": "global"}, {}, "gcp.region"),
    ({"accelerator_type": "NVIDIA_TESLA_K80", "accelerator_count": 1}, {}, "gcp.accelerator"),
    ({"accelerator_type": "NVIDIA_L4", "accelerator_count": 1}, {}, "gcp.machine_accelerator"),
    (
        {
            "machine_type": "n1-standard-8",
            "accelerator_type": "NVIDIA_TESLA_A100",
            "accelerator_count": 1,
        },
        {},
        "gcp.machine_accelerator",
    ),
    ({"accelerator_count": 2}, {}, "gcp.accelerator"),
    ({"accelerator_type": "NVIDIA_TESLA_T4"}, {}, "gcp.accelerator"),
    ({"min_replicas": 0}, {}, "gcp.replicas.min"),
    ({"min_replicas": 3, "max_replicas": 2}, {}, "gcp.replicas.max"),
    ({"image": "prebuilt"}, {}, "gcp.image"),
    ({"deployment_timeout_s": 7201}, {}, "gcp.deployment_timeout"),
    ({"endpoint_id": "Bad_Endpoint"}, {}, "gcp.endpoint_id"),
    ({"endpoint_id": "0123"}, {}, "gcp.endpoint_id"),
    ({"endpoint_display_name": "d" * 129}, {}, "gcp.display_name"),
    ({"labels": {"Team": "x"}}, {}, "gcp.labels"),
    ({}, {"model": "1model"}, "gcp.model_id"),
    ({}, {"version": "v_1"}, "gcp.version_alias"),
    ({}, {"version": "1.0"}, "gcp.version_alias"),
    ({}, {"traffic": {"1": 50, "2": 40}}, "gcp.traffic"),
    ({}, {"traffic": {"1": 50, "2": 50}, "set_default": True}, "gcp.traffic"),
]


@pytest.mark.parametrize(("config", "spec_changes", "rule"), PREFLIGHT_CASES)
def test_preflight_rule_trips(config, spec_changes, rule, export_v1):
    adapter = VertexAdapter(make_config(**config))
    base = dataclasses.replace(spec(export_v1, "2"), **spec_changes)
    findings = adapter.preflight(base, export_v1)
    assert rule in {f.id for f in findings if f.severity == "error"}, findings
    assert all(f.source for f in findings if f.id == rule)


def test_preflight_clean_config_has_no_errors(export_v1):
    adapter = VertexAdapter(
        make_config(machine_type="g2-standard-8", accelerator_type="NVIDIA_L4", accelerator_count=1)
    )
    findings = adapter.preflight(spec(export_v1, "1"), export_v1)
    assert [f for f in findings if f.severity == "error"] == []
    assert {(f.id, f.severity) for f in findings} == {("gcp.image", "info")}  # runtime image


def test_preflight_refuses_before_any_call(adapter, fake, storage, export_v1):
    bad = make_config(min_replicas=0)
    with pytest.raises(PreflightError):
        VertexAdapter(bad, clients=adapter.clients).deploy(spec(export_v1, "1"), export_v1)
    assert fake.calls == [] and bucket_objects(storage) == []


def test_chunk_size_must_be_a_multiple_of_256k():
    with pytest.raises(ValueError, match="256 KiB"):
        make_config(upload_chunk_size=100_000)


def test_instance_memory_from_machine_table():
    assert VertexAdapter(make_config(machine_type="n1-standard-4")).instance_memory_mb() == 15360
    assert VertexAdapter(make_config(machine_type="x9-custom-1")).instance_memory_mb() is None


# --------------------------------------------------------------------------- legacy ml v1


def test_legacy_ml_v1_in_config_maps_terms_onto_vertex():
    with pytest.raises(NotSupported) as info:
        make_config(api="ml-v1")
    assert "2025-01-31" in info.value.message
    assert "'default' version alias" in info.value.hint and "parentModel" in info.value.hint


def test_legacy_ml_v1_target_name():
    for name in ("ml-v1", "ai-platform"):
        with pytest.raises(NotSupported, match="2025-01-31"):
            registry.canonical_name(name)


# --------------------------------------------------------------------------- the fake itself


def test_fake_rejects_a_misspelt_field(adapter, fake):
    from googleapiclient.errors import HttpError

    api = adapter._vertex()
    body = {
        "modelId": "typo",
        "model": {
            "displayName": "typo",
            "containerSpec": {"imageUri": "us-docker.pkg.dev/a/b/c:1", "predictRoot": "/p"},
        },
    }
    request = api.client.projects().locations().models().upload(parent=api.parent, body=body)
    with pytest.raises(HttpError) as info:
        request.execute()
    assert info.value.status_code == 400 and "predictRoot" in str(info.value)
    assert "typo" not in fake.models


def test_fake_rejects_a_wrong_verb_and_output_only_fields(fake):
    def send(method: str, path: str, body: dict | None = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(fake.url + path, data=data, method=method)
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            return e.code
        return 200

    endpoint = f"v1/projects/{PROJECT}/locations/{REGION}/endpoints"
    assert send("PUT", endpoint + "/e1") == 405
    assert send("POST", endpoint + "?endpointId=e1", {"displayName": "e", "createTime": "x"}) == 400
    assert send("POST", endpoint + "?endpointID=e1", {"displayName": "e"}) == 400
    assert send("POST", endpoint + "?endpointId=e1", {"displayName": "e"}) == 200


def test_sdk_error_translation():
    import httplib2
    from googleapiclient.errors import HttpError

    def error(status: int) -> HttpError:
        content = json.dumps({"error": {"message": f"status {status}"}}).encode()
        return HttpError(httplib2.Response({"status": status}), content)

    assert isinstance(translate(error(404), "get"), NotFound)
    assert isinstance(translate(error(403), "get"), CredentialsError)
    provider = translate(error(409), "create")
    assert isinstance(provider, ProviderError) and provider.http_status == 409
    assert "status 409" in provider.message


def test_no_google_sdk_needed_to_import(tmp_path):
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('googleapiclient', 'google_auth_httplib2', 'httplib2') or \\
                name.startswith(('google.cloud', 'google.auth', 'google.api_core')):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
from cloudserve_adapters.gcp.adapter import VertexAdapter
from cloudserve_adapters.gcp.config import GcpConfig
from cloudserve.errors import MissingDependency
adapter = VertexAdapter(GcpConfig(project='p', bucket='b'))
try:
    adapter.list_versions('m')
except MissingDependency as e:
    print(e.message, '|', e.hint)
"""
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert "google-api-python-client is not installed" in out.stdout
    assert "pip install 'cloudserve[gcp]'" in out.stdout
