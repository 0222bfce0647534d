"""The aws (SageMaker) adapter against a moto server.

moto runs as a real server on loopback (``aws_harness.Harness``); the adapter reaches it
through its own client factory (``Harness.clients()``: ``AwsClients`` on a boto3 session),
nothing is patched in the adapter. Every request is first checked against botocore's
service model (required, enum, length, range, ``pattern``), as strictly as AWS checks it;
a request AWS would refuse fails the test that made it. moto lacks UpdateEndpoint and
answers invoke_endpoint from a static queue, so the harness extends moto's SageMaker backend
with UpdateEndpoint (plus knobs for failures) and answers invocations from the model the
endpoint's variant serves: see aws_harness.py. moto also rejects instance types newer than
its hard-coded list (ml.g5, ml.m6i, ...), so deploys here use ml.m5.large.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cloudserve.errors import (
    ConfigError,
    NotFound,
    NotSupported,
    PreflightError,
    ProviderError,
)
from cloudserve.records import DeploySpec, ExportInfo
from cloudserve.waiting import Interrupted
from cloudserve_adapters.aws import images, naming, packaging, state, validation
from cloudserve_adapters.aws.adapter import SageMakerAdapter
from cloudserve_adapters.aws.config import AwsConfig, AwsTimeouts, ServerlessSettings
from tests.adapters.aws_harness import Harness, StrictViolation
from tests.adapters.contract import PAYLOAD, AdapterContract, predictions
from tests.support import RecordingProgress

pytestmark = pytest.mark.slow

BUCKET = "cloudserve-models"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
RUNTIME_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cloudserve-runtime:0.1.0-cpu"
MODEL = "contract-model"


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    h = Harness()
    h.start()
    yield h
    h.stop()


@pytest.fixture
def moto(harness: Harness, export_v1: ExportInfo, export_v2: ExportInfo) -> Iterator[Harness]:
    """A clean moto server that answers predictions like v1 (0.5x+2) and v2 (2x+1).

    Every request of the test is checked against botocore's service model; one AWS would
    refuse fails the test (see aws_harness).
    """
    harness.reset()
    harness.serve(export_v1.path, lambda x: 0.5 * x + 2)
    harness.serve(export_v2.path, lambda x: 2 * x + 1)
    yield harness
    harness.assert_clean()


def config(**overrides: Any) -> AwsConfig:
    settings: dict[str, Any] = {
        "region": "us-east-1",
        "bucket": BUCKET,
        "create_bucket": True,
        "role_arn": ROLE,
        "image": RUNTIME_IMAGE,
        "timeouts": AwsTimeouts(poll_initial_s=0.01, poll_max_s=0.05),
    }
    settings.update(overrides)
    return AwsConfig(**settings)


@pytest.fixture
def make_adapter(moto: Harness):
    def make(progress: RecordingProgress | None = None, **overrides: Any) -> SageMakerAdapter:
        cfg = config(**overrides)
        clients = moto.clients(cfg.region, read_timeout=cfg.timeouts.read_timeout_s)
        return SageMakerAdapter(cfg, clients=clients, progress=progress)

    return make


def spec(export: ExportInfo, version: str, **kw: Any) -> DeploySpec:
    return DeploySpec(model=MODEL, export=export.path, version=version, target="aws", **kw)


def bucket_keys(adapter: SageMakerAdapter) -> list[str]:
    s3 = adapter.clients.s3()
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        return []
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def count_calls(client: Any) -> Counter:
    """Count the API operations a boto3 client makes from now on."""
    calls: Counter = Counter()
    client.meta.events.register("before-call.*.*", lambda model, **_: calls.update([model.name]))
    return calls


def endpoint_history(adapter: SageMakerAdapter) -> str:
    sm = adapter.clients.sagemaker()
    arn = sm.describe_endpoint(EndpointName=MODEL)["EndpointArn"]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
    return tags[naming.TAG_HISTORY]


# --------------------------------------------------------------------------- the contract


class TestSageMakerContract(AdapterContract):
    target = "aws"

    @pytest.fixture
    def adapter(self, make_adapter) -> SageMakerAdapter:
        return make_adapter()

    def stored_objects(self, adapter: SageMakerAdapter) -> list[str]:
        return bucket_keys(adapter)


# --------------------------------------------------------------------------- upload


def test_tarball_follows_the_tf_serving_container_layout(make_adapter, export_v1) -> None:
    adapter = make_adapter()
    record = adapter.deploy(spec(export_v1, "1"), export_v1)
    [key] = bucket_keys(adapter)
    assert key.startswith(f"cloudserve/{MODEL}/v1/model-") and key.endswith(".tar.gz")
    assert record.artifact_uri == f"s3://{BUCKET}/{key}"
    obj = adapter.clients.s3().get_object(Bucket=BUCKET, Key=key)
    blob = obj["Body"].read()
    assert obj["Metadata"][naming.DIGEST_METADATA] == hashlib.sha256(blob).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert {"1/saved_model.pb", "1/variables/variables.index", "1/assets/foo.txt"} <= set(names)
    assert "1/variables/variables.data-00000-of-00001" in names
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)


def test_redeploy_uploads_and_creates_nothing(make_adapter, export_v1) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    s3 = adapter.clients.s3()
    before = s3.head_object(Bucket=BUCKET, Key=bucket_keys(adapter)[0])
    s3_calls, sm_calls = count_calls(s3), count_calls(adapter.clients.sagemaker())
    again = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert not again.changed and again.is_default
    uploads = {"PutObject", "CreateMultipartUpload", "UploadPart", "CreateBucket"}
    assert not uploads & set(s3_calls)
    assert not {op for op in sm_calls if op.startswith(("Create", "Update"))}
    after = s3.head_object(Bucket=BUCKET, Key=bucket_keys(adapter)[0])
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


def test_large_artifact_goes_multipart_with_progress(make_adapter, export_v1, tmp_path) -> None:
    export_dir = tmp_path / "big"
    shutil.copytree(export_v1.path, export_dir)
    (export_dir / "assets").chmod(0o755)
    (export_dir / "assets" / "noise.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    big = dataclasses.replace(export_v1, path=export_dir)
    progress = RecordingProgress()
    adapter = make_adapter(progress=progress)
    calls = count_calls(adapter.clients.s3())
    adapter.deploy(spec(big, "1"), big)
    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] >= 2
    label, done, total = progress.transfers[-1]
    assert label.startswith(f"s3://{BUCKET}/") and done == total > 10 * 1024 * 1024


def test_missing_bucket_is_an_error_unless_create_bucket(make_adapter, export_v1) -> None:
    adapter = make_adapter(create_bucket=False)
    with pytest.raises(ConfigError, match="does not exist") as caught:
        adapter.deploy(spec(export_v1, "1"), export_v1)
    assert "create_bucket" in caught.value.hint
    assert adapter.clients.sagemaker().list_models()["Models"] == []
    make_adapter(create_bucket=True).deploy(spec(export_v1, "1"), export_v1)
    assert len(bucket_keys(adapter)) == 1


def test_ctrl_c_during_upload_then_rerun_resumes(make_adapter, export_v1) -> None:
    adapter = make_adapter(progress=RecordingProgress(interrupt_on="transfer"))
    with pytest.raises(Interrupted) as caught:
        adapter.deploy(spec(export_v1, "1"), export_v1)
    assert "idempotent" in caught.value.hint and caught.value.exit_code == 130
    assert adapter.clients.sagemaker().list_models()["Models"] == []
    record = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert record.is_default and predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


# --------------------------------------------------------------------------- resources


def test_model_config_and_endpoint_for_real_time(make_adapter, export_v1) -> None:
    adapter = make_adapter()
    record = adapter.deploy(spec(export_v1, "1"), export_v1)
    sm = adapter.clients.sagemaker()
    model = sm.describe_model(ModelName=f"{MODEL}-v1")
    assert model["PrimaryContainer"]["Image"] == RUNTIME_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == record.artifact_uri
    assert model["ExecutionRoleArn"] == ROLE
    [variant] = sm.describe_endpoint_config(EndpointConfigName=f"{MODEL}-v1")["ProductionVariants"]
    assert variant["VariantName"] == "v1" and variant["ModelName"] == f"{MODEL}-v1"
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    assert "ServerlessConfig" not in variant
    endpoint = sm.describe_endpoint(EndpointName=MODEL)
    assert endpoint["EndpointConfigName"] == f"{MODEL}-v1"
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint_history(adapter) == "1"


def test_serverless_endpoint_config_and_payload_limit(make_adapter, export_v1) -> None:
    serverless = ServerlessSettings(memory_mb=3072, max_concurrency=10, provisioned_concurrency=2)
    adapter = make_adapter(serverless=serverless, max_instances=4)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    sm = adapter.clients.sagemaker()
    [variant] = sm.describe_endpoint_config(EndpointConfigName=f"{MODEL}-v1")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 10,
        "ProvisionedConcurrency": 2,
    }
    assert "InstanceType" not in variant
    aas = adapter.clients.autoscaling()
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    five_mb = {"instances": [["x" * (5 * 1024 * 1024)]]}
    with pytest.raises(ConfigError, match="4194304"):
        adapter.predict(MODEL, five_mb)
    assert adapter.instance_memory_mb() == 3072


def test_default_image_follows_the_tf_version(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter(image=None)
    record = adapter.deploy(spec(export_v1, "1"), export_v1)  # written by TF 1.14
    expected = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:1.14.0-cpu"
    assert record.resources["image"] == expected
    image = adapter.clients.sagemaker().describe_model(ModelName=f"{MODEL}-v1")
    assert image["PrimaryContainer"]["Image"] == expected
    with pytest.raises(PreflightError) as caught:  # TF 2.21: no AWS image serves it
        adapter.deploy(spec(export_v2, "2"), export_v2)
    [finding] = [f for f in caught.value.findings if f.id == "aws.image"]
    assert finding.severity == "error" and "image:" in finding.fix
    assert "cloudserve-runtime" in finding.fix
    assert len(bucket_keys(adapter)) == 1


def test_model_registry_group_records_each_version_once(make_adapter, export_v1, export_v2):
    adapter = make_adapter(model_registry_group="contract-models")
    r1 = adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    again = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert not again.changed and again.resources["model_package"] == r1.resources["model_package"]
    sm = adapter.clients.sagemaker()
    packages = sm.list_model_packages(ModelPackageGroupName="contract-models")
    assert len(packages["ModelPackageSummaryList"]) == 2
    described = sm.describe_model_package(ModelPackageName=r1.resources["model_package"])
    [container] = described["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == r1.artifact_uri


# --------------------------------------------------------------------------- default version


def test_set_default_updates_the_endpoint_and_history_survives_runs(
    make_adapter, export_v1, export_v2
) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    calls = count_calls(adapter.clients.sagemaker())
    adapter.set_default(MODEL, "2")
    assert calls["UpdateEndpoint"] == 1
    sm = adapter.clients.sagemaker()
    assert sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"] == f"{MODEL}-v2"
    assert endpoint_history(adapter) == "1/2"
    again = adapter.set_default(MODEL, "2")
    assert not again.changed and calls["UpdateEndpoint"] == 1
    fresh = make_adapter()  # a new CLI run: state comes from AWS only
    assert fresh.rollback(MODEL).version == "1"
    assert endpoint_history(fresh) == "1"
    assert predictions(fresh.predict(MODEL, PAYLOAD)) == [[2.5]]


@pytest.mark.parametrize("mode", ["rollback", "error"])
def test_failed_update_leaves_the_old_default_serving(
    make_adapter, moto, export_v1, export_v2, mode
) -> None:
    adapter = make_adapter(max_instances=3)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    moto.fail_next_update(mode)
    with pytest.raises(ProviderError, match="v1 is still serving"):
        adapter.set_default(MODEL, "2")
    assert [v.version for v in adapter.list_versions(MODEL) if v.is_default] == ["1"]
    assert endpoint_history(adapter) == "1"
    targets = adapter.clients.autoscaling().describe_scalable_targets(ServiceNamespace="sagemaker")
    assert [t["ResourceId"] for t in targets["ScalableTargets"]] == [f"endpoint/{MODEL}/variant/v1"]
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_update_that_leaves_the_endpoint_failed_says_so_then_recovers(
    make_adapter, moto, export_v1, export_v2
) -> None:
    """Defect 6: a Failed endpoint serves nothing and accepts only DeleteEndpoint."""
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    moto.fail_next_update("failed")
    with pytest.raises(ProviderError, match="is Failed .* serves nothing") as caught:
        adapter.set_default(MODEL, "2")
    assert "still serving" not in caught.value.message
    assert "run the command again" in caught.value.hint
    record = adapter.set_default(MODEL, "2")  # delete + create: nothing served anyway
    assert record.is_default and record.state == "AVAILABLE"
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[3.0]]
    assert endpoint_history(adapter) == "1/2"
    assert adapter.rollback(MODEL).version == "1"


def test_failed_endpoint_creation_is_replaced_by_the_next_deploy(
    make_adapter, moto, export_v1
) -> None:
    adapter = make_adapter()
    moto.fail_next_create()
    with pytest.raises(ProviderError, match="is Failed"):
        adapter.deploy(spec(export_v1, "1"), export_v1)
    [record] = adapter.list_versions(MODEL)
    assert record.state == "FAILED"
    calls = count_calls(adapter.clients.sagemaker())
    again = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert again.is_default and again.state == "AVAILABLE" and "was Failed" in again.message
    assert calls["DeleteEndpoint"] == 1 and calls["CreateEndpoint"] == 1
    assert calls["UpdateEndpoint"] == 0  # SageMaker would refuse it on a Failed endpoint
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_delete_removes_a_failed_endpoint(make_adapter, moto, export_v1, export_v2) -> None:
    adapter = make_adapter()
    moto.fail_next_create()
    with pytest.raises(ProviderError):
        adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)  # replaces it, serving v1 again
    assert adapter.list_versions(MODEL)[1].state == "AVAILABLE"
    moto.fail_next_update("failed")
    with pytest.raises(ProviderError, match="is Failed"):
        adapter.set_default(MODEL, "2")
    with pytest.raises(ConfigError, match="Failed endpoint .* serves nothing"):
        adapter.delete(MODEL, "1")
    assert f"sagemaker endpoint {MODEL}" in adapter.delete(MODEL)
    assert adapter.clients.sagemaker().list_endpoints()["Endpoints"] == []


def test_failed_switch_during_deploy_then_rerun(make_adapter, moto, export_v1, export_v2):
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    moto.fail_next_update("rollback")
    with pytest.raises(ProviderError, match="v1 is still serving"):
        adapter.deploy(spec(export_v2, "2", set_default=True), export_v2)
    record = adapter.deploy(spec(export_v2, "2", set_default=True), export_v2)
    assert record.is_default and record.changed is not False
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[3.0]]


def test_ctrl_c_while_waiting_for_the_update_then_rerun(make_adapter, export_v1, export_v2):
    adapter = make_adapter(progress=RecordingProgress(interrupt_on="updating endpoint"))
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    with pytest.raises(Interrupted) as caught:
        adapter.set_default(MODEL, "2")
    assert "re-run" in caught.value.hint
    record = adapter.set_default(MODEL, "2")
    assert record.is_default and endpoint_history(adapter) == "1/2"
    assert adapter.rollback(MODEL).version == "1"


def test_autoscaling_follows_the_default_variant(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter(min_instances=1, max_instances=4, target_invocations_per_instance=120)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    aas = adapter.clients.autoscaling()
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{MODEL}/variant/v1"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and tracking["TargetValue"] == 120.0
    metric = tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
    assert metric == "SageMakerVariantInvocationsPerInstance"
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2)
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [t["ResourceId"] for t in targets] == [f"endpoint/{MODEL}/variant/v2"]
    adapter.delete(MODEL)
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


# --------------------------------------------------------------------------- predict


def test_payload_over_6mb_is_refused_before_sending(make_adapter, export_v1) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    calls = count_calls(adapter.clients.runtime())
    with pytest.raises(ConfigError, match="6291456"):
        adapter.predict(MODEL, {"instances": [["x" * (6 * 1024 * 1024)]]})
    assert calls == Counter()


def test_predict_names_only_the_default_version(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="1")) == [[2.5]]
    with pytest.raises(NotSupported, match="no variant for v2"):
        adapter.predict(MODEL, PAYLOAD, version="2")


def test_plain_moto_answers_from_its_result_queue(make_adapter, moto) -> None:
    """moto's own behaviour, for an endpoint the harness does not route: the static queue."""
    moto.queue_results([{"Body": '{"predictions": [[42.0]]}', "ContentType": "application/json"}])
    adapter = make_adapter()
    assert adapter.predict("no-such-endpoint", PAYLOAD) == {"predictions": [[42.0]]}
    with pytest.raises(ProviderError, match="non-JSON"):  # queue empty: moto's "body"
        adapter.predict("no-such-endpoint", {"instances": [[2.0]]})


