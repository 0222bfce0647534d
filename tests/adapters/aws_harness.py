"""A moto server for the aws adapter's tests: strict requests, and what moto 5.2 lacks.

moto runs in server mode (ThreadedMotoServer on 127.0.0.1, a free port) and the adapter
reaches it through its own client factory, exactly as it would reach AWS.

**Strict requests.** moto accepts values AWS refuses (it checks no ``pattern``, ``max`` or
``enum``; botocore's own validator does not either). Every client made by
:meth:`Harness.clients` validates each call against botocore's service model first
(``validation.operation_violations`` on the session's ``before-parameter-build`` event): a
violation is recorded and raised as :class:`StrictViolation` (an AssertionError, which the
adapter's SDK-error handling never catches), and :meth:`Harness.assert_clean` fails the test
that made it even if something swallowed the error.

**Extensions**, patched into moto's classes (ThreadedMotoServer serves from this process, so
the patched classes are the ones answering), keep moto's own state model:

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
  endpoint-results``). A ``TargetVariant`` picks the variant; otherwise the variants'
  weights do, as SageMaker routes. ``hang_next_invocation(seconds)`` delays the next answer
  (a model slower than the client's read timeout); ``attempts`` counts invocations received.
* **SageMaker's own refusals** that moto lacks: CreateEndpoint with a name already in use,
  and UpdateEndpoint of a Failed endpoint (SageMaker allows only DeleteEndpoint there).
* **Faults**: ``fail_next(operation, message)`` makes the next call of a backend operation
  (``add_tags``, ``create_endpoint``) fail with ValidationException; ``fail_next_create()``
  makes the next endpoint settle as Failed (a container that never got healthy).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.core.responses import ActionResult
from moto.s3.models import s3_backends
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemakerruntime import responses as rt_responses
from moto.server import ThreadedMotoServer

from cloudserve_adapters.aws import validation
from cloudserve_adapters.aws.sdk import AwsClients

ACCOUNT = "123456789012"
REGION = "us-east-1"
UPDATE_FAILURE_MODES = ("rollback", "failed", "error")
FAILABLE = ("add_tags", "create_endpoint")


class StrictViolation(AssertionError):
    """A request AWS would refuse (botocore's model: pattern, enum, length, range, required)."""


class Harness:
    """The running moto server plus the knobs of the extensions."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self.fail_update: str | None = None
        self.models: dict[str, Callable[[float], float]] = {}
        self.invocations: list[tuple[str, str]] = []  # (endpoint, model data url) answered
        self.attempts = 0  # InvokeEndpoint requests received, answered or not
        self.violations: list[str] = []
        self.failures: dict[str, str] = {}
        self.fail_create = False
        self.hang_s = 0.0

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
        self.attempts = 0
        self.violations.clear()
        self.failures.clear()
        self.fail_create = False
        self.hang_s = 0.0

    # ------------------------------------------------------------------ strict clients

    def session(self, region: str = REGION) -> Any:
        """A boto3 session whose every client validates each call (see the module docstring)."""
        session = boto3.Session(region_name=region)
        session.events.register("before-parameter-build", self._validate)
        return session

    def clients(self, region: str = REGION, **kwargs: Any) -> AwsClients:
        """The adapter's client factory pointed at this server, with strict validation."""
        return AwsClients(
            session=self.session(region), endpoint_url=self.url, region=region, **kwargs
        )

    def _validate(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        found = validation.operation_violations(model, params)
        if found:
            self.violations += found
            raise StrictViolation("AWS would refuse this request: " + "; ".join(found))

    def assert_clean(self) -> None:
        """Fail when any request of the test broke the service model."""
        assert not self.violations, "requests AWS would refuse: " + "; ".join(self.violations)

    # ------------------------------------------------------------------ knobs

    def fail_next_update(self, mode: str = "rollback") -> None:
        """Make the next UpdateEndpoint fail in ``mode`` (see the module docstring)."""
        assert mode in UPDATE_FAILURE_MODES, mode
        self.fail_update = mode

    def fail_next(self, operation: str, message: str = "harness: refused") -> None:
        """Make the next ``operation`` (one of FAILABLE) fail with ValidationException."""
        assert operation in FAILABLE, operation
        self.failures[operation] = message

    def fail_next_create(self) -> None:
        """Make the next CreateEndpoint end Failed instead of InService."""
        self.fail_create = True

    def hang_next_invocation(self, seconds: float) -> None:
        """Delay the answer to the next InvokeEndpoint by ``seconds``."""
        self.hang_s = seconds

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
        if endpoint.endpoint_status == "Failed":
            raise ValidationError(
                message=f"Cannot update endpoint '{endpoint.arn}' in status Failed: "
                "only DeleteEndpoint is allowed"
            )
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

    def create_endpoint(self, backend: Any, original: Callable[..., Any], **kwargs: Any) -> Any:
        name = kwargs["endpoint_name"]
        if name in backend.endpoints:
            arn = backend.endpoints[name].arn
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        endpoint = original(backend, **kwargs)
        if self.fail_create:
            self.fail_create = False
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = "harness: the primary container did not pass the ping"
        return endpoint

    def answer(
        self, account: str, region: str, endpoint_name: str, body: bytes, target: str | None
    ) -> bytes | None:
        """The prediction of the model the endpoint serves (``target``: that variant's)."""
        self.attempts += 1
        hang, self.hang_s = self.hang_s, 0.0
        time.sleep(hang)
        backend = sm_models.sagemaker_backends[account][region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        variants = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants
        if target is not None:
            chosen = [v for v in variants if v["VariantName"] == target]
            if not chosen:
                raise ValidationError(message=f"Variant {target} not found for {endpoint_name}")
            variant = chosen[0]
        else:
            weights = [float(v.get("InitialVariantWeight", 1.0)) for v in variants]
            variant = random.choices(variants, weights=weights)[0]
        model = backend._models[variant["ModelName"]]
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
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        answer = harness.answer(self.current_account, self.region, name, self.body, target)
        if answer is None:
            return original_invoke(self)
        return 200, {"Content-Type": "application/json"}, answer

    def failable(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
            message = harness.failures.pop(operation, None)
            if message is not None:
                raise ValidationError(message=message)
            if operation == "create_endpoint":
                return harness.create_endpoint(self, original, **kwargs)
            return original(self, *args, **kwargs)

        call.moto_original = original  # type: ignore[attr-defined]
        return call

    for operation in FAILABLE:
        current = getattr(sm_models.SageMakerModelBackend, operation)
        original = getattr(current, "moto_original", current)
        setattr(sm_models.SageMakerModelBackend, operation, failable(operation, original))
    sm_models.SageMakerModelBackend.update_endpoint = backend_update_endpoint
    sm_responses.SageMakerResponse.update_endpoint = response_update_endpoint
    rt_responses.SageMakerRuntimeResponse._moto_invoke_endpoint = original_invoke
    rt_responses.SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
