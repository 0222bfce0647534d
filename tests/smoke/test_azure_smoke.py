"""Real Azure ML smoke test: opt-in with ``pytest --azure`` (needs credentials; costs money).

Set ``CLOUDSERVE_AZURE_SUBSCRIPTION``, ``CLOUDSERVE_AZURE_RESOURCE_GROUP``,
``CLOUDSERVE_AZURE_WORKSPACE`` and ``CLOUDSERVE_AZURE_ACR`` (the registry the runtime image was
pushed to with ``cloudserve image push --target azure``); credentials come from
``DefaultAzureCredential``. The test deploys TF Serving's half_plus_two under a unique model
name, predicts (also by version), reads the container log, and deletes everything.
"""

from __future__ import annotations

import os
import uuid

import pytest

from cloudserve.records import DeploySpec

pytestmark = pytest.mark.azure

SETTINGS = {
    "subscription_id": "CLOUDSERVE_AZURE_SUBSCRIPTION",
    "resource_group": "CLOUDSERVE_AZURE_RESOURCE_GROUP",
    "workspace": "CLOUDSERVE_AZURE_WORKSPACE",
    "acr": "CLOUDSERVE_AZURE_ACR",
}


@pytest.fixture
def live_adapter():
    values = {key: os.environ.get(env) for key, env in SETTINGS.items()}
    if not all(values.values()):
        pytest.skip("set " + ", ".join(SETTINGS.values()))
    from cloudserve_adapters.azure.adapter import AzureMLAdapter
    from cloudserve_adapters.azure.config import AzureConfig

    config = AzureConfig(
        **values,
        instance_type=os.environ.get("CLOUDSERVE_AZURE_INSTANCE_TYPE", "Standard_DS3_v2"),
        prefix="cloudserve-smoke",
    )
    return AzureMLAdapter(config)


def test_deploy_predict_delete(live_adapter, export_v1) -> None:
    model = f"smoke-{uuid.uuid4().hex[:8]}"
    spec = DeploySpec(model=model, export=export_v1.path, version="1", target="azure")
    try:
        record = live_adapter.deploy(spec, export_v1, timeout=3600)
        assert record.is_default and record.traffic == 100
        assert live_adapter.predict(model, {"instances": [[1.0]]})["predictions"] == [[2.5]]
        by_version = live_adapter.predict(model, {"instances": [[1.0]]}, version="1")
        assert by_version["predictions"] == [[2.5]]
        assert live_adapter.version_logs(model, "1", lines=10)
    finally:
        live_adapter.delete(model)
    assert live_adapter.delete(model) == []
