"""gRPC PredictionService and ModelService against half_plus_two (spec §6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.runtime.conftest import HALF_PLUS_TWO, ServerProcess, serving

MODEL = "half_plus_two"


@pytest.fixture(scope="module")
def grpc_only(log_dir: Path) -> Iterator[ServerProcess]:
    """half_plus_two with REST switched off (``--rest_api_port=0``)."""
    with serving(
        f"--model_name={MODEL}", f"--model_base_path={HALF_PLUS_TWO}", log_dir=log_dir, rest=False
    ) as server:
        yield server


@pytest.fixture(scope="module")
def channel(grpc_only: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_only.grpc_target) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def predict_request(values: list[list[float]], **spec: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.pop("name", MODEL)  # type: ignore[assignment]
    request.model_spec.signature_name = spec.pop("signature_name", "serving_default")  # type: ignore[assignment]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(values, dtype=np.float32)))
    return request


def example_input(target, *values: float) -> None:
    for value in values:
        example = target.example_list.examples.add()
        example.features.feature["x"].float_list.value.append(value)


def rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, 10.0)
    return info.value


def test_stock_client_predict(stub) -> None:
    result = stub.Predict(predict_request([[1.0], [2.0], [5.0]]), 10.0)
    assert list(result.outputs["y"].float_val) == [2.5, 3.0, 4.5]
    assert result.model_spec.name == MODEL
    assert result.model_spec.version.value == 123
    assert result.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(result.outputs["y"]).shape == (3, 1)


def test_predict_default_signature_and_version_choice(stub) -> None:
    request = predict_request([[4.0]], signature_name="")
    request.model_spec.version.value = 123
    result = stub.Predict(request, 10.0)
    assert list(result.outputs["y"].float_val) == [4.0]
    assert result.model_spec.signature_name == "serving_default"


def test_predict_tensor_content_input(stub) -> None:
    request = predict_request([[0.0]])
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[6.0], [8.0]], dtype=np.float32)))
    assert request.inputs["x"].tensor_content
    assert list(stub.Predict(request, 10.0).outputs["y"].float_val) == [5.0, 6.0]


def test_predict_other_signature(stub) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "regress_x2_to_y3"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(np.array([[2.0]], dtype=np.float32)))
    assert list(stub.Predict(request, 10.0).outputs["outputs"].float_val) == [4.0]


def test_predict_errors(stub) -> None:
    error = rpc_error(stub.Predict, predict_request([[1.0]], name="missing"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(missing)" in error.details()

    error = rpc_error(stub.Predict, predict_request([[1.0]], name=""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ModelSpec has no name specified." in error.details()

    error = rpc_error(stub.Predict, predict_request([[1.0]], signature_name="nope"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert 'Serving signature key "nope" not found.' in error.details()

    request = predict_request([[1.0]])
    request.model_spec.version.value = 7
    error = rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Specific(half_plus_two, 7)" in error.details()

    request = predict_request([[1.0]])
    request.model_spec.version_label = "stable"
    error = rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label: stable" in error.details()


def test_predict_input_and_output_filter_errors(stub) -> None:
    request = predict_request([[1.0]])
    del request.inputs["x"]
    error = rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. "
        "Missing but required: {x}." in error.details()
    )

    request = predict_request([[1.0]])
    request.output_filter.append("z")
    error = rpc_error(stub.Predict, request)
    assert (
        "output tensor alias not found in signature: z Outputs expected to be in the set "
        "{y}." in error.details()
    )

    request = predict_request([[1.0]])
    request.output_filter.extend(["y", "y"])
    assert "duplicate output tensor alias: y" in rpc_error(stub.Predict, request).details()

    request = predict_request([[1.0]])
    request.output_filter.append("y")
    assert list(stub.Predict(request, 10.0).outputs["y"].float_val) == [2.5]


def test_predict_wrong_dtype_is_invalid_argument(stub) -> None:
    request = predict_request([[1.0]])
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([["a"]], dtype=object)))
    assert rpc_error(stub.Predict, request).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_classify(stub) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify_x_to_y"
    example_input(request.input, 1.0, 2.0)
    result = stub.Classify(request, 10.0)
    scores = [[c.score for c in item.classes] for item in result.result.classifications]
    assert scores == [[2.5], [3.0]]
    assert result.model_spec.signature_name == "classify_x_to_y"
    assert result.model_spec.version.value == 123


def test_classify_needs_classification_signature(stub) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    example_input(request.input, 1.0)
    error = rpc_error(stub.Classify, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "No classification inputs found in SignatureDef" in error.details()


def test_regress_with_context(stub) -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "regress_x_to_y2"
    context = request.input.example_list_with_context.context
    context.features.feature["x"].float_list.value.append(4.0)
    request.input.example_list_with_context.examples.add()
    result = stub.Regress(request, 10.0)
    assert [r.value for r in result.result.regressions] == [5.0]


def test_regress_and_empty_input(stub) -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "regress_x_to_y"
    example_input(request.input, 2.0, 4.0)
    assert [r.value for r in stub.Regress(request, 10.0).result.regressions] == [3.0, 4.0]
    request.ClearField("input")
    assert "Input is empty" in rpc_error(stub.Regress, request).details()


def test_multi_inference(stub) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "classify"), ("regress_x_to_y2", "regress")):
        task = request.tasks.add()
        task.model_spec.name = MODEL
        task.model_spec.signature_name = signature
        task.method_name = f"tensorflow/serving/{method}"
    example_input(request.input, 2.0)
    result = stub.MultiInference(request, 10.0)
    assert result.results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert result.results[1].regression_result.regressions[0].value == 4.0
    assert result.results[1].model_spec.signature_name == "regress_x_to_y2"

    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    assert (
        "Duplicate evaluation of signature: classify_x_to_y"
        in rpc_error(stub.MultiInference, request).details()
    )
    request.tasks[1].model_spec.name = "other"
    assert "must access the same model name" in rpc_error(stub.MultiInference, request).details()
    request.tasks[1].model_spec.name = MODEL
    request.tasks[1].model_spec.signature_name = "regress_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/predict"
    error = rpc_error(stub.MultiInference, request)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Unsupported signature method_name" in error.details()


def test_get_model_metadata(stub) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    result = stub.GetModelMetadata(request, 10.0)
    assert result.model_spec.version.value == 123
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert result.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    assert signatures.signature_def["serving_default"].inputs["x"].name == "x:0"

    request.metadata_field[:] = ["other"]
    assert (
        "Metadata field other is not supported"
        in rpc_error(stub.GetModelMetadata, request).details()
    )
    request.ClearField("metadata_field")
    assert (
        "must specify at least one metadata_field"
        in rpc_error(stub.GetModelMetadata, request).details()
    )
    request.ClearField("model_spec")
    assert "Missing ModelSpec" in rpc_error(stub.GetModelMetadata, request).details()


def test_get_model_status(model_stub) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    result = model_stub.GetModelStatus(request, 10.0)
    assert len(result.model_version_status) == 1
    status = result.model_version_status[0]
    assert status.version == 123
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0

    request.model_spec.version.value = 9
    error = rpc_error(model_stub.GetModelStatus, request)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Could not find version 9 of model half_plus_two" in error.details()
    request.model_spec.name = "missing"
    request.model_spec.ClearField("version")
    assert (
        "Could not find any versions of model missing"
        in rpc_error(model_stub.GetModelStatus, request).details()
    )
