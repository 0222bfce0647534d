"""Real Vertex AI smoke test: opt-in with ``pytest --gcp`` (needs credentials; costs money).

Set ``CLOUDSERVE_GCP_PROJECT`` and ``CLOUDSERVE_GCP_BUCKET`` (and optionally
``CLOUDSERVE_GCP_REGION``); credentials come from Application Default Credentials. The test
deploys TF Serving's half_plus_two under a unique model name, predicts, and deletes everything.
"""

from __future__ import annotations

import os
import uuid

import pytest

from cloudserve.records import DeploySpec
from cloudserve_adapters.gcp.adapter import VertexAdapter
from cloudserve_adapters.gcp.config import GcpConfig

pytestmark = pytest.mark.gcp


@pytest.fixture
def live_adapter() -> VertexAdapter:
    project = os.environ.get("CLOUDSERVE_GCP_PROJECT")
    bucket = os.environ.get("CLOUDSERVE_GCP_BUCKET")
    if not (project and bucket):
        pytest.skip("set CLOUDSERVE_GCP_PROJECT and CLOUDSERVE_GCP_BUCKET")
    config = GcpConfig(
        project=project,
        bucket=bucket,
        region=os.environ.get("CLOUDSERVE_GCP_REGION", "us-central1"),
        prefix="cloudserve-smoke",
    )
    return VertexAdapter(config)


def test_deploy_predict_delete(live_adapter: VertexAdapter, export_v1) -> None:
    model = f"smoke-{uuid.uuid4().hex[:8]}"
    spec = DeploySpec(model=model, export=export_v1.path, version="1", target="gcp")
    try:
        record = live_adapter.deploy(spec, export_v1, timeout=3600)
        assert record.is_default and record.traffic == 100
        response = live_adapter.predict(model, {"instances": [[1.0]]})
        assert response["predictions"] == [[2.5]]
    finally:
        live_adapter.delete(model)
    assert live_adapter.delete(model) == []
