"""The built runtime image under each host's contract, in a real Docker engine.

Every test runs ``cloudserve-runtime`` (built by the ``runtime_image`` fixture from
runtime_image/Dockerfile) the way that host runs containers and sends a real predict:
TF Serving's own Docker layout, SageMaker's ``serve``, Vertex AI's ``AIP_*`` variables with the
model on a GCS emulator, and Azure ML's custom-container model mount. Containers use the host's
network (the test engine has no bridge), so contract ports that are fixed by the host (8501 for
Vertex and Azure ML as cloudserve's targets declare it) skip the test when taken.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from cloudserve.runtime_images import BuiltImage
from tests.image.conftest import need_ports
from tests.support import free_port

pytestmark = pytest.mark.slow

HALF_PLUS_TWO = "saved_model_half_plus_two_cpu"  # holds version 00000123
BODY = {"instances": [[1.0], [2.0], [5.0]]}
EXPECTED = [[2.5], [3.0], [4.5]]


def post(url: str, body: dict, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_image_metadata(runtime_image: BuiltImage, docker_engine) -> None:
    """Non-root user, TF Serving's ports, the health check, SIGTERM as the stop signal."""
    config = docker_engine.client().images.get(runtime_image.id).attrs["Config"]
    assert config["User"] == "cloudserve"
    assert set(config["ExposedPorts"]) == {"8500/tcp", "8501/tcp"}
    assert config["Entrypoint"][:3] == ["python", "-m", "cloudserve_runtime"]
    assert "--rest_api_port=8501" in config["Entrypoint"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["StopSignal"] == "SIGTERM"
    assert runtime_image.tf_version.startswith("2.")
    assert runtime_image.size > 100_000_000


def test_tf_serving_layout(runtime_image: BuiltImage, run_image, testdata: Path) -> None:
    """``docker run -v DIR:/models/NAME -e MODEL_NAME=NAME``, as TF Serving's tutorials run it;
    non-root, healthy per its HEALTHCHECK, and a clean exit on SIGTERM."""
    grpc, rest = free_port(), free_port()
    server = run_image(
        runtime_image.id,
        f"--port={grpc}",
        f"--rest_api_port={rest}",
        env={"MODEL_NAME": "half_plus_two"},
        mounts={str(testdata / HALF_PLUS_TWO): "/models/half_plus_two"},
    )
    status = json.loads(server.wait_http(f"http://127.0.0.1:{rest}/v1/models/half_plus_two"))
    assert status["model_version_status"][0]["version"] == "123"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    answer = post(f"http://127.0.0.1:{rest}/v1/models/half_plus_two:predict", BODY)
    assert answer == {"predictions": EXPECTED}
    answer = post(f"http://127.0.0.1:{rest}/v1/models/half_plus_two/versions/123:predict", BODY)
    assert answer == {"predictions": EXPECTED}
    # gRPC is served on the --port flag
    grpc_check = server.container.exec_run(
        [
            "python",
            "-c",
            "import grpc; grpc.channel_ready_future("
            f"grpc.insecure_channel('127.0.0.1:{grpc}')).result(timeout=10); print('grpc ok')",
        ]
    )
    assert grpc_check.exit_code == 0 and b"grpc ok" in grpc_check.output
    uid = server.container.exec_run(["python", "-c", "import os; print(os.getuid())"])
    assert uid.output.strip() == b"10001"
    deadline = time.monotonic() + 60  # interval 10 s: the first check passes at ~10 s
    while True:
        server.container.reload()
        health = server.container.attrs["State"]["Health"]["Status"]
        if health == "healthy" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert health == "healthy", server.container.attrs["State"]["Health"]
    started = time.monotonic()
    assert server.stop() == 0, server.logs()
    assert time.monotonic() - started < 30, "SIGTERM did not stop the server promptly"


def test_sagemaker_serve(runtime_image: BuiltImage, run_image, testdata: Path) -> None:
    """``docker run IMAGE serve`` with the model in /opt/ml/model: /ping and /invocations."""
    port = free_port()
    server = run_image(
        runtime_image.id,
        "serve",
        f"--port={free_port()}",  # after `serve`: moves gRPC off the host's 8500
        env={"SAGEMAKER_BIND_TO_PORT": str(port)},
        mounts={str(testdata / HALF_PLUS_TWO): "/opt/ml/model"},
    )
    server.wait_http(f"http://127.0.0.1:{port}/ping")
    assert post(f"http://127.0.0.1:{port}/invocations", BODY) == {"predictions": EXPECTED}
    assert server.stop() == 0, server.logs()


def test_vertex_gcs_model(
    runtime_image_gcs: BuiltImage,
    run_image,
    testdata: Path,
    gcs_emulator_url: str,
) -> None:
    """Vertex's AIP_* variables with AIP_STORAGE_URI on a GCS emulator, 8501 as declared."""
    need_ports(8501)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator_url},
    )
    bucket = client.bucket("image-vertex")
    if not bucket.exists():
        bucket = client.create_bucket("image-vertex")
    source = testdata / HALF_PLUS_TWO / "00000123"
    for path in source.rglob("*"):
        if path.is_file():
            bucket.blob(f"hp2/{path.relative_to(source).as_posix()}").upload_from_filename(path)
    server = run_image(
        runtime_image_gcs.id,
        f"--port={free_port()}",
        env={
            "AIP_HTTP_PORT": "8501",
            "AIP_HEALTH_ROUTE": "/health",
            "AIP_PREDICT_ROUTE": "/predict",
            "AIP_STORAGE_URI": "gs://image-vertex/hp2",
            "MODEL_NAME": "hp2",
            "STORAGE_EMULATOR_HOST": gcs_emulator_url,
        },
    )
    server.wait_http("http://127.0.0.1:8501/health")
    assert post("http://127.0.0.1:8501/predict", BODY) == {"predictions": EXPECTED}
    assert post("http://127.0.0.1:8501/v1/models/hp2:predict", BODY) == {"predictions": EXPECTED}
    assert server.stop() == 0, server.logs()