# --------------------------------------------------------------------------- list and delete


def test_list_versions_reports_state_and_artifacts(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter()
    with pytest.raises(NotFound):
        adapter.list_versions(MODEL)
    r1 = adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    v2, v1 = adapter.list_versions(MODEL)
    assert (v1.is_default, v1.traffic, v1.state) == (True, 100, "AVAILABLE")
    assert (v2.is_default, v2.traffic, v2.state) == (False, 0, "AVAILABLE")
    assert v1.artifact_uri == r1.artifact_uri and v1.created


def test_delete_version_and_model(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2", set_default=True), export_v2)
    removed = adapter.delete(MODEL, "1")
    assert f"sagemaker model {MODEL}-v1" in removed
    assert any(r.startswith(f"s3://{BUCKET}/cloudserve/{MODEL}/v1/") for r in removed)
    assert endpoint_history(adapter) == "2"
    with pytest.raises(NotFound):
        adapter.rollback(MODEL)
    removed = adapter.delete(MODEL)
    assert f"sagemaker endpoint {MODEL}" in removed
    assert f"sagemaker endpoint-config {MODEL}-v2" in removed
    sm = adapter.clients.sagemaker()
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == [] and bucket_keys(adapter) == []
    assert adapter.delete(MODEL) == [] and adapter.delete(MODEL, "2") == []


def test_deleting_the_only_version_removes_the_endpoint(make_adapter, export_v1) -> None:
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    assert f"sagemaker endpoint {MODEL}" in adapter.delete(MODEL, "1")
    with pytest.raises(NotFound):
        adapter.list_versions(MODEL)


# --------------------------------------------------------------------------- plan


def test_plan_lists_upload_create_then_skip(make_adapter, export_v1, export_v2) -> None:
    adapter = make_adapter(max_instances=2)
    first = {(a.verb, a.resource) for a in adapter.plan(spec(export_v1, "1"), export_v1).actions}
    assert first == {
        ("create", "s3-bucket"),
        ("upload", "s3-object"),
        ("create", "sagemaker-model"),
        ("create", "sagemaker-endpoint-config"),
        ("create", "sagemaker-endpoint"),
        ("create", "autoscaling-target"),
    }
    adapter.deploy(spec(export_v1, "1"), export_v1)
    plan = adapter.plan(spec(export_v1, "1"), export_v1)
    assert not plan.changes_anything
    switch = adapter.plan(spec(export_v2, "2", set_default=True), export_v2)
    assert ("route", "sagemaker-endpoint") in {(a.verb, a.resource) for a in switch.actions}
    with pytest.raises(ConfigError, match="different content"):
        adapter.plan(spec(export_v2, "1"), export_v2)


# --------------------------------------------------------------------------- preflight


def _ids(adapter: SageMakerAdapter, s: DeploySpec, export: ExportInfo) -> dict[str, str]:
    return {f.id: f.severity for f in adapter.preflight(s, export)}


@pytest.mark.parametrize(
    ("overrides", "spec_kw", "rule"),
    [
        ({}, {"model": "m" * 61}, "aws.name"),  # m...m-v1: 64 chars
        ({}, {"model": "m" * 52}, "aws.name"),  # m...m-e<10 hex>: 64 chars
        ({}, {"model": "bad_name"}, "aws.name"),
        ({"endpoint_name": "-bad"}, {}, "aws.name"),
        ({}, {"version": "0"}, "aws.version"),
        ({}, {"version": "v1"}, "aws.version"),
        ({"bucket": None}, {}, "aws.bucket"),
        ({"role_arn": None}, {}, "aws.role_arn"),
        ({"role_arn": "arn:aws:iam::123:user/me"}, {}, "aws.role_arn"),
        ({"instance_type": "ml.m5.huge"}, {}, "aws.instance_type"),
        ({"instance_count": 0}, {}, "aws.instance_count"),
        ({"min_instances": 3, "max_instances": 2}, {}, "aws.scaling"),
        ({"max_instances": 2, "target_invocations_per_instance": 0}, {}, "aws.scaling"),
        ({"serverless": ServerlessSettings(memory_mb=1500)}, {}, "aws.serverless.memory"),
        (
            {"serverless": ServerlessSettings(max_concurrency=201)},
            {},
            "aws.serverless.max_concurrency",
        ),
        (
            {"serverless": ServerlessSettings(max_concurrency=0)},
            {},
            "aws.serverless.max_concurrency",
        ),
        (
            {"serverless": ServerlessSettings(max_concurrency=5, provisioned_concurrency=6)},
            {},
            "aws.serverless.provisioned",
        ),
        (
            {"serverless": ServerlessSettings(), "instance_type": "ml.g4dn.xlarge"},
            {},
            "aws.serverless.gpu",
        ),
        ({"serverless": ServerlessSettings()}, {"traffic": {"1": 50, "2": 50}}, "aws.variants"),
        ({}, {"traffic": {str(v): 9 for v in range(1, 12)}}, "aws.variants"),
        ({}, {"traffic": {"1": 90, "2": 20}}, "aws.variants"),
        ({"tags": {"team": "a,b"}}, {}, "aws.tags"),  # defect 1: TagValue has no ","
        ({}, {"tags": {"owner": "x" * 257}}, "aws.tags"),
        ({}, {"tags": {"aws:reserved": "1"}}, "aws.tags"),
        ({"tags": {f"k{i}": "v" for i in range(47)}}, {}, "aws.tags"),
        ({"instance_type": "ml.inf2.xlarge", "image": None}, {}, "aws.image"),  # defect 3
        ({"instance_type": "ml.trn1.2xlarge", "image": None}, {}, "aws.image"),
        ({"image": "x" * 256}, {}, "aws.image"),
    ],
)
def test_preflight_rules_trip(export_v1, overrides, spec_kw, rule) -> None:
    adapter = SageMakerAdapter(config(**overrides))
    s = dataclasses.replace(spec(export_v1, "1"), **spec_kw)
    assert _ids(adapter, s, export_v1).get(rule) == "error"


def test_preflight_passes_a_good_setup_without_network(export_v1) -> None:
    adapter = SageMakerAdapter(config(), clients=object())
    findings = adapter.preflight(spec(export_v1, "1"), export_v1)
    assert [f for f in findings if f.severity != "info"] == []
    payload = next(f for f in findings if f.id == "aws.payload")
    assert "6291456" in payload.message and payload.source.startswith("https://")


def test_preflight_instance_types_come_from_botocore(export_v1) -> None:
    """moto rejects ml.g5/ml.m6i; botocore's enum (what AWS accepts) does not."""
    for instance_type in ("ml.g5.xlarge", "ml.m6i.large", "ml.inf2.xlarge"):
        adapter = SageMakerAdapter(config(instance_type=instance_type))
        assert "aws.instance_type" not in _ids(adapter, spec(export_v1, "1"), export_v1)


def test_preflight_image_rules(export_v1, export_v2) -> None:
    adapter = SageMakerAdapter(config(image=None))
    assert _ids(adapter, spec(export_v1, "1"), export_v1)["aws.image"] == "info"
    assert _ids(adapter, spec(export_v2, "2"), export_v2)["aws.image"] == "error"
    tf215 = dataclasses.replace(export_v1, tf_version="2.15.1")
    assert _ids(adapter, spec(tf215, "1"), tf215)["aws.image"] == "warning"
    unknown = dataclasses.replace(export_v1, tf_version=None)
    assert _ids(adapter, spec(unknown, "1"), unknown)["aws.image"] == "warning"


def test_preflight_serverless_disk_and_code_dir(export_v1, tmp_path) -> None:
    huge = dataclasses.replace(export_v1, total_bytes=6 * 10**9)
    serverless = SageMakerAdapter(config(serverless=ServerlessSettings()))
    assert _ids(serverless, spec(huge, "1"), huge)["aws.serverless.disk"] == "error"
    with_code = SageMakerAdapter(config(code_dir=tmp_path))
    assert _ids(with_code, spec(export_v1, "1"), export_v1)["aws.code_dir"] == "warning"


def test_instance_memory_table() -> None:
    assert SageMakerAdapter(config(instance_type="ml.m5.large")).instance_memory_mb() == 8192
    assert SageMakerAdapter(config(instance_type="ml.m5.24xlarge")).instance_memory_mb() == 393216
    assert SageMakerAdapter(config(instance_type="ml.x9.big")).instance_memory_mb() is None


# --------------------------------------------------------------------------- units


def test_tarball_is_deterministic_and_carries_code(export_v1, tmp_path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text("def handler(data, context):\n    return data\n")
    a = packaging.build(export_v1.path, "7", tmp_path / "a.tar.gz", code_dir=code)
    b = packaging.build(export_v1.path, "7", tmp_path / "b.tar.gz", code_dir=code)
    assert a.sha256 == b.sha256 and a.size == b.size
    with tarfile.open(a.path) as tar:
        names = tar.getnames()
    assert "7/saved_model.pb" in names and "code/inference.py" in names
    with pytest.raises(ConfigError, match="integer > 0"):
        packaging.build(export_v1.path, "0", tmp_path / "c.tar.gz")


def test_image_uris_per_region_and_processor() -> None:
    assert images.uri("af-south-1", "2.19.0", "cpu") == (
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/tensorflow-inference:2.19.0-cpu"
    )
    assert images.uri("cn-north-1", "2.19.0", "gpu").endswith(
        ".dkr.ecr.cn-north-1.amazonaws.com.cn/tensorflow-inference:2.19.0-gpu"
    )
    assert images.processor("ml.g4dn.xlarge") == "gpu" and images.processor("ml.c5.large") == "cpu"
    assert images.resolve((2, 17), "us-east-1", "cpu").tf_version == "2.18.0"
    assert images.resolve((2, 20), "us-east-1", "cpu") is None


def test_import_without_boto3_then_use_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from cloudserve_adapters.aws.adapter import SageMakerAdapter\n"
        "from cloudserve_adapters.aws.config import AwsConfig\n"
        "from cloudserve.errors import MissingDependency\n"
        "adapter = SageMakerAdapter(AwsConfig(bucket='b'))\n"
        "try:\n"
        "    adapter.list_versions('m')\n"
        "except MissingDependency as e:\n"
        "    print(e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pip install 'cloudserve[aws]'"


# --------------------------------------------------------------------------- strict stand-in


def test_strict_clients_refuse_what_aws_refuses(moto) -> None:
    """Pattern (Java \\p classes, whole value), enum, max length/count: checked before moto."""
    sm = moto.clients().sagemaker()
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"
    with pytest.raises(StrictViolation, match="TagValue's pattern"):
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "history", "Value": "1,2"}])
    with pytest.raises(StrictViolation, match="not one of"):
        sm.list_endpoints(SortBy="Size")
    with pytest.raises(StrictViolation, match="above the maximum 63"):
        sm.describe_endpoint(EndpointName="e" * 64)
    variant = {"VariantName": "v1", "ModelName": "m", "InstanceType": "ml.m5.large"}
    with pytest.raises(StrictViolation, match="11 entries, above the maximum 10"):
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant] * 11)
    assert {v.split(".")[0] for v in moto.violations} == {
        "AddTags",
        "ListEndpoints",
        "DescribeEndpoint",
        "CreateEndpointConfig",
    }
    moto.violations.clear()  # this test made them on purpose
    shape = validation.service_model("sagemaker").shape_for("TagValue")
    assert validation.violations(shape, "naïve café 1/2 @x+y=z", "v") == []
    assert validation.violations(shape, state.encode_history(["1", "2", "10"]), "v") == []
    resource_id = validation.service_model("application-autoscaling").shape_for("ResourceId")
    assert validation.violations(resource_id, "endpoint/e/variant/v1 \U0001f600", "r") == []
    assert validation.violations(resource_id, "bell\x07", "r") != []


