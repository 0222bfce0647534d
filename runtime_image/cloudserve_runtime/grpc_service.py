"""gRPC ``PredictionService`` and ``ModelService`` (spec §6), on the sync ``grpc.server``.

Handlers run on gRPC's worker threads; model calls go through the batcher's thread-safe path
when batching is on. The gRPC deadline bounds the model call. Responses echo the model spec with
the resolved version and signature name. Error messages longer than 1024 characters are cut to
1024 + ``...TRUNCATED`` like TF Serving's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)

from cloudserve_runtime import methods
from cloudserve_runtime.errors import CODE_NUMBERS, ServingError, as_serving_error, invalid_argument
from cloudserve_runtime.inference import InferenceRunner
from cloudserve_runtime.limits import ServerLimits, check_tensor_proto, echo
from cloudserve_runtime.metrics import Metrics
from cloudserve_runtime.models import ModelManager, ServableHandle
from cloudserve_runtime.servable import DEFAULT_SIGNATURE
from cloudserve_runtime.tensor_proto import from_ndarray, to_ndarray

MAX_MESSAGE_CHARS = 1024
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

Response = TypeVar("Response")


def _abort(context: grpc.ServicerContext, error: ServingError) -> None:
    context.abort(grpc.StatusCode[error.code], echo(error.message, MAX_MESSAGE_CHARS))


def _echo_spec(target: model_pb2.ModelSpec, handle: ServableHandle, signature: str) -> None:
    target.name = handle.model_name
    target.version.value = handle.version
    target.signature_name = signature


def _time_left(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.0)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

    def __init__(
        self, manager: ModelManager, runner: InferenceRunner, metrics: Metrics,
        limits: ServerLimits,
    ) -> None:
        self._manager = manager
        self._runner = runner
        self._metrics = metrics
        self._max_tensor_bytes = limits.max_tensor_bytes

    def _acquire(self, spec: model_pb2.ModelSpec) -> ServableHandle:
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        which = spec.WhichOneof("version_choice")
        return self._manager.acquire(
            spec.name,
            version=spec.version.value if which == "version" else None,
            label=spec.version_label if which == "version_label" else None,
        )

    def _serve(
        self, api: str, spec: model_pb2.ModelSpec, context: grpc.ServicerContext,
        body: Callable[[], Response],
    ) -> Response:
        started = time.perf_counter()
        status = "OK"
        try:
            return body()
        except Exception as exc:  # every failure becomes a gRPC status
            error = as_serving_error(exc)
            status = error.code
            _abort(context, error)
            raise  # unreachable: abort raises
        finally:
            if api:
                self._metrics.record_request(
                    spec.name, api, "GRPC", status, (time.perf_counter() - started) * 1e6
                )

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> Any:
        def body() -> predict_pb2.PredictResponse:
            with self._acquire(request.model_spec) as handle:
                signature = methods.predict_signature_grpc(
                    handle.servable, request.model_spec.signature_name
                )
                methods.check_grpc_inputs(signature, request.inputs)
                aliases = methods.output_aliases(signature, request.output_filter)
                for alias, proto in request.inputs.items():
                    check_tensor_proto(alias, proto, self._max_tensor_bytes)
                inputs = {alias: to_ndarray(proto) for alias, proto in request.inputs.items()}
                outputs = self._runner.run_blocking(
                    handle, signature, inputs, aliases, _time_left(context)
                )
                response = predict_pb2.PredictResponse()
                _echo_spec(response.model_spec, handle, signature.name)
                for alias, value in outputs.items():
                    response.outputs[alias].CopyFrom(
                        from_ndarray(value, signature.outputs[alias][0])
                    )
                return response

        return self._serve("Predict", request.model_spec, context, body)

    def _classify(
        self, handle: ServableHandle, spec: model_pb2.ModelSpec, request_input: Any,
        target: classification_pb2.ClassificationResult, context: grpc.ServicerContext,
    ) -> str:
        signature = methods.classify_signature(handle.servable, spec.signature_name)
        examples = methods.serialized_examples(request_input)
        outputs = self._runner.run_blocking(
            handle, signature, {methods.CLASSIFY_INPUTS: methods.examples_tensor(examples)},
            None, _time_left(context),
        )
        classes, scores = methods.check_classification_outputs(outputs, len(examples))
        for entries in methods.classification_results(classes, scores):
            classifications = target.classifications.add()
            for label, score in entries:
                classifications.classes.add(label=label.decode("utf-8", "replace"), score=score)
        return signature.name

    def _regress(
        self, handle: ServableHandle, spec: model_pb2.ModelSpec, request_input: Any,
        target: regression_pb2.RegressionResult, context: grpc.ServicerContext,
    ) -> str:
        signature = methods.regress_signature(handle.servable, spec.signature_name)
        examples = methods.serialized_examples(request_input)
        outputs = self._runner.run_blocking(
            handle, signature, {methods.CLASSIFY_INPUTS: methods.examples_tensor(examples)},
            None, _time_left(context),
        )
        for value in methods.check_regression_outputs(outputs, len(examples)).tolist():
            target.regressions.add(value=value)
        return signature.name

    def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext
    ) -> Any:
        def body() -> classification_pb2.ClassificationResponse:
            with self._acquire(request.model_spec) as handle:
                response = classification_pb2.ClassificationResponse()
                name = self._classify(
                    handle, request.model_spec, request.input, response.result, context
                )
                _echo_spec(response.model_spec, handle, name)
                return response

        return self._serve("Classify", request.model_spec, context, body)

    def Regress(
        self, request: regression_pb2.RegressionRequest, context: grpc.ServicerContext
    ) -> Any:
        def body() -> regression_pb2.RegressionResponse:
            with self._acquire(request.model_spec) as handle:
                response = regression_pb2.RegressionResponse()
                name = self._regress(
                    handle, request.model_spec, request.input, response.result, context
                )
                _echo_spec(response.model_spec, handle, name)
                return response

        return self._serve("Regress", request.model_spec, context, body)

    def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: grpc.ServicerContext
    ) -> Any:
        def body() -> inference_pb2.MultiInferenceResponse:
            tasks = list(request.tasks)
            if not tasks:
                raise invalid_argument("MultiInferenceRequest must have at least one task.")
            names = {task.model_spec.name for task in tasks}
            if len(names) != 1:
                raise invalid_argument(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name."
                )
            seen: set[str] = set()
            for task in tasks:
                signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
                if signature in seen:
                    raise invalid_argument(f"Duplicate evaluation of signature: {signature}")
                seen.add(signature)
                if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
                    raise ServingError(
                        "UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}"
                    )
            response = inference_pb2.MultiInferenceResponse()
            with self._acquire(tasks[0].model_spec) as handle:
                for task in tasks:
                    result = response.results.add()
                    if task.method_name == CLASSIFY_METHOD:
                        name = self._classify(handle, task.model_spec, request.input,
                                              result.classification_result, context)
                    else:
                        name = self._regress(handle, task.model_spec, request.input,
                                             result.regression_result, context)
                    _echo_spec(result.model_spec, handle, name)
            return response

        return self._serve("", request.tasks[0].model_spec if request.tasks else
                           model_pb2.ModelSpec(), context, body)

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest,
        context: grpc.ServicerContext,
    ) -> Any:
        def body() -> get_model_metadata_pb2.GetModelMetadataResponse:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            if not request.metadata_field:
                raise invalid_argument(
                    "GetModelMetadataRequest must specify at least one metadata_field"
                )
            for field in request.metadata_field:
                if field != "signature_def":
                    raise invalid_argument(f"Metadata field {field} is not supported")
            with self._acquire(request.model_spec) as handle:
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                _echo_spec(response.model_spec, handle, "")
                response.metadata["signature_def"].Pack(
                    methods.signature_def_map(handle.servable)
                )
                return response

        return self._serve("", request.model_spec, context, body)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest.

    Reloads run one at a time: a reload arriving while one runs gets UNAVAILABLE at once, so
    reloads never hold more than one gRPC worker thread (Predict keeps the others). A reload
    waits for its models at most the call's deadline or ``limits.reload_timeout_s``, whichever
    is sooner (then DEADLINE_EXCEEDED; the new config stays applied and keeps loading).
    """

    def __init__(self, manager: ModelManager, limits: ServerLimits) -> None:
        self._manager = manager
        self._reload_timeout_s = limits.reload_timeout_s
        self._reloading = threading.Lock()

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> Any:
        spec = request.model_spec
        try:
            if not spec.name:
                raise invalid_argument("ModelSpec has no name specified.")
            version = spec.version.value if spec.WhichOneof("version_choice") == "version" \
                else None
            statuses = self._manager.status(spec.name, version)
        except ServingError as error:
            _abort(context, error)
            raise
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            response.model_version_status.add(
                version=status.version,
                state=get_model_status_pb2.ModelVersionStatus.State.Value(status.state),
                status=status_pb2.StatusProto(
                    error_code=CODE_NUMBERS[status.error_code],
                    error_message=status.error_message,
                ),
            )
        return response

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> Any:
        if not self._reloading.acquire(blocking=False):
            _abort(context, ServingError(
                "UNAVAILABLE", "Another HandleReloadConfigRequest is in progress; retry later"
            ))
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            left = _time_left(context)
            timeout = self._reload_timeout_s if left is None else min(left, self._reload_timeout_s)
            self._manager.reload(request.config, wait=True, timeout=timeout)
        except ServingError as error:
            _abort(context, error)
            raise
        finally:
            self._reloading.release()
        return model_management_pb2.ReloadConfigResponse(
            status=status_pb2.StatusProto(error_code=0)
        )


def add_services(
    server: grpc.Server, manager: ModelManager, runner: InferenceRunner, metrics: Metrics,
    limits: ServerLimits,
) -> None:
    """Registers both services on ``server``."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, runner, metrics, limits), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager, limits), server
    )
