"""Start-up failures, flags, environment variables, REST timeout and graceful SIGTERM."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.runtime.conftest import (
    TESTDATA,
    TWO_VERSIONS,
    copy_model,
    free_port,
    run_server,
    write_config,
)


def run_to_exit(*flags: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudserve_runtime", "--host=127.0.0.1",
         f"--port={free_port()}", "--rest_api_port=0", *flags],
        capture_output=True, text=True, timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.parametrize(("flags", "message"), [
    (["--bogus_flag=1", "--model_base_path=/x"], "unrecognized arguments: --bogus_flag=1"),
    (["--port=abc", "--model_base_path=/x"], "argument --port: invalid int value"),
    (["--enable_batching=maybe", "--model_base_path=/x"], "expected true or false"),
    ([], "Both --model_base_path and --model_config_file are empty"),
    (["--model_base_path=/x", "--batching_parameters_file=/b"],
     "batching_parameters_file is set without setting server_options.enable_batching"),
])
def test_bad_flags_exit_with_one_line(flags: list[str], message: str) -> None:
    result = run_to_exit(*flags, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_flag() -> None:
    result = run_to_exit("--version")
    assert result.returncode == 0
    assert "TensorFlow ModelServer:" in result.stdout
    assert "TensorFlow Library:" in result.stdout


def test_bad_config_files_stop_startup(tmp_path: Path) -> None:
    bad_models = tmp_path / "models.config"
    bad_models.write_text("model_config_list { config { name: 'a' base_path: ")
    result = run_to_exit(f"--model_config_file={bad_models}")
    assert result.returncode == 1
    assert "Failed to start server. Error:" in result.stderr
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in result.stderr

    good = write_config(tmp_path / "good.config", [
        f'name: "hp2" base_path: "{TWO_VERSIONS}" model_platform: "tensorflow"'])
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n")
    result = run_to_exit(f"--model_config_file={good}", "--enable_batching",
                         f"--batching_parameters_file={batching}")
    assert result.returncode == 1
    assert "Last entry in allowed_batch_sizes must match max_batch_size" in result.stderr

    monitoring = tmp_path / "monitoring.txt"
    monitoring.write_text("prometheus_config { enabled: true }")
    result = run_to_exit(f"--model_config_file={good}",
                         f"--monitoring_config_file={monitoring}")
    assert result.returncode == 1
    assert "Error parsing text-format tensorflow.serving.MonitoringConfig" in result.stderr


def test_startup_labels_need_the_flag(tmp_path: Path) -> None:
    config = write_config(tmp_path / "labels.config", [
        f'name: "hp2" base_path: "{TWO_VERSIONS}" model_platform: "tensorflow" '
        'version_labels { key: "default" value: 123 }'])
    result = run_to_exit(f"--model_config_file={config}")
    assert result.returncode == 1
    assert "Request to assign label to version 123 of model hp2" in result.stderr


def test_model_that_cannot_load_stops_startup(tmp_path: Path) -> None:
    (tmp_path / "model" / "1").mkdir(parents=True)
    (tmp_path / "model" / "1" / "saved_model.pb").write_bytes(b"garbage")
    result = run_to_exit(f"--model_base_path={tmp_path / 'model'}",
                         "--max_num_load_retries=0")
    assert result.returncode == 1
    assert "1 model(s) did not become available" in result.stderr


def test_env_vars_timeout_and_graceful_sigterm(tmp_path: Path) -> None:
    copy_model(TESTDATA / "saved_model_half_plus_two_cpu", tmp_path / "models" / "envmodel")
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 500000 }\n")
    server = run_server("--enable_batching", f"--batching_parameters_file={params}",
                        "--rest_api_timeout_in_ms=100", log_dir=tmp_path,
                        env={"MODEL_NAME": "envmodel", "MODEL_BASE_PATH": str(tmp_path / "models")})
    try:
        with httpx.Client(base_url=server.rest_url, timeout=30.0) as client:
            timed_out = client.post("/v1/models/envmodel:predict",
                                    content=json.dumps({"instances": [[1.0]]}))
            assert timed_out.status_code == 504, timed_out.text
            assert "error" in timed_out.json()

        results: list[object] = []

        def grpc_call() -> None:
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "envmodel"
                request.inputs["x"].CopyFrom(
                    tf.make_tensor_proto(np.array([[3.0]], dtype=np.float32)))
                try:
                    results.append(list(stub.Predict(request, 20.0).outputs["y"].float_val))
                except grpc.RpcError as exc:
                    results.append(exc)

        caller = threading.Thread(target=grpc_call)
        caller.start()
        time.sleep(0.25)  # the call now waits in the 0.5 s batch window
        status = server.stop()
        caller.join()
        assert results == [[3.5]]
        assert status == 0, server.log()
    finally:
        server.stop()