# --------------------------------------------------------------------------- issue 8 defects


def scalable_targets(adapter: SageMakerAdapter) -> list[dict[str, Any]]:
    aas = adapter.clients.autoscaling()
    return aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]


def test_a_step_after_the_switch_fails_then_rerun_finishes(
    make_adapter, moto, export_v1, export_v2
) -> None:
    """Defect 1: traffic switched, AddTags refused: capacity stays attached, the error says
    what serves, and re-running finishes without switching again."""
    adapter = make_adapter(max_instances=3)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    moto.fail_next("add_tags")
    with pytest.raises(ProviderError, match="v2 is serving .* default history") as caught:
        adapter.set_default(MODEL, "2")
    assert "again" in caught.value.hint
    assert [t["ResourceId"] for t in scalable_targets(adapter)] == [f"endpoint/{MODEL}/variant/v2"]
    assert endpoint_history(adapter) == "1"
    calls = count_calls(adapter.clients.sagemaker())
    record = adapter.set_default(MODEL, "2")
    assert record.changed and record.is_default and calls["UpdateEndpoint"] == 0
    assert endpoint_history(adapter) == "1/2"


def test_bad_user_tags_stop_the_deploy_before_anything_is_sent(make_adapter, export_v1) -> None:
    adapter = make_adapter(tags={"cost-center": "ml,platform"})
    calls = count_calls(adapter.clients.s3())
    with pytest.raises(PreflightError) as caught:
        adapter.deploy(spec(export_v1, "1"), export_v1)
    [finding] = [f for f in caught.value.findings if f.id == "aws.tags"]
    assert "cost-center" in finding.message and calls == Counter()


