"""Cloud hosting contracts: SageMaker (`serve`, /ping, /invocations) and Vertex AI (`AIP_*`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudserve_runtime import batching
from cloudserve_runtime.flags import FlagError, ServerOptions, parse_flags
from cloudserve_runtime.hosting import HostingError, hosting_argv, stage_saved_model
from cloudserve_runtime.server import main
from tests.runtime.conftest import (
    HALF_PLUS_TWO,
    TWO_VERSIONS,
    ServerProcess,
    free_port,
    wait_until_up,
    write_config,
)
from tests.support import gcs_emulator as start_gcs_emulator

SAVED_MODEL = HALF_PLUS_TWO / "00000123"
ENTRYPOINT = ["--port=8500", "--rest_api_port=8501"]
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
HOSTING_ENV = ("MODEL_NAME", "MODEL_BASE_PATH", "SAGEMAKER_", "AIP_", "STORAGE_EMULATOR_HOST")


def options(argv: list[str], env: dict[str, str] | None = None) -> ServerOptions:
    """The server options ``argv`` gives under ``env`` (the hosting translation included)."""
    env = env or {}
    return parse_flags(hosting_argv(argv, env), env)


# ---- hosting_argv: SageMaker ----------------------------------------------------------------


def test_without_hosting_the_command_line_is_unchanged() -> None:
    argv = ["--port=1", "--model_name", "serve", "--model_base_path=/m"]
    assert hosting_argv(argv, {"MODEL_NAME": "x", "SAGEMAKER_TFS_ENABLE_BATCHING": "true"}) == argv


def test_serve_means_sagemakers_port_model_dir_and_name() -> None:
    assert hosting_argv(["serve"], {}) == [
        "--rest_api_port=8080", "--model_base_path=/opt/ml/model", "--model_name=model",
    ]
    served = options(["serve"], {"MODEL_NAME": "hp2", "MODEL_BASE_PATH": "/models"})
    assert (served.rest_api_port, served.port) == (8080, 8500)
    assert (served.model_name, served.model_base_path) == ("hp2", "/opt/ml/model")


def test_serve_overrides_the_entrypoint_flags_before_it() -> None:
    served = options([*ENTRYPOINT, "serve"])
    assert (served.port, served.rest_api_port, served.model_base_path) == (
        8500, 8080, "/opt/ml/model"
    )


def test_flags_after_serve_win() -> None:
    served = options([*ENTRYPOINT, "serve", "--rest_api_port=9000", "--model_base_path=/m",
                      "--model_name=a"])
    assert (served.rest_api_port, served.model_base_path, served.model_name) == (9000, "/m", "a")


def test_sagemaker_bind_to_port() -> None:
    assert options(["serve"], {"SAGEMAKER_BIND_TO_PORT": "9090"}).rest_api_port == 9090


@pytest.mark.parametrize("argv", [
    ["--enable_batching", "serve"],  # `serve` would be the flag's value
    ["--model_name", "serve"],
    ["--port=1", "x", "serve"],
])
def test_serve_counts_only_as_the_first_argument_after_flag_value_pairs(argv: list[str]) -> None:
    assert hosting_argv(argv, {}) == argv


def test_sagemaker_batching_defaults() -> None:
    served = options(["serve"], {"SAGEMAKER_TFS_ENABLE_BATCHING": "true"})
    assert served.enable_batching
    params = batching.parse_batching_parameters(served.batching_parameters)
    assert (params.max_batch_size, params.batch_timeout_micros) == (8, 1000)
    assert params.num_batch_threads == batching.BatchingParameters().num_batch_threads


def test_sagemaker_batching_variables() -> None:
    env = {
        "SAGEMAKER_TFS_ENABLE_BATCHING": "True",
        "SAGEMAKER_TFS_MAX_BATCH_SIZE": "32",
        "SAGEMAKER_TFS_BATCH_TIMEOUT_MICROS": "500",
        "SAGEMAKER_TFS_NUM_BATCH_THREADS": "3",
        "SAGEMAKER_TFS_MAX_ENQUEUED_BATCHES": "7",
    }
    params = batching.parse_batching_parameters(options(["serve"], env).batching_parameters)
    assert (params.max_batch_size, params.batch_timeout_micros, params.num_batch_threads,
            params.max_enqueued_batches) == (32, 500, 3, 7)


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_sagemaker_batching_off(value: str) -> None:
    served = options(["serve"], {"SAGEMAKER_TFS_ENABLE_BATCHING": value,
                                 "SAGEMAKER_TFS_MAX_BATCH_SIZE": "32"})
    assert not served.enable_batching and not served.batching_parameters


def test_a_batching_file_after_serve_replaces_the_sagemaker_parameters(tmp_path: Path) -> None:
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 4 }\n")
    served = options(["serve", f"--batching_parameters_file={params}"],
                     {"SAGEMAKER_TFS_ENABLE_BATCHING": "true"})
    assert served.enable_batching and served.batching_parameters_file == str(params)
    assert not served.batching_parameters


@pytest.mark.parametrize(("env", "message"), [
    ({"SAGEMAKER_TFS_ENABLE_BATCHING": "maybe"}, "SAGEMAKER_TFS_ENABLE_BATCHING must be true"),
    ({"SAGEMAKER_TFS_ENABLE_BATCHING": "1", "SAGEMAKER_TFS_MAX_BATCH_SIZE": "8 }"},
     "SAGEMAKER_TFS_MAX_BATCH_SIZE must be a non-negative integer"),
    ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT must be"),
])
def test_bad_sagemaker_variables(env: dict[str, str], message: str) -> None:
    with pytest.raises(HostingError, match=message):
        hosting_argv(["serve"], env)


def test_main_reports_bad_hosting_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIP_HTTP_PORT", "eighty")
    assert main(["--model_base_path=/m"]) == 2
    assert capsys.readouterr().err == (
        "cloudserve_runtime: error: AIP_HTTP_PORT must be a non-negative integer, got 'eighty'\n"
    )


# ---- hosting_argv: Vertex AI ----------------------------------------------------------------

VERTEX = {
    "AIP_HTTP_PORT": "7080",
    "AIP_HEALTH_ROUTE": "/health",
    "AIP_PREDICT_ROUTE": "/predict",
    "AIP_STORAGE_URI": "gs://bucket/models/hp2/1",
}


def test_vertex_variables_become_flags() -> None:
    served = options([], VERTEX)
    assert served.rest_api_port == 7080
    assert (served.rest_api_health_route, served.rest_api_predict_route) == ("/health", "/predict")
    assert served.saved_model_uri == "gs://bucket/models/hp2/1"
    assert served.model_base_path == ""


def test_vertex_variables_lose_to_flags() -> None:
    served = options([*ENTRYPOINT, "--rest_api_predict_route=/p", "--model_base_path=/m"], VERTEX)
    assert (served.rest_api_port, served.rest_api_predict_route) == (8501, "/p")
    assert (served.model_base_path, served.saved_model_uri) == ("/m", "")
    configured = hosting_argv(["--model_config_file=/c"], VERTEX)
    assert not any(flag.startswith("--saved_model_uri") for flag in configured)


def test_adapter_style_vertex_environment() -> None:
    """What adapters/gcp sets for the runtime image: MODEL_NAME, port 8501, /v1 routes."""
    env = {
        "MODEL_NAME": "hp2", "MODEL_BASE_PATH": "/models", "AIP_HTTP_PORT": "8501",
        "AIP_HEALTH_ROUTE": "/v1/models/hp2", "AIP_PREDICT_ROUTE": "/v1/models/hp2:predict",
        "AIP_STORAGE_URI": "gs://b/hp2/3/",
    }
    served = options(ENTRYPOINT, env)
    assert (served.rest_api_port, served.model_name) == (8501, "hp2")
    assert (served.saved_model_uri, served.model_base_path) == ("gs://b/hp2/3/", "")


@pytest.mark.parametrize(("argv", "message"), [
    (["--saved_model_uri=/a", "--model_base_path=/b"], "--saved_model_uri excludes"),
    (["--saved_model_uri=/a", "--model_config_file=/c"], "--saved_model_uri excludes"),
    (["--model_base_path=/b", "--batching_parameters=max_batch_size { value: 2 }"],
     "--batching_parameters is set without --enable_batching"),
    (["--model_base_path=/b", "--enable_batching", "--batching_parameters=x",
      "--batching_parameters_file=/f"], "are exclusive"),
    (["--model_base_path=/b", "--rest_api_health_route=health"], "must start with /"),
])
def test_hosting_flag_validation(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        parse_flags(argv, {})


# ---- stage_saved_model ----------------------------------------------------------------------


def test_a_local_saved_model_dir_is_linked_as_version_1(tmp_path: Path) -> None:
    base = stage_saved_model(str(SAVED_MODEL), "hp2", str(tmp_path))
    assert base == str(tmp_path / "hp2")
    assert (tmp_path / "hp2" / "1").resolve() == SAVED_MODEL.resolve()


def test_a_local_version_dir_layout_is_used_as_is(tmp_path: Path) -> None:
    assert stage_saved_model(str(TWO_VERSIONS), "hp2", str(tmp_path)) == str(TWO_VERSIONS)
    assert not list(tmp_path.iterdir())


def test_gcs_without_google_cloud_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    with pytest.raises(HostingError, match="pip install google-cloud-storage"):
        stage_saved_model("gs://bucket/model", "hp2", str(tmp_path))


# ---- real server processes ------------------------------------------------------------------


def hosting_env(**extra: str) -> dict[str, str]:
    """The test process's environment without hosting variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HOSTING_ENV)}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def start(args: list[str], rest_port: int, log_dir: Path, env: dict[str, str]) -> ServerProcess:
    """Starts ``python -m cloudserve_runtime <args>`` whose REST API is on ``rest_port``."""
    grpc_port = free_port()
    log_path = log_dir / f"hosting-{rest_port}.log"
    cmd = [sys.executable, "-m", "cloudserve_runtime", f"--port={grpc_port}", "--host=127.0.0.1",
           *args]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(proc, grpc_port, rest_port, log_path)
    wait_until_up(server)
    return server


