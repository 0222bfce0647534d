"""Verify before traffic on Azure ML (the ARM fake and Azurite, through the Azure suite's
fixtures): a new deployment is asked through the ``azureml-model-deployment`` header while the
previous default keeps all traffic; one that fails never takes any."""

from __future__ import annotations

import pytest

from cloudserve import deploy as workflow
from cloudserve.errors import ProviderError
from cloudserve.records import ExportInfo
from tests.adapters.contract import PAYLOAD, predictions
from tests.cli.write_exports import BROKEN_MESSAGE

test_azure = pytest.importorskip(
    "tests.adapters.test_azure", reason="run: bash scripts/install-test-deps.sh"
)
MODEL, spec = test_azure.MODEL, test_azure.spec

pytestmark = pytest.mark.slow

# the Azure suite's Azurite, fake and adapter factory (its fixtures, reused as they are)
azurite = test_azure.azurite
container = test_azure.container
fake = test_azure.fake
pushed_runtime = test_azure.pushed_runtime
make_adapter = test_azure.make_adapter
adapter = test_azure.adapter


def run_deploy(adapter, export: ExportInfo, version: str, **kw) -> workflow.Outcome:
    prepared = workflow.Prepared(adapter=adapter, spec=spec(export, version, **kw), export=export)
    return workflow.deploy(prepared, timeout=120)


def test_good_version_is_verified_before_it_takes_traffic(adapter, export_v1, export_v2):
    run_deploy(adapter, export_v1, "1")
    record = run_deploy(adapter, export_v2, "2", set_default=True).record
    assert record.is_default and record.message.startswith("verified: answered a smoke request")
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[3.0]]


def test_failing_version_never_takes_traffic(adapter, export_v1, broken_export):
    run_deploy(adapter, export_v1, "1")
    with pytest.raises(ProviderError) as caught:
        run_deploy(adapter, broken_export, "3", set_default=True)
    error = caught.value
    assert "takes no traffic; version 1 keeps serving" in error.message
    assert error.record.state == "FAILED" and not error.record.is_default
    assert error.details and all(line.startswith("azure log: ") for line in error.details)
    assert workflow.current_default(adapter, MODEL) == "1"
    assert predictions(adapter.predict(MODEL, PAYLOAD)) == [[2.5]]
    assert BROKEN_MESSAGE in error.message  # the model's own error, through the endpoint