def test_images_for_new_regions_graviton_and_neuron(export_v1) -> None:
    """Defect 3: accounts of newer regions, the Graviton repository, Inferentia/Trainium."""
    expected = {
        "ap-east-2": "975050140332",
        "ap-southeast-5": "550225433462",
        "ap-southeast-6": "633930458069",
        "ap-southeast-7": "590183813437",
        "mx-central-1": "637423239942",
    }
    for region, account in expected.items():
        assert images.uri(region, "2.19.0", "cpu") == (
            f"{account}.dkr.ecr.{region}.amazonaws.com/tensorflow-inference:2.19.0-cpu"
        )
    assert images.processor("ml.c7g.xlarge") == "graviton"
    assert images.processor("ml.inf2.xlarge") == images.processor("ml.trn1.2xlarge") == "neuron"
    choice = images.resolve((2, 14), "us-west-2", "graviton")
    assert choice is not None and choice.uri == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-inference-graviton:"
        "2.14.1-cpu-py310-ubuntu20.04-sagemaker"
    )
    assert images.resolve((2, 18), "us-west-2", "graviton") is None  # no Graviton 2.18 image
    graviton = SageMakerAdapter(config(image=None, instance_type="ml.c7g.xlarge"))
    tf214 = dataclasses.replace(export_v1, tf_version="2.14.1")
    assert "tensorflow-inference-graviton" in graviton._image(tf214)
    inf = SageMakerAdapter(config(image=None, instance_type="ml.inf2.xlarge"))
    [finding] = [f for f in inf.preflight(spec(export_v1, "1"), export_v1) if f.id == "aws.image"]
    assert finding.severity == "error" and "Inferentia/Trainium" in finding.message