def stop(server: ServerProcess) -> None:
    """SIGTERM; the stop must be graceful (exit status 0)."""
    status = server.stop()
    assert status == 0, f"server exited with {status} on SIGTERM:\n{server.log()}"


@pytest.fixture(scope="module")
def sagemaker(log_dir: Path) -> Iterator[httpx.Client]:
    """`serve` after ENTRYPOINT-style flags, on SAGEMAKER_BIND_TO_PORT, batching from the env."""
    port = free_port()
    env = hosting_env(SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_TFS_ENABLE_BATCHING="true")
    server = start(["--rest_api_port=1", "serve", f"--model_base_path={HALF_PLUS_TWO}"], port,
                   log_dir, env)
    try:
        with httpx.Client(base_url=server.rest_url, timeout=30.0) as client:
            yield client
    finally:
        stop(server)


@pytest.mark.slow
def test_sagemaker_ping(sagemaker: httpx.Client) -> None:
    response = sagemaker.get("/ping")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


@pytest.mark.slow
@pytest.mark.parametrize("headers", [
    {},
    {"Content-Type": "application/json; charset=utf-8"},
    {CUSTOM_ATTRIBUTES: "tfs-model-name=model"},
    {CUSTOM_ATTRIBUTES: "tfs-method=predict, tfs-model-name=model"},
])
def test_sagemaker_invocations(sagemaker: httpx.Client, headers: dict[str, str]) -> None:
    response = sagemaker.post("/invocations", json={"instances": [[1.0], [3.0]]}, headers=headers)
    assert (response.status_code, response.json()) == (200, {"predictions": [[2.5], [3.5]]})


