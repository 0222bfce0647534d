"""A moto server for the aws adapter's tests, with the two things moto 5.2 lacks.

moto runs in server mode (ThreadedMotoServer on 127.0.0.1, a free port) and the adapter
reaches it through its own client factory, exactly as it would reach AWS. Two extensions,
patched into moto's classes (ThreadedMotoServer serves from this process, so the patched
classes are the ones answering), keep moto's own state model:

* **UpdateEndpoint** — moto has none. ``SageMakerModelBackend.update_endpoint`` switches a
  ``FakeEndpoint`` to another ``FakeEndpointConfig`` the way SageMaker does after a
  successful blue/green update; ``SageMakerResponse.update_endpoint`` is dispatched by
  moto's server from the ``X-Amz-Target: SageMaker.UpdateEndpoint`` action name.
  ``fail_next_update(mode)`` makes the next update fail: ``"rollback"`` (the endpoint
  returns to InService on the *old* config with a FailureReason, as SageMaker does after a
  failed update), ``"failed"`` (EndpointStatus Failed, old config) or ``"error"`` (the
  call itself is refused with ValidationException).
* **invoke_endpoint that follows the endpoint** — moto answers from a queue and ignores the
  endpoint. Here an invocation follows the endpoint's *current* EndpointConfig → Model →
  ModelDataUrl, reads that model.tar.gz from moto's S3, and answers with the function
  registered for its ``<version>/saved_model.pb`` (``serve(export_dir, fn)``), applied to
  each instance of the TF Serving JSON body. Endpoints or artifacts the harness does not
  know fall through to moto's own queue behaviour (``/moto-api/static/sagemaker/
  endpoint-results``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from moto.core.responses import ActionResult
from moto.s3.models import s3_backends
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemakerruntime import responses as rt_responses
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
UPDATE_FAILURE_MODES = ("rollback", "failed", "error")


class Harness:
    """The running moto server plus the knobs of the extensions."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self.fail_update: str | None = None
        self.models: dict[str, Callable[[float], float]] = {}
        self.invocations: list[tuple[str, str]] = []  # (endpoint, model data url) answered

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        _install(self)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        """Empty every moto backend (POST /moto-api/reset) and the knobs."""
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        self.fail_update = None
        self.invocations.clear()

    # ------------------------------------------------------------------ knobs

    def fail_next_update(self, mode: str = "rollback") -> None:
        """Make the next UpdateEndpoint fail in ``mode`` (see the module docstring)."""
        assert mode in UPDATE_FAILURE_MODES, mode
        self.fail_update = mode

    def serve(self, export_dir: Path, fn: Callable[[float], float]) -> None:
        """Answer invocations of any artifact holding this export's saved_model.pb with fn."""
        digest = hashlib.sha256((Path(export_dir) / "saved_model.pb").read_bytes()).hexdigest()
        self.models[digest] = fn

    def queue_results(self, results: list[dict[str, Any]]) -> None:
        """moto's own static result queue for sagemaker-runtime invoke_endpoint."""
        body = {"account_id": ACCOUNT, "region": REGION, "results": results}
        url = f"{self.url}/moto-api/static/sagemaker/endpoint-results"
        requests.post(url, json=body, timeout=10).raise_for_status()

    # ------------------------------------------------------------------ extensions

    def update_endpoint(
        self, backend: sm_models.SageMakerModelBackend, endpoint_name: str, config_name: str
    ) -> str:
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name, ACCOUNT, REGION)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = backend.describe_endpoint_config(config_name)  # ValidationError if missing
        mode, self.fail_update = self.fail_update, None
        if mode == "error":
            raise ValidationError(message="harness: UpdateEndpoint refused")
        endpoint.last_modified_time = sm_models.utcnow()
        if mode is not None:
            endpoint.endpoint_status = "InService" if mode == "rollback" else "Failed"
            endpoint.failure_reason = "harness: the new fleet failed its health check"
            return endpoint.arn
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = None
        return endpoint.arn

    def answer(self, account: str, region: str, endpoint_name: str, body: bytes) -> bytes | None:
        """The prediction of the model the endpoint currently serves; None if unknown."""
        backend = sm_models.sagemaker_backends[account][region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        model = backend._models[config.production_variants[0]["ModelName"]]
        url = model.primary_container["ModelDataUrl"]
        bucket, _, key = url.removeprefix("s3://").partition("/")
        blob = s3_backends[account]["aws"].get_object(bucket, key).value
        fn = self.models.get(_saved_model_digest(blob))
        if fn is None:
            return None
        self.invocations.append((endpoint_name, url))
        instances = json.loads(body)["instances"]
        return json.dumps({"predictions": [[fn(x) for x in row] for row in instances]}).encode()


def _saved_model_digest(tarball: bytes) -> str | None:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[0].isdigit() and parts[1] == "saved_model.pb":
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                return hashlib.sha256(data).hexdigest()
    return None


def _install(harness: Harness) -> None:
    """Patch the two extensions into moto's classes (idempotent)."""

    def backend_update_endpoint(self, endpoint_name: str, endpoint_config_name: str) -> str:
        return harness.update_endpoint(self, endpoint_name, endpoint_config_name)

    def response_update_endpoint(self) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    original_invoke = (
        getattr(rt_responses.SageMakerRuntimeResponse, "_moto_invoke_endpoint", None)
        or rt_responses.SageMakerRuntimeResponse.invoke_endpoint
    )

    def invoke_endpoint(self):  # type: ignore[no-untyped-def]
        name = self.path.split("/")[2]
        answer = harness.answer(self.current_account, self.region, name, self.body)
        if answer is None:
            return original_invoke(self)
        return 200, {"Content-Type": "application/json"}, answer

    sm_models.SageMakerModelBackend.update_endpoint = backend_update_endpoint
    sm_responses.SageMakerResponse.update_endpoint = response_update_endpoint
    rt_responses.SageMakerRuntimeResponse._moto_invoke_endpoint = original_invoke
    rt_responses.SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
