"""The kubernetes target against a stand-in cluster (kmock + a fake controller) and moto S3.

The API server is kmock with strict schema validation (tests/adapters/fakes/k8s_cluster.py);
the model store is S3 in moto's server; the pods' runtime is a real ``cloudserve_runtime``
process started from the Deployment's own container args and env, reading its model config
from the ConfigMap (as the kubelet mounts it) and its versions from ``s3://`` (the runtime's
bucket mirror). Predictions in the contract go through the API server's service proxy, which
the stand-in forwards to that process.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import kubernetes_validate
import pytest
import yaml
from moto.server import ThreadedMotoServer

from cloudserve.errors import ConfigError, DeployTimeout, PreflightError, ProviderError
from cloudserve.records import DeploySpec, ExportInfo
from cloudserve_adapters.kubernetes import manifests
from cloudserve_adapters.kubernetes.adapter import KubernetesAdapter
from cloudserve_adapters.kubernetes.config import KubernetesConfig
from cloudserve_adapters.kubernetes.sdk import KubeClients
from tests.adapters.contract import ANSWERS, PAYLOAD, AdapterContract, predictions
from tests.adapters.fakes.k8s_cluster import K8S_VERSION, FakeCluster
from tests.image.conftest import gcs_emulator_url  # noqa: F401  (a fixture)
from tests.support import free_port

BUCKET = "models"
IMAGE = "registry.example/cloudserve-runtime@sha256:" + "a" * 64
BROKEN_IMAGE = "registry.example/cloudserve-runtime@sha256:" + "b" * 64
NAMESPACE = "serving"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, moto_s3: str) -> Iterator[FakeCluster]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": moto_s3,
    }
    fake = FakeCluster(tmp_path_factory.mktemp("k8s"), env)
    fake.start()
    fake.namespaces.add(NAMESPACE)
    yield fake
    fake.stop()


def settings(moto_s3: str, **overrides) -> KubernetesConfig:
    values = dict(
        namespace=NAMESPACE,
        model_store=f"s3://{BUCKET}/serving",
        s3_endpoint_url=moto_s3,
        image=IMAGE,
        min_replicas=2,
        poll_interval_s=1,
    )
    values.update(overrides)
    return KubernetesConfig(**values)


def make_adapter(cluster: FakeCluster, moto_s3: str, **overrides) -> KubernetesAdapter:
    return KubernetesAdapter(settings(moto_s3, **overrides), clients=KubeClients(host=cluster.url))


def s3_keys(moto_s3: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def fresh_bucket(moto_s3: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)


class TestKubernetesContract(AdapterContract):
    target = "kubernetes"

    @pytest.fixture
    def adapter(self, cluster, moto_s3, fresh_bucket) -> Iterator[KubernetesAdapter]:
        adapter = make_adapter(cluster, moto_s3)
        yield adapter
        adapter.delete(self.model)
        assert not cluster.api.rejected, cluster.api.rejected
        assert not cluster.errors, cluster.errors

    def stored_objects(self, adapter: KubernetesAdapter) -> list[str]:
        return adapter.store.objects()


# --------------------------------------------------------------------------- manifests


def test_every_manifest_validates_strictly(moto_s3: str):
    """Every object, for CPU and GPU variants, with and without autoscaling, passes strict
    validation against the Kubernetes 1.37 schema (what kubectl --validate=strict checks)."""
    variants = [
        {},
        {"variant": "gpu", "gpus": 2, "cpu_limit": "4"},
        {"autoscaling": False, "replicas": 3, "service_account": "reader", "storage_secret": "s3"},
    ]
    for overrides in variants:
        config = settings(moto_s3, **overrides)
        state = manifests.ModelState({"1": {"digest": "x", "created": "now"}}, "1")
        objects = [
            manifests.config_map(config, "half", state),
            *manifests.workload(config, "half", IMAGE, 600),
        ]
        kinds = [o["kind"] for o in objects]
        assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= set(kinds)
        assert ("HorizontalPodAutoscaler" in kinds) == config.autoscaling
        for obj in objects:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    gpu = manifests.deployment(settings(moto_s3, variant="gpu", gpus=2), "half", IMAGE, 600)
    container = gpu["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["memory"] == "600Mi"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    batching = settings(moto_s3, batching={"max_batch_size": 8, "batch_timeout_micros": 500})
    state = manifests.ModelState({"1": {}}, "1")
    data = manifests.config_map(batching, "half", state)["data"]
    assert (
        data["batching.config"]
        == "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 500 }\n"
    )
    args = manifests.runtime_args(batching)
    assert "--enable_batching=true" in args
    assert "--batching_parameters_file=/etc/cloudserve/batching.config" in args


def test_misspelt_field_is_rejected_by_the_stand_in(cluster: FakeCluster, moto_s3: str):
    """The stand-in API server is strict: a field the schema lacks is a 422."""
    adapter = make_adapter(cluster, moto_s3)
    bad = manifests.service(adapter.config, "typo")
    bad["spec"]["prots"] = bad["spec"].pop("ports")
    with pytest.raises(ProviderError, match="422"):
        adapter.kube.create(bad)
    cluster.api.rejected.clear()


def test_dry_run_writes_manifests_and_applies_nothing(
    cluster: FakeCluster, moto_s3: str, export_v1: ExportInfo, tmp_path: Path, fresh_bucket
):
    out = tmp_path / "manifests"
    adapter = make_adapter(cluster, moto_s3, manifests_dir=out)
    spec = DeploySpec(model="gitops", export=export_v1.path, version="1", target="kubernetes")
    plan = adapter.plan(spec, export_v1)
    files = sorted(out.glob("*.yaml"))
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]
    for f in files:
        kubernetes_validate.validate(yaml.safe_load(f.read_text()), K8S_VERSION, strict=True)
    assert {a.verb for a in plan.actions if a.resource == "Deployment"} == {"create"}
    assert adapter.kube.get("Deployment", NAMESPACE, manifests.resource_name("gitops")) is None
    assert not [k for k in s3_keys(moto_s3) if k.startswith("serving/gitops/")]


# --------------------------------------------------------------------------- behaviour


@pytest.fixture
def deployed(cluster, moto_s3, fresh_bucket, export_v1) -> Iterator[KubernetesAdapter]:
    adapter = make_adapter(cluster, moto_s3)
    spec = DeploySpec(model="scaled", export=export_v1.path, version="1", target="kubernetes")
    adapter.deploy(spec, export_v1, timeout=120)
    yield adapter
    adapter.delete("scaled")
    cluster.controller.behaviours.clear()


def test_reapply_changes_nothing(deployed: KubernetesAdapter, export_v1: ExportInfo):
    """Apply-style idempotence: a second deploy sends no write and reports changed=False."""
    spec = DeploySpec(model="scaled", export=export_v1.path, version="1", target="kubernetes")
    plan = deployed.plan(spec, export_v1)
    assert not plan.changes_anything, plan.actions
    name = manifests.resource_name("scaled")
    before = deployed.kube.get("Deployment", NAMESPACE, name)["metadata"]["resourceVersion"]
    record = deployed.deploy(spec, export_v1, timeout=60)
    assert not record.changed
    after = deployed.kube.get("Deployment", NAMESPACE, name)["metadata"]["resourceVersion"]
    assert before == after


def test_pods_and_status_after_rollout(deployed: KubernetesAdapter):
    pods = deployed.kube.list("Pod", NAMESPACE, manifests.selector("scaled"))
    assert len(pods) == 2
    config_map = deployed.kube.get("ConfigMap", NAMESPACE, manifests.resource_name("scaled"))
    text = config_map["data"][manifests.MODEL_CONFIG_KEY]
    assert 'base_path: "s3://models/serving/scaled"' in text
    assert 'key: "default"' in text and "value: 1" in text
    hpa = deployed.kube.get("HorizontalPodAutoscaler", NAMESPACE, manifests.resource_name("scaled"))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)


def test_stalled_rollout_reports_the_pod_reason_and_keeps_the_default(
    cluster: FakeCluster,
    deployed: KubernetesAdapter,
    moto_s3: str,
    export_v2: ExportInfo,
):
    cluster.controller.behave(BROKEN_IMAGE, "ImagePullBackOff")
    broken = make_adapter(cluster, moto_s3, image=BROKEN_IMAGE)
    spec = DeploySpec(
        model="scaled", export=export_v2.path, version="2", target="kubernetes", set_default=True
    )
    with pytest.raises(ProviderError, match="ImagePullBackOff"):
        broken.deploy(spec, export_v2, timeout=60)
    assert [v.version for v in deployed.list_versions("scaled")] == ["1"]
    assert deployed.list_versions("scaled")[0].is_default
    assert predictions(deployed.predict("scaled", PAYLOAD)) == ANSWERS["1"]


def test_crash_loop_is_reported(
    cluster: FakeCluster, deployed: KubernetesAdapter, moto_s3: str, export_v1: ExportInfo
):
    cluster.controller.behave(BROKEN_IMAGE, "CrashLoopBackOff")
    broken = make_adapter(cluster, moto_s3, image=BROKEN_IMAGE)
    spec = DeploySpec(model="scaled", export=export_v1.path, version="1", target="kubernetes")
    with pytest.raises(ProviderError, match="CrashLoopBackOff"):
        broken.deploy(spec, export_v1, timeout=60)


def test_rollout_that_never_progresses_times_out(
    cluster: FakeCluster, deployed: KubernetesAdapter, moto_s3: str, export_v1: ExportInfo
):
    cluster.controller.behave(BROKEN_IMAGE, "hang")
    broken = make_adapter(cluster, moto_s3, image=BROKEN_IMAGE)
    spec = DeploySpec(model="scaled", export=export_v1.path, version="1", target="kubernetes")
    with pytest.raises(DeployTimeout, match="rollout"):
        broken.deploy(spec, export_v1, timeout=3)
    assert predictions(deployed.predict("scaled", PAYLOAD)) == ANSWERS["1"]


def test_new_version_is_hot_loaded_without_a_restart(
    cluster: FakeCluster, deployed: KubernetesAdapter, export_v2: ExportInfo
):
    """Adding a version changes the ConfigMap only: same pods, same runtime process."""
    pods = sorted(
        p["metadata"]["uid"]
        for p in deployed.kube.list("Pod", NAMESPACE, manifests.selector("scaled"))
    )
    runtime = cluster.controller.runtime_for(NAMESPACE, manifests.resource_name("scaled"))
    spec = DeploySpec(model="scaled", export=export_v2.path, version="2", target="kubernetes")
    record = deployed.deploy(spec, export_v2, timeout=120)
    assert record.state == "AVAILABLE" and not record.is_default
    after = sorted(
        p["metadata"]["uid"]
        for p in deployed.kube.list("Pod", NAMESPACE, manifests.selector("scaled"))
    )
    assert after == pods
    assert cluster.controller.runtime_for(NAMESPACE, manifests.resource_name("scaled")) is runtime
    assert predictions(deployed.predict("scaled", PAYLOAD, version="2")) == ANSWERS["2"]


def test_version_logs_come_from_the_pods(deployed: KubernetesAdapter):
    lines = deployed.version_logs("scaled", "1", lines=20)
    assert lines and all(line.startswith("[cloudserve-scaled-") for line in lines)


# --------------------------------------------------------------------------- preflight


def _findings(adapter: KubernetesAdapter, export: ExportInfo, **spec_kw) -> dict[str, str]:
    spec = DeploySpec(model="m", export=export.path, version="1", target="kubernetes", **spec_kw)
    return {f.id: f.severity for f in adapter.preflight(spec, export)}


def test_preflight_rules(cluster: FakeCluster, moto_s3: str, export_v1: ExportInfo):
    ok = make_adapter(cluster, moto_s3)
    assert "error" not in _findings(ok, export_v1).values()
    unpinned = make_adapter(cluster, moto_s3, image="registry.example/runtime:latest")
    assert _findings(unpinned, export_v1)["kubernetes.image_pinned"] == "error"
    no_image = make_adapter(cluster, moto_s3, image=None, registry="registry.example")
    assert _findings(no_image, export_v1)["kubernetes.image"] == "error"
    spec = DeploySpec(model="m", export=export_v1.path, version="1", target="kubernetes")
    fix = next(f.fix for f in no_image.preflight(spec, export_v1) if f.id == "kubernetes.image")
    assert "cloudserve image push --registry registry.example --variant cpu" in fix
    small = make_adapter(cluster, moto_s3, memory_mb=64)
    assert _findings(small, export_v1)["kubernetes.memory"] == "error"
    drain_all = make_adapter(cluster, moto_s3, min_replicas=1, max_unavailable=1)
    found = _findings(drain_all, export_v1)
    assert found["kubernetes.disruption_budget"] == "error"
    assert found["kubernetes.replicas"] == "warning"
    with pytest.raises(PreflightError):
        unpinned.deploy(
            DeploySpec(model="m", export=export_v1.path, version="1", target="kubernetes"),
            export_v1,
            timeout=10,
        )
    with pytest.raises(ValueError):
        settings(moto_s3, min_replicas=5, max_replicas=2)


def test_preflight_checks_the_kubeconfig_context(moto_s3: str, export_v1: ExportInfo, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "prod", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}
                ],
                "current-context": "prod",
            }
        )
    )
    good = KubernetesAdapter(settings(moto_s3, kubeconfig=kubeconfig, context="prod"))
    found = _findings(good, export_v1)
    assert found.get("kubernetes.namespace") == "warning"  # context says ml, target serving
    missing = KubernetesAdapter(settings(moto_s3, kubeconfig=kubeconfig, context="staging"))
    assert _findings(missing, export_v1)["kubernetes.context"] == "error"


def test_missing_namespace_is_refused_before_upload(
    cluster: FakeCluster, moto_s3: str, export_v1: ExportInfo, fresh_bucket
):
    adapter = make_adapter(cluster, moto_s3, namespace="nowhere")
    spec = DeploySpec(model="lost", export=export_v1.path, version="1", target="kubernetes")
    with pytest.raises(ConfigError, match="namespace 'nowhere' does not exist") as raised:
        adapter.deploy(spec, export_v1, timeout=30)
    assert "kubectl create namespace nowhere" in raised.value.hint
    assert not [k for k in s3_keys(moto_s3) if k.startswith("serving/lost/")]


def test_redeploy_other_content_is_refused_before_upload(
    deployed: KubernetesAdapter, moto_s3: str, export_v2: ExportInfo
):
    before = s3_keys(moto_s3)
    spec = DeploySpec(model="scaled", export=export_v2.path, version="1", target="kubernetes")
    with pytest.raises(ConfigError):
        deployed.deploy(spec, export_v2, timeout=30)
    assert s3_keys(moto_s3) == before


# --------------------------------------------------------------------------- the pod, for real


def test_runtime_mirrors_s3_versions_only_once_complete(
    moto_s3: str, fresh_bucket, tmp_path, monkeypatch
):
    """The runtime's s3:// base path: a version appears in the mirror only after two polls saw
    the same listing, and a version deleted from the bucket leaves the mirror."""
    from cloudserve_runtime import remote

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3)
    monkeypatch.setenv("CLOUDSERVE_MODEL_CACHE", str(tmp_path / "cache"))
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    uri = f"s3://{BUCKET}/mirror-test/m"
    s3.put_object(Bucket=BUCKET, Key="mirror-test/m/3/saved_model.pb", Body=b"graph")
    local = Path(remote.local_base_path(uri))
    assert not (local / "3").exists()  # first sight: maybe still uploading
    s3.put_object(Bucket=BUCKET, Key="mirror-test/m/3/variables/variables.index", Body=b"idx")
    remote.local_base_path(uri)
    assert not (local / "3").exists()  # the listing changed: wait again
    remote.local_base_path(uri)
    assert (local / "3" / "variables" / "variables.index").read_bytes() == b"idx"
    assert [p.name for p in local.iterdir() if not p.name.startswith(".")] == ["3"]
    s3.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": k} for k in s3_keys(moto_s3) if k.startswith("mirror-test/")]},
    )
    remote.local_base_path(uri)
    assert not (local / "3").exists()


@pytest.mark.timeout(1800)  # a cold build of the -gcs image takes ~10 min
def test_pod_template_serves_a_prediction_in_a_real_container(
    docker_engine,
    gcs_emulator_url: str,  # noqa: F811  (the fixture imported above)
    export_v1: ExportInfo,
    tmp_path: Path,
):
    """The Deployment's container spec (image, args, env, probes, mounts) run with a real
    Docker engine: the runtime reads its model config from the ConfigMap's files and the
    version from a gs:// model store, turns ready on its readinessProbe and answers predict.

    The engine runs containers on the host network, so the two port flags are moved to free
    ports; everything else is the manifest as built.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from cloudserve.progress import NullProgress
    from cloudserve_adapters.gcp.sdk import GcpClients
    from cloudserve_adapters.kubernetes.storage import GcsStore
    from tests.dockerd import build_runtime_image

    image = build_runtime_image(docker_engine, gcs=True, tags=["cloudserve-runtime:test-cpu-gcs"])
    gcs.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator_url},
    ).create_bucket("pods")
    config = KubernetesConfig(model_store="gs://pods/serving", image=IMAGE, poll_interval_s=1)
    clients = GcpClients(credentials=AnonymousCredentials(), storage_endpoint=gcs_emulator_url)
    GcsStore(config, clients, project="test").upload(export_v1, "half", "1", NullProgress())
    state = manifests.ModelState({"1": {"digest": "d", "created": "now"}}, "1")
    config_dir, cache_dir = tmp_path / "config", tmp_path / "cache"
    config_dir.mkdir()
    cache_dir.mkdir()
    cache_dir.chmod(0o777)  # the image runs as an unprivileged user, as in the pod
    for key, text in manifests.config_map(config, "half", state)["data"].items():
        (config_dir / key).write_text(text)
    deployment = manifests.deployment(config, "half", image.id, 1024)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    rest, grpc = free_port(), free_port()
    args = [
        f"--port={grpc}"
        if a.startswith("--port=")
        else f"--rest_api_port={rest}"
        if a.startswith("--rest_api_port=")
        else a
        for a in container["args"]
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    env["STORAGE_EMULATOR_HOST"] = gcs_emulator_url
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    client = docker_engine.client()
    running = client.containers.run(
        container["image"],
        args,
        environment=env,
        network_mode="host",
        volumes={
            str(config_dir): {"bind": mounts["model-config"], "mode": "ro"},
            str(cache_dir): {"bind": mounts["model-cache"], "mode": "rw"},
        },
        mem_limit=container["resources"]["limits"]["memory"].replace("Mi", "m"),
        detach=True,
    )
    try:
        base = f"http://127.0.0.1:{rest}"
        ready = container["readinessProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            running.reload()
            assert running.status == "running", running.logs().decode()[-3000:]
            assert time.monotonic() < deadline, running.logs().decode()[-3000:]
            time.sleep(1)
        live = container["livenessProbe"]["httpGet"]["path"]
        assert httpx.get(base + live, timeout=5).status_code == 200
        answer = httpx.post(f"{base}/v1/models/half:predict", json=PAYLOAD, timeout=30)
        assert answer.json() == {"predictions": ANSWERS["1"]}
    finally:
        running.remove(force=True)


def test_apply_patches_only_what_differs_and_leaves_replicas_to_the_autoscaler(moto_s3: str):
    """The apply-style diff: a live object the HPA scaled and the API server defaulted needs
    no patch; a changed setting patches only its own list; a setting dropped since the last
    apply is removed (null in the merge patch)."""
    from cloudserve_adapters.kubernetes.apply import planned_patch

    replicas = (("spec", "replicas"),)
    desired = manifests.deployment(settings(moto_s3), "m", IMAGE, 500)
    live = planned_patch(None, desired, create_only=replicas)
    assert live["spec"]["replicas"] == 2  # set at creation
    live["spec"]["replicas"] = 7  # the autoscaler's doing
    live["spec"]["revisionHistoryLimit"] = 10  # the API server's defaults
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/x"
    assert planned_patch(live, desired, create_only=replicas) == {}
    limited = manifests.deployment(settings(moto_s3, cpu_limit="2"), "m", IMAGE, 500)
    patch = planned_patch(live, limited, create_only=replicas)
    assert set(patch) == {"metadata", "spec"} and "replicas" not in patch["spec"]
    assert patch["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    with_sa = manifests.deployment(settings(moto_s3, service_account="reader"), "m", IMAGE, 500)
    live = planned_patch(None, with_sa)
    patch = planned_patch(live, desired)
    assert patch["spec"]["template"]["spec"]["serviceAccountName"] is None


def test_cli_dry_run_writes_manifests_through_a_kubeconfig(
    cluster: FakeCluster, moto_s3: str, export_v1: ExportInfo, tmp_path: Path, fresh_bucket
):
    """``cloudserve deploy --dry-run`` with ``manifests_dir`` (the GitOps path), reaching the
    cluster through a kubeconfig context as a user would; nothing is applied or uploaded."""
    from typer.testing import CliRunner

    from cloudserve.cli.main import app

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": cluster.url}}],
                "users": [{"name": "me", "user": {"token": "not-checked"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
                "current-context": "fake",
            }
        )
    )
    out = tmp_path / "gitops"
    sets = {
        "kubeconfig": kubeconfig,
        "context": "fake",
        "namespace": NAMESPACE,
        "model_store": f"s3://{BUCKET}/serving",
        "s3_endpoint_url": moto_s3,
        "image": IMAGE,
        "manifests_dir": out,
    }
    args = ["--output", "json", "deploy", "--target", "kubernetes", "--model", "cli-model"]
    args += ["--export", str(export_v1.path), "--version", "1", "--dry-run"]
    for key, value in sets.items():
        args += ["--set", f"targets.kubernetes.{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] and data["record"] is None
    verbs = {(a["resource"], a["verb"]) for a in data["plan"]["actions"]}
    assert ("Deployment", "create") in verbs and ("model-store", "upload") in verbs
    assert len(list(out.glob("*.yaml"))) == 5
    name = manifests.resource_name("cli-model")
    assert make_adapter(cluster, moto_s3).kube.get("ConfigMap", NAMESPACE, name) is None


def test_no_wait_deploy_lists_the_version_and_set_default_waits(
    deployed: KubernetesAdapter, export_v2: ExportInfo
):
    spec = DeploySpec(model="scaled", export=export_v2.path, version="2", target="kubernetes")
    record = deployed.deploy(spec, export_v2, wait=False, timeout=60)
    assert record.changed and not record.is_default
    config_map = deployed.kube.get("ConfigMap", NAMESPACE, manifests.resource_name("scaled"))
    assert "versions: 2" in config_map["data"][manifests.MODEL_CONFIG_KEY]
    moved = deployed.set_default("scaled", "2", timeout=120)
    assert moved.is_default and moved.state == "AVAILABLE"
    assert predictions(deployed.predict("scaled", PAYLOAD)) == ANSWERS["2"]
