"""Server-side batching through the real server: merged calls, queue bounds, size limits (§5)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.runtime.conftest import HALF_PLUS_TWO, ServerProcess, serving

PREDICT = "/v1/models/hp2:predict"
BATCH_TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def batched(log_dir: Path) -> Iterator[ServerProcess]:
    """half_plus_two with batches of at most 8 rows, 0.3 s timeout, one queued batch."""
    params = log_dir / "batching.txt"
    params.write_text(
        "max_batch_size { value: 8 }\n"
        f"batch_timeout_micros {{ value: {int(BATCH_TIMEOUT_S * 1e6)} }}\n"
        "max_enqueued_batches { value: 1 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    monitoring = log_dir / "monitoring.txt"
    monitoring.write_text("prometheus_config { enable: true }\n")
    with serving(
        "--model_name=hp2",
        f"--model_base_path={HALF_PLUS_TWO}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
        f"--monitoring_config_file={monitoring}",
        log_dir=log_dir,
    ) as server:
        yield server


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/monitoring/prometheus/metrics").text
    found = re.search(rf"^{re.escape(name)}\{{model_name=\"hp2\"\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_concurrent_requests_share_one_model_call(batched: ServerProcess) -> None:
    with httpx.Client(base_url=batched.rest_url, timeout=30.0) as client:
        runs_before = metric(client, ":tensorflow:serving:batching_session:wrapped_run_count")
        rows_before = metric(
            client, ":tensorflow:serving:batching_session:processed_batch_size_sum"
        )

        def one(value: float) -> httpx.Response:
            with httpx.Client(base_url=batched.rest_url, timeout=30.0) as own:
                return own.post(PREDICT, content=json.dumps({"instances": [[value]]}))

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(one, [float(i) for i in range(8)]))
        assert [r.json()["predictions"] for r in responses] == [[[0.5 * i + 2.0]] for i in range(8)]
        runs = metric(client, ":tensorflow:serving:batching_session:wrapped_run_count")
        rows = metric(client, ":tensorflow:serving:batching_session:processed_batch_size_sum")
        assert rows - rows_before == 8
        assert runs - runs_before <= 3, "8 concurrent requests should share model calls"


def test_queue_full_gives_503(batched: ServerProcess) -> None:
    with httpx.Client(base_url=batched.rest_url, timeout=30.0) as client:
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                client.post(PREDICT, content=json.dumps({"instances": [[1.0]] * 5}))
            )
        )
        thread.start()
        time.sleep(BATCH_TIMEOUT_S / 3)
        second = client.post(PREDICT, content=json.dumps({"instances": [[1.0]] * 5}))
        thread.join()
        assert second.status_code == 503, second.text
        assert second.json()["error"].startswith(
            "The batch scheduling queue to which this task was submitted is full"
        )
        assert first[0].status_code == 200
        assert first[0].json() == {"predictions": [[2.5]] * 5}


def test_request_larger_than_max_batch_size_gives_400(batched: ServerProcess) -> None:
    with httpx.Client(base_url=batched.rest_url, timeout=30.0) as client:
        response = client.post(PREDICT, content=json.dumps({"instances": [[1.0]] * 9}))
        assert response.status_code == 400
        assert response.json()["error"] == "Task size 9 is larger than maximum input batch size 8"
        scalar = client.post(PREDICT, content=json.dumps({"inputs": 1.0}))
        assert scalar.status_code == 400
        assert "at least one dimension" in scalar.json()["error"]


def test_grpc_goes_through_the_batcher(batched: ServerProcess) -> None:
    with grpc.insecure_channel(batched.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hp2"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[2.0]], dtype=np.float32)))
        started = time.monotonic()
        assert list(stub.Predict(request, 10.0).outputs["y"].float_val) == [3.0]
        assert time.monotonic() - started >= BATCH_TIMEOUT_S * 0.8  # waited for the batch
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((9, 1), dtype=np.float32)))
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, 10.0)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