@pytest.mark.slow
def test_sagemaker_invocations_errors(sagemaker: httpx.Client) -> None:
    unknown = sagemaker.post("/invocations", json={"instances": [1.0]},
                             headers={CUSTOM_ATTRIBUTES: "tfs-model-name=other"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Servable not found for request: Latest(other)"}
    csv = sagemaker.post("/invocations", content=b"1.0", headers={"Content-Type": "text/csv"})
    assert csv.status_code == 415 and "text/csv" in csv.json()["error"]
    assert sagemaker.get("/invocations").status_code == 405
    bad = sagemaker.post("/invocations", json={"foo": 1})
    assert bad.status_code == 400 and "'instances'" in bad.json()["error"]


@pytest.mark.slow
def test_sagemaker_batching_variables_reach_the_scheduler(sagemaker: httpx.Client) -> None:
    """SAGEMAKER_TFS_ENABLE_BATCHING=true with the default max batch size of 8."""
    assert sagemaker.post("/invocations", json={"instances": [1.0] * 8}).status_code == 200
    too_big = sagemaker.post("/invocations", json={"instances": [1.0] * 9})
    assert too_big.status_code == 400
    assert "Task size 9 is larger than maximum input batch size 8" in too_big.json()["error"]


@pytest.mark.slow
def test_sagemaker_serve_keeps_the_tf_serving_api(sagemaker: httpx.Client) -> None:
    response = sagemaker.post("/v1/models/model:predict", json={"instances": [2.0]})
    assert response.json() == {"predictions": [3.0]}


@pytest.mark.slow
def test_sagemaker_several_models_need_the_header(log_dir: Path) -> None:
    config = write_config(log_dir / "two_models.config", [
        f'    name: "a"\n    base_path: "{HALF_PLUS_TWO}"\n    model_platform: "tensorflow"',
        f'    name: "b"\n    base_path: "{TWO_VERSIONS}"\n    model_platform: "tensorflow"',
    ])
    port = free_port()
    server = start(["serve", f"--rest_api_port={port}", f"--model_config_file={config}"], port,
                   log_dir, hosting_env())
    try:
        body = {"instances": [[1.0]]}
        unnamed = httpx.post(f"{server.rest_url}/invocations", json=body, timeout=30.0)
        assert unnamed.status_code == 400
        assert "Several models are served (a, b)" in unnamed.json()["error"]
        named = httpx.post(f"{server.rest_url}/invocations", json=body, timeout=30.0,
                           headers={CUSTOM_ATTRIBUTES: "tfs-model-name=b"})
        assert (named.status_code, named.json()) == (200, {"predictions": [[2.5]]})
    finally:
        stop(server)


def vertex_check(server: ServerProcess) -> None:
    """The health and predict routes Vertex AI calls, plus the TF Serving routes beside them."""
    with httpx.Client(base_url=server.rest_url, timeout=30.0) as client:
        health = client.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ready"})
        predict = client.post("/predict", json={"instances": [[1.0]]})
        assert (predict.status_code, predict.json()) == (200, {"predictions": [[2.5]]})
        status = client.get("/v1/models/hp2").json()
        assert status["model_version_status"][0]["version"] == "1"
        assert client.get("/ping").status_code == 200


@pytest.mark.slow
def test_vertex_local_storage_uri(log_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = hosting_env(
        MODEL_NAME="hp2", AIP_HTTP_PORT=str(port), AIP_HEALTH_ROUTE="/health",
        AIP_PREDICT_ROUTE="/predict", AIP_STORAGE_URI=str(SAVED_MODEL), TMPDIR=str(tmp_path),
    )
    server = start([], port, log_dir, env)
    try:
        vertex_check(server)
    finally:
        stop(server)
    assert not list(tmp_path.iterdir()), "the staging directory outlived the server"
    assert SAVED_MODEL.joinpath("saved_model.pb").is_file()


@pytest.fixture(scope="module")
def gcs_emulator(log_dir: Path) -> Iterator[str]:
    """A gcp-storage-emulator holding half_plus_two at gs://models/exports/hp2/123/."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with start_gcs_emulator(log_dir / "gcs-emulator.log", default_bucket="models") as url:
        client = storage.Client(
            project="test", credentials=AnonymousCredentials(),
            client_options={"api_endpoint": url},
        )
        bucket = client.bucket("models")
        for path in SAVED_MODEL.rglob("*"):
            if path.is_file():
                name = f"exports/hp2/123/{path.relative_to(SAVED_MODEL).as_posix()}"
                bucket.blob(name).upload_from_filename(str(path))
        yield url


@pytest.mark.slow
def test_vertex_gcs_storage_uri(gcs_emulator: str, log_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = hosting_env(
        MODEL_NAME="hp2", AIP_HTTP_PORT=str(port), AIP_HEALTH_ROUTE="/health",
        AIP_PREDICT_ROUTE="/predict", AIP_STORAGE_URI="gs://models/exports/hp2/123/",
        STORAGE_EMULATOR_HOST=gcs_emulator, TMPDIR=str(tmp_path),
    )
    server = start([], port, log_dir, env)
    try:
        vertex_check(server)
    finally:
        stop(server)
    assert not list(tmp_path.iterdir()), "the staging directory outlived the server"


@pytest.mark.slow
def test_vertex_gcs_storage_uri_with_no_objects(gcs_emulator: str, tmp_path: Path) -> None:
    env = hosting_env(AIP_STORAGE_URI="gs://models/missing", STORAGE_EMULATOR_HOST=gcs_emulator,
                      TMPDIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "cloudserve_runtime", "--port=0", f"--rest_api_port={free_port()}"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Failed to start server. Error: No objects under gs://models/missing"
    ]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_gcs_storage_uri_without_google_cloud_storage_exits_1(tmp_path: Path) -> None:
    script = (
        "import runpy, sys\n"
        "sys.modules['google.cloud.storage'] = None\n"
        "sys.argv[1:] = ['--port=0', '--rest_api_port=1']\n"
        "runpy.run_module('cloudserve_runtime', run_name='__main__')\n"
    )
    env = hosting_env(AIP_STORAGE_URI="gs://models/hp2", TMPDIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Failed to start server. Error: gs://models/hp2 needs google-cloud-storage, which this "
        "image lacks: pip install google-cloud-storage (see runtime_image/README.md)"
    ]