def _foreign_endpoint(moto: Harness) -> Any:
    sm = moto.clients().sagemaker()
    sm.create_model(
        ModelName="someone-elses",
        PrimaryContainer={"Image": RUNTIME_IMAGE},
        ExecutionRoleArn=ROLE,
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "someone-elses",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
    }
    sm.create_endpoint_config(EndpointConfigName="someone-elses", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=MODEL, EndpointConfigName="someone-elses")
    return sm


def test_a_same_named_endpoint_cloudserve_did_not_create_is_refused(
    make_adapter, moto, export_v1
) -> None:
    """Defect 5: neither taken over nor deleted."""
    sm = _foreign_endpoint(moto)
    adapter = make_adapter()
    with pytest.raises(ConfigError, match="did not create") as caught:
        adapter.deploy(spec(export_v1, "1"), export_v1)
    assert "endpoint_name" in caught.value.hint and bucket_keys(adapter) == []
    with pytest.raises(ConfigError, match="did not create"):
        adapter.delete(MODEL)
    with pytest.raises(ConfigError, match="did not create"):
        adapter.plan(spec(export_v1, "1"), export_v1)
    endpoint = sm.describe_endpoint(EndpointName=MODEL)
    assert endpoint["EndpointConfigName"] == "someone-elses"
    other = make_adapter(endpoint_name="contract-model-ep").deploy(spec(export_v1, "1"), export_v1)
    assert other.is_default


