"""Real-AWS smoke test of the aws target: opt-in with ``pytest --aws`` (costs money).

Needs credentials for an account with SageMaker, plus:

* ``CLOUDSERVE_AWS_BUCKET``: an existing S3 bucket in the region;
* ``CLOUDSERVE_AWS_ROLE_ARN``: a SageMaker execution role that can read that bucket;
* optionally ``CLOUDSERVE_AWS_REGION`` (default us-east-1).

It deploys TF Serving's half_plus_two on one ml.m5.large with the AWS TF Serving image,
predicts, and deletes everything it created, even when an assertion fails.
"""

from __future__ import annotations

import os
import uuid

import pytest

from cloudserve.records import DeploySpec, ExportInfo

pytestmark = pytest.mark.aws


def test_deploy_predict_delete_on_sagemaker(export_v1: ExportInfo, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        real = os.environ.get(f"CLOUDSERVE_REAL_{name}")
        if real:
            monkeypatch.setenv(name, real)
        else:
            monkeypatch.delenv(name, raising=False)  # the default chain (profile, role) instead
    bucket = os.environ.get("CLOUDSERVE_AWS_BUCKET")
    role = os.environ.get("CLOUDSERVE_AWS_ROLE_ARN")
    if not (bucket and role):
        pytest.skip("set CLOUDSERVE_AWS_BUCKET and CLOUDSERVE_AWS_ROLE_ARN")
    from cloudserve_adapters.aws.adapter import SageMakerAdapter
    from cloudserve_adapters.aws.config import AwsConfig

    region = os.environ.get("CLOUDSERVE_AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    adapter = SageMakerAdapter(
        AwsConfig(region=region, bucket=bucket, role_arn=role, prefix="cloudserve-smoke")
    )
    model = f"cloudserve-smoke-{uuid.uuid4().hex[:8]}"
    spec = DeploySpec(model=model, export=export_v1.path, version="1", target="aws")
    try:
        record = adapter.deploy(spec, export_v1, timeout=1800)
        assert record.is_default and record.state == "AVAILABLE"
        assert adapter.predict(model, {"instances": [[1.0]]}) == {"predictions": [[2.5]]}
        assert not adapter.deploy(spec, export_v1, timeout=600).changed
    finally:
        adapter.delete(model)
