"""A Keras 3 model saved with ``tf.saved_model.save`` (tensorflow/serving#2250): TF1-style
loading leaves its variables unset, so the runtime serves it through TF2 object-graph loading,
with the same REST and gRPC behaviour as any other export."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from cloudserve.export import inspect
from tests.cli.write_exports import KERAS3_ANSWERS, KERAS3_ROWS
from tests.conftest import ROOT
from tests.runtime.conftest import ServerProcess, serving

WRITER = ROOT / "tests" / "cli" / "write_exports.py"


@pytest.fixture(scope="module")
def keras3_base(log_dir: Path) -> Path:
    base = log_dir / "keras3"
    subprocess.run([sys.executable, str(WRITER), "keras3", str(base / "2")], check=True)
    return base


@pytest.fixture(scope="module")
def server(keras3_base: Path, log_dir: Path) -> Iterator[ServerProcess]:
    with serving("--model_name=reg", f"--model_base_path={keras3_base}", log_dir=log_dir) as s:
        yield s


def test_tf1_loading_cannot_run_the_export(keras3_base: Path):
    """The premise: TF1-style loading (TF Serving's) leaves the signature's variables unset."""
    info = inspect(keras3_base / "2")
    assert info.variables_read and info.variables_unrestored == info.variables_read
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(keras3_base / "2"))
        signature = meta.signature_def["serving_default"]
        feeds = {signature.inputs["inputs"].name: np.array(KERAS3_ROWS, np.float32)}
        with pytest.raises(tf.errors.FailedPreconditionError, match="Could not find variable"):
            session.run(signature.outputs["output_0"].name, feeds)


def test_rest_predict_answers(server: ServerProcess):
    response = httpx.post(
        f"{server.rest_url}/v1/models/reg:predict", json={"instances": KERAS3_ROWS}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert np.allclose(response.json()["predictions"], KERAS3_ANSWERS, atol=1e-5)
    columnar = httpx.post(
        f"{server.rest_url}/v1/models/reg/versions/2:predict",
        json={"inputs": {"inputs": KERAS3_ROWS}},
        timeout=30,
    )
    assert np.allclose(columnar.json()["outputs"], KERAS3_ANSWERS, atol=1e-5)


def test_rest_errors_and_metadata_as_for_any_export(server: ServerProcess):
    wrong = httpx.post(
        f"{server.rest_url}/v1/models/reg:predict", json={"instances": [[1.0, 2.0]]}, timeout=30
    )
    assert wrong.status_code == 400 and "error" in wrong.json()
    metadata = httpx.get(f"{server.rest_url}/v1/models/reg/metadata", timeout=30).json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(signature["inputs"]) == {"inputs"} and set(signature["outputs"]) == {"output_0"}
    status = httpx.get(f"{server.rest_url}/v1/models/reg", timeout=30).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


def test_grpc_predict_answers(server: ServerProcess):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "reg"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(np.array(KERAS3_ROWS, np.float32)))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    assert response.model_spec.version.value == 2
    assert np.allclose(tf.make_ndarray(response.outputs["output_0"]), KERAS3_ANSWERS, atol=1e-5)
