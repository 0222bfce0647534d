"""Verify before traffic on SageMaker (moto server through the AWS harness): a version whose
smoke request fails never keeps the traffic, the previous default serves, and the error carries
the version's CloudWatch log lines. SageMaker's predict reaches a version only through a variant
on the endpoint, so a new version without traffic is verified by the core's fallback: routed,
asked at once, rolled back on failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloudserve import deploy as workflow
from cloudserve.errors import ProviderError
from cloudserve.export import inspect
from cloudserve.records import ExportInfo
from tests.adapters import test_aws
from tests.adapters.aws_harness import Harness
from tests.adapters.test_aws import MODEL, spec
from tests.conftest import export_example

# the AWS suite's moto server and adapter factory (its fixtures, reused as they are)
harness = test_aws.harness
moto = test_aws.moto
make_adapter = test_aws.make_adapter

pytestmark = pytest.mark.slow

ERROR = "Could not find variable sequential/dense_1/bias"


@pytest.fixture(scope="module")
def broken_export(tmp_path_factory: pytest.TempPathFactory) -> ExportInfo:
    """A third export (its own saved_model.pb digest) that the harness makes fail."""
    return inspect(export_example("bench_mlp", tmp_path_factory.mktemp("broken"), 3))


def fail(_x: float) -> float:
    raise RuntimeError(ERROR)


def write_logs(harness: Harness, version: str, lines: list[str]) -> None:
    logs = harness.clients().logs()
    group = f"/aws/sagemaker/Endpoints/{MODEL}"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    stream = f"v{version}/i-0123"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now_ms = int(time.time() * 1000)
    events = [{"timestamp": now_ms + i, "message": m} for i, m in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def run_deploy(adapter, export: ExportInfo, version: str, **kw) -> workflow.Outcome:
    prepared = workflow.Prepared(adapter=adapter, spec=spec(export, version, **kw), export=export)
    return workflow.deploy(prepared, timeout=120)


def default_of(adapter) -> str | None:
    return workflow.current_default(adapter, MODEL)


def test_good_version_is_verified_then_takes_traffic(make_adapter, export_v1, export_v2):
    adapter = make_adapter()
    first = run_deploy(adapter, export_v1, "1").record
    assert first.is_default and first.message.startswith("verified")
    second = run_deploy(adapter, export_v2, "2", set_default=True).record
    assert second.is_default and "verified right after taking traffic" in second.message
    assert adapter.predict(MODEL, {"instances": [[1.0]]}) == {"predictions": [[3.0]]}


def test_failing_version_never_keeps_the_traffic(moto, make_adapter, export_v1, broken_export):
    moto.serve(Path(broken_export.path), fail)
    adapter = make_adapter()
    run_deploy(adapter, export_v1, "1")
    write_logs(moto, "3", ["loading model", f"E {ERROR}"])
    with pytest.raises(ProviderError) as caught:
        run_deploy(adapter, broken_export, "3", set_default=True)
    error = caught.value
    assert "version 3 of 'contract-model' failed its smoke request" in error.message
    assert "rolled back right after it took traffic; version 1 serves again" in error.message
    assert error.details == ["aws log: loading model", f"aws log: E {ERROR}"]
    assert error.record.state == "FAILED" and not error.record.is_default
    # SageMaker reaches a version by name only through a variant, so a new version without
    # traffic is routed, asked right away and rolled back: the fallback, said in the record
    assert "rolled back to version 1" in error.record.message
    assert default_of(adapter) == "1"
    assert adapter.predict(MODEL, {"instances": [[2.0]]}) == {"predictions": [[3.0]]}
