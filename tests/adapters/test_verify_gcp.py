"""Verify before traffic on Vertex AI (the discovery-validated Vertex fake and the GCS
emulator, through the GCP suite's fixtures): a new version is asked through its preview
endpoint while the previous default keeps all traffic; one that fails never takes any, and the
error carries its Cloud Logging lines."""

from __future__ import annotations

import pytest

from cloudserve import deploy as workflow
from cloudserve.errors import ProviderError
from cloudserve.records import ExportInfo
from tests.adapters import test_gcp
from tests.adapters.contract import PAYLOAD, predictions
from tests.adapters.test_gcp import MODEL, spec
from tests.cli.write_exports import BROKEN_MESSAGE

pytestmark = pytest.mark.slow

# the GCP suite's emulator, fake and adapter factory (its fixtures, reused as they are)
storage_emulator = test_gcp.storage_emulator
storage = test_gcp.storage
runtime_image = test_gcp.runtime_image
fake = test_gcp.fake
make_adapter = test_gcp.make_adapter
adapter = test_gcp.adapter


def run_deploy(adapter, export: ExportInfo, version: str, **kw) -> workflow.Outcome:
    prepared = workflow.Prepared(adapter=adapter, spec=spec(export, version, **kw), export=export)
    return workflow.deploy(prepared, timeout=120)


def test_new_default_is_asked_on_its_preview_endpoint_first(adapter, fake, export_v1, export_v2):
    run_deploy(adapter, export_v1, "1")
    record = run_deploy(adapter, export_v2, "2", set_default=True).record
    assert record.is_default and record.message.startswith("verified: answered a smoke request")
    asked = [body for method, body in fake.calls if method == "predict"]
    assert asked and all(set(body) == {"instances"} for body in asked)
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[3.0]]


def test_failing_version_never_takes_traffic(adapter, fake, export_v1, broken_export):
    first = run_deploy(adapter, export_v1, "1").record
    with pytest.raises(ProviderError) as caught:
        run_deploy(adapter, broken_export, "3", set_default=True)
    error = caught.value
    assert "version 3 of 'contract-model' failed its smoke request" in error.message
    assert "takes no traffic; version 1 keeps serving" in error.message
    assert error.record.state == "FAILED" and not error.record.is_default
    assert workflow.current_default(adapter, MODEL) == "1"
    endpoint = fake.endpoints[MODEL]
    assert endpoint["trafficSplit"] == {first.resources["deployed_model_id"]: 100}
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]


def test_the_error_carries_the_versions_log_lines(adapter, fake, export_v1, broken_export):
    run_deploy(adapter, export_v1, "1")
    with pytest.raises(ProviderError):
        run_deploy(adapter, broken_export, "3")
    (three,) = [r for r in adapter.list_versions(MODEL) if r.version == "3"]
    fake.add_log(
        MODEL,
        three.resources["deployed_model_id"],
        f"InvalidArgumentError: {BROKEN_MESSAGE}",
        timestamp="2026-12-07T10:00:00Z",
    )
    with pytest.raises(ProviderError) as caught:
        run_deploy(adapter, broken_export, "3")
    assert caught.value.details == [f"gcp log: InvalidArgumentError: {BROKEN_MESSAGE}"]


def test_canary_split_only_after_the_version_answered(adapter, fake, export_v1, export_v2):
    run_deploy(adapter, export_v1, "1")
    canary = run_deploy(adapter, export_v2, "2", traffic={"1": 90, "2": 10}).record
    assert canary.traffic == 10 and canary.message.startswith("verified")
    calls = [(method, body) for method, body in fake.calls if method != "get"]
    deploys = [body for method, body in calls if method == "deployModel"]
    assert "trafficSplit" not in deploys[1]  # version 2 went onto the endpoint with no share
    smoke = max(i for i, (method, _) in enumerate(calls) if method == "predict")
    split = next(i for i, (m, body) in enumerate(calls) if m == "patch" and "trafficSplit" in body)
    assert smoke < split  # asked (on its preview endpoint) before the split gave it 10%
    assert {v.version: v.traffic for v in adapter.list_versions(MODEL)} == {"2": 10, "1": 90}


def test_failing_canary_gets_no_share(adapter, fake, export_v1, broken_export):
    first = run_deploy(adapter, export_v1, "1").record
    with pytest.raises(ProviderError):
        run_deploy(adapter, broken_export, "3", traffic={"1": 90, "3": 10})
    endpoint = fake.endpoints[MODEL]
    assert endpoint["trafficSplit"] == {first.resources["deployed_model_id"]: 100}