def test_vertex_gcs_needs_the_gcs_build(runtime_image: BuiltImage, run_image) -> None:
    """The default build lacks google-cloud-storage: a gs:// model stops start-up, saying so."""
    server = run_image(
        runtime_image.id,
        f"--port={free_port()}",
        f"--rest_api_port={free_port()}",
        env={"AIP_STORAGE_URI": "gs://image-vertex/hp2"},
    )
    assert server.container.wait(timeout=120)["StatusCode"] == 1
    assert "needs google-cloud-storage" in server.logs()


def test_azure_ml_model_mount(runtime_image: BuiltImage, run_image, testdata: Path) -> None:
    """Azure ML's custom container: the model under AZUREML_MODEL_DIR
    (/var/azureml-app/azureml-models/<name>/<version>), MODEL_BASE_PATH pointing there, the
    liveness/readiness and scoring routes on 8501 (clouds.md §C)."""
    need_ports(8501)
    model_dir = "/var/azureml-app/azureml-models/half-plus-two/1"
    server = run_image(
        runtime_image.id,
        f"--port={free_port()}",
        env={
            "AZUREML_MODEL_DIR": model_dir,
            "MODEL_BASE_PATH": model_dir,
            "MODEL_NAME": "half_plus_two",
        },
        # the uploaded folder is named like MODEL_NAME and holds numeric version directories
        mounts={str(testdata / HALF_PLUS_TWO): f"{model_dir}/half_plus_two"},
    )
    server.wait_http("http://127.0.0.1:8501/v1/models/half_plus_two")  # liveness = readiness
    answer = post("http://127.0.0.1:8501/v1/models/half_plus_two:predict", BODY)
    assert answer == {"predictions": EXPECTED}
    assert server.stop() == 0, server.logs()
