"""Verify before traffic on the docker target (a real engine running the built runtime image):
a new version is asked by number while the previous default keeps every unnamed request; one
that fails its smoke request never becomes the default, and the error carries ``docker logs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudserve import deploy as workflow
from cloudserve.errors import ProviderError
from cloudserve.records import DeploySpec, ExportInfo
from tests.adapters.contract import PAYLOAD, predictions
from tests.adapters.test_docker import docker_adapter  # noqa: F401 - the suite's fixture
from tests.cli.write_exports import BROKEN_MESSAGE

pytestmark = pytest.mark.slow

MODEL = "verify-model"


def run_deploy(adapter, export: ExportInfo, version: str, **kw) -> workflow.Outcome:
    spec = DeploySpec(model=MODEL, export=Path(export.path), version=version, target="docker", **kw)
    return workflow.deploy(
        workflow.Prepared(adapter=adapter, spec=spec, export=export), timeout=180
    )


def test_good_version_is_verified_before_it_takes_traffic(docker_adapter, export_v1, export_v2):  # noqa: F811
    run_deploy(docker_adapter, export_v1, "1")
    record = run_deploy(docker_adapter, export_v2, "2", set_default=True).record
    assert record.is_default and record.message.startswith("verified: answered a smoke request")
    assert predictions(docker_adapter.predict(MODEL, PAYLOAD)) == [[3.0]]


def test_failing_version_never_takes_traffic(docker_adapter, export_v1, broken_export):  # noqa: F811
    run_deploy(docker_adapter, export_v1, "1")
    with pytest.raises(ProviderError) as caught:
        run_deploy(docker_adapter, broken_export, "3", set_default=True)
    error = caught.value
    assert "takes no traffic; version 1 keeps serving" in error.message
    assert BROKEN_MESSAGE in error.message  # the model's own error, through the container
    assert error.record.state == "FAILED" and not error.record.is_default
    assert error.details and all(line.startswith("docker log: ") for line in error.details)
    assert workflow.current_default(docker_adapter, MODEL) == "1"
    assert predictions(docker_adapter.predict(MODEL, PAYLOAD)) == [[2.5]]