def test_a_same_named_model_cloudserve_did_not_create_is_refused(
    make_adapter, moto, export_v1
) -> None:
    moto.clients().sagemaker().create_model(
        ModelName=f"{MODEL}-v1", PrimaryContainer={"Image": RUNTIME_IMAGE}, ExecutionRoleArn=ROLE
    )
    with pytest.raises(ConfigError, match="did not create"):
        make_adapter().deploy(spec(export_v1, "1"), export_v1)


def test_switch_keeps_an_autoscaled_fleet(make_adapter, export_v1, export_v2) -> None:
    """Defect 7: autoscaling grew v1 to 4 instances; the switch to v2 starts 4, not 1."""
    adapter = make_adapter(max_instances=6)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    adapter.deploy(spec(export_v2, "2"), export_v2)
    sm = adapter.clients.sagemaker()
    sm.update_endpoint_weights_and_capacities(  # what Application Auto Scaling does
        EndpointName=MODEL,
        DesiredWeightsAndCapacities=[{"VariantName": "v1", "DesiredInstanceCount": 4}],
    )
    adapter.set_default(MODEL, "2")
    endpoint = sm.describe_endpoint(EndpointName=MODEL)
    [variant] = endpoint["ProductionVariants"]
    assert variant["VariantName"] == "v2" and variant["CurrentInstanceCount"] == 4
    config_ = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config_["ProductionVariants"][0]["InitialInstanceCount"] == 4
    [target] = scalable_targets(adapter)
    assert target["ResourceId"].endswith("/variant/v2") and target["MaxCapacity"] == 6
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[3.0]]
    assert adapter.rollback(MODEL).version == "1"
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] != []
    removed = adapter.delete(MODEL)
    assert sm.list_endpoint_configs()["EndpointConfigs"] == [], removed


def test_changed_scaling_settings_apply_on_redeploy(make_adapter, export_v1) -> None:
    """Defect 7: new bounds and target are re-registered; dropping max_instances removes it."""
    make_adapter(max_instances=3).deploy(spec(export_v1, "1"), export_v1)
    adapter = make_adapter(min_instances=2, max_instances=5, target_invocations_per_instance=100)
    plan = adapter.plan(spec(export_v1, "1"), export_v1)
    assert ("update", "autoscaling-target") in {(a.verb, a.resource) for a in plan.actions}
    again = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert again.changed
    [target] = scalable_targets(adapter)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
    aas = adapter.clients.autoscaling()
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 100.0
    assert not adapter.deploy(spec(export_v1, "1"), export_v1).changed
    make_adapter().deploy(spec(export_v1, "1"), export_v1)
    assert scalable_targets(adapter) == []


def test_create_endpoint_is_retried_while_the_config_is_not_visible(
    make_adapter, moto, export_v1
) -> None:
    """Defect 8: SageMaker's reads are eventually consistent."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/contract-model-v1"
    moto.fail_next("create_endpoint", f'Could not find endpoint configuration "{arn}".')
    progress = RecordingProgress()
    adapter = make_adapter(progress=progress)
    calls = count_calls(adapter.clients.sagemaker())
    record = adapter.deploy(spec(export_v1, "1"), export_v1)
    assert record.is_default and calls["CreateEndpoint"] == 2
    assert any("not visible yet" in s for s in progress.statuses)


def test_bucket_in_another_region_is_refused_before_upload(make_adapter, moto, export_v1) -> None:
    """Defect 9: SageMaker reads model.tar.gz only from a bucket in its own region."""
    moto.clients("eu-west-1").s3().create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    adapter = make_adapter()
    calls = count_calls(adapter.clients.s3())
    with pytest.raises(ConfigError, match="is in eu-west-1, but the endpoint is in us-east-1"):
        adapter.plan(spec(export_v1, "1"), export_v1)
    with pytest.raises(ConfigError, match="eu-west-1"):
        adapter.deploy(spec(export_v1, "1"), export_v1)
    assert not {"PutObject", "CreateMultipartUpload"} & set(calls)
    assert adapter.clients.sagemaker().list_models()["Models"] == []


def test_predict_is_not_retried_after_a_read_timeout(make_adapter, moto, export_v1) -> None:
    """Defect 10: InvokeEndpoint is not idempotent; one attempt, then a clear error."""
    timeouts = AwsTimeouts(poll_initial_s=0.01, poll_max_s=0.05, read_timeout_s=0.5)
    adapter = make_adapter(timeouts=timeouts)
    adapter.deploy(spec(export_v1, "1"), export_v1)
    moto.attempts = 0
    moto.hang_next_invocation(1.5)
    with pytest.raises(ProviderError, match="read timeout"):
        adapter.predict(MODEL, PAYLOAD)
    assert moto.attempts == 1


def test_canary_split_and_target_variant(make_adapter, export_v1, export_v2) -> None:
    """Defect 11: traffic: weights variants in one config; --version reaches each."""
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    plan = adapter.plan(spec(export_v2, "2", traffic={"1": 90, "2": 10}), export_v2)
    [route] = [a for a in plan.actions if a.resource == "sagemaker-endpoint"]
    assert route.verb == "route" and "v1 90% + v2 10%" in route.detail
    record = adapter.deploy(spec(export_v2, "2", traffic={"1": 90, "2": 10}), export_v2)
    assert (record.is_default, record.traffic) == (False, 10)
    sm = adapter.clients.sagemaker()
    name = sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"]
    weights = {
        v["VariantName"]: v["InitialVariantWeight"]
        for v in sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    }
    assert weights == {"v1": 90.0, "v2": 10.0}
    v2, v1 = adapter.list_versions(MODEL)
    assert (v1.is_default, v1.traffic, v2.is_default, v2.traffic) == (True, 90, False, 10)
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="1")) == [[2.5]]
    adapter.set_default(MODEL, "2")
    assert sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"] == f"{MODEL}-v2"
    assert name not in [
        c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]
    ]
    with pytest.raises(NotSupported, match="no variant for v1"):
        adapter.predict(MODEL, PAYLOAD, version="1")


def test_a_zero_weight_variant_is_reachable_only_by_version(
    make_adapter, moto, export_v1, export_v2
) -> None:
    """Verify-before-traffic: v2 gets a variant with weight 0; --version 2 reaches it."""
    adapter = make_adapter()
    adapter.deploy(spec(export_v1, "1"), export_v1)
    record = adapter.deploy(spec(export_v2, "2", traffic={"1": 100, "2": 0}), export_v2)
    assert (record.is_default, record.traffic) == (False, 0)
    assert predictions(adapter.predict(MODEL, PAYLOAD, version="2")) == [[3.0]]
    assert all(predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]] for _ in range(5))
    assert [v.version for v in adapter.list_versions(MODEL) if v.is_default] == ["1"]


def test_plan_then_deploy_builds_the_tarball_once(
    make_adapter, export_v1, tmp_path, monkeypatch
) -> None:
    """Defect 12: plan and deploy share one build; a changed export is built again."""
    export_dir = tmp_path / "export"
    shutil.copytree(export_v1.path, export_dir)
    export = dataclasses.replace(export_v1, path=export_dir)
    builds: list[str] = []
    real_build = packaging.build

    def counting_build(export_dir, version, dest, **kwargs):  # a spy: the real build runs
        builds.append(version)
        return real_build(export_dir, version, dest, **kwargs)

    monkeypatch.setattr(packaging, "build", counting_build)
    progress = RecordingProgress()
    adapter = make_adapter(progress=progress)
    adapter.plan(spec(export, "1"), export)
    adapter.deploy(spec(export, "1"), export)
    assert builds == ["1"]
    assert sum(s.startswith("packaging") for s in progress.statuses) == 1
    (export_dir / "assets" / "foo.txt").chmod(0o644)
    (export_dir / "assets" / "foo.txt").write_text("changed")
    adapter.plan(spec(export, "2"), export)
    adapter.deploy(spec(export, "2"), export)
    assert builds == ["1", "2"]


def test_version_logs_come_from_cloudwatch(make_adapter, moto) -> None:
    logs = moto.clients().logs()
    group = f"/aws/sagemaker/Endpoints/{MODEL}"
    logs.create_log_group(logGroupName=group)
    now_ms = int(time.time() * 1000)  # CloudWatch refuses events older than 14 days
    for stream, lines in {"v1/i-0a": ["v1 a", "v1 b", "v1 c"], "v2/i-0b": ["v2 a"]}.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now_ms + i, "message": m} for i, m in enumerate(lines)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    adapter = make_adapter()
    assert adapter.version_logs(MODEL, "1", lines=2) == ["v1 b", "v1 c"]
    assert adapter.version_logs(MODEL, "2") == ["v2 a"]
    assert adapter.version_logs("no-such-model", "1") == []
