"""Versions, policies, labels (incl. cloudserve's ``default``), reloads, hot swaps (spec §4)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tests.runtime.conftest import (
    HALF_PLUS_TWO,
    TWO_VERSIONS,
    ServerProcess,
    copy_model,
    serving,
    wait_for,
    write_config,
)

MODEL = "hp2"


class Client:
    """gRPC helpers for one server."""

    def __init__(self, server: ServerProcess) -> None:
        self.channel = grpc.insecure_channel(server.grpc_target)
        self.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_stub = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def predict(
        self, version: int | None = None, label: str | None = None, name: str = MODEL
    ) -> tuple[int, list[float]]:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]], dtype=np.float32)))
        result = self.predict_stub.Predict(request, 10.0)
        return result.model_spec.version.value, list(result.outputs["y"].float_val)

    def states(self, name: str = MODEL) -> dict[int, str]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        result = self.model_stub.GetModelStatus(request, 10.0)
        names = get_model_status_pb2.ModelVersionStatus.State.Name
        return {s.version: names(s.state) for s in result.model_version_status}

    def status_of(self, version: int, name: str = MODEL) -> get_model_status_pb2.ModelVersionStatus:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        request.model_spec.version.value = version
        return self.model_stub.GetModelStatus(request, 10.0).model_version_status[0]

    def reload(self, config_text: str, timeout: float = 30.0) -> None:
        config = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
        request = model_management_pb2.ReloadConfigRequest(config=config)
        self.model_stub.HandleReloadConfigRequest(request, timeout)


def config_text(
    base_path: Path, policy: str = "", labels: dict[str, int] | None = None, name: str = MODEL
) -> str:
    lines = [f'name: "{name}"', f'base_path: "{base_path}"', 'model_platform: "tensorflow"']
    if policy:
        lines.append(f"model_version_policy {{ {policy} }}")
    for key, value in (labels or {}).items():
        lines.append(f'version_labels {{ key: "{key}" value: {value} }}')
    return "model_config_list {\n  config {\n" + "\n".join(lines) + "\n  }\n}\n"


@pytest.fixture(scope="module")
def labelled(log_dir: Path) -> Iterator[tuple[ServerProcess, Path]]:
    """2_versions with policy all and labels stable=123/default=123, config polled every 0.5 s."""
    config = log_dir / "labelled.config"
    config.write_text(config_text(TWO_VERSIONS, "all {}", {"stable": 123, "default": 123}))
    with serving(
        f"--model_config_file={config}",
        "--model_config_file_poll_wait_seconds=0.5",
        "--allow_version_labels_for_unavailable_models",
        log_dir=log_dir,
        rest=False,
    ) as server:
        yield server, config


def test_policy_all_serves_both_and_default_label_wins(labelled) -> None:
    client = Client(labelled[0])
    assert client.states() == {124: "AVAILABLE", 123: "AVAILABLE"}
    assert client.predict() == (123, [2.5])  # the `default` label, not the latest
    assert client.predict(version=124) == (124, [2.5])
    assert client.predict(label="stable")[0] == 123


def test_grpc_reload_moves_labels(labelled) -> None:
    client = Client(labelled[0])
    client.reload(config_text(TWO_VERSIONS, "all {}", {"stable": 123, "default": 124}))
    assert client.predict()[0] == 124
    client.reload(config_text(TWO_VERSIONS, "all {}", {"stable": 123}))
    assert client.predict()[0] == 124  # no default label: latest
    client.reload(config_text(TWO_VERSIONS, "all {}", {"stable": 123, "default": 123}))
    assert client.predict()[0] == 123


def test_label_rules(labelled) -> None:
    client = Client(labelled[0])
    with pytest.raises(grpc.RpcError) as info:
        client.reload(config_text(TWO_VERSIONS, "all {}", {"stable": 999, "default": 123}))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "Request to assign label to version 999 of model hp2, which is not currently "
        "available for inference" in info.value.details()
    )
    # With the flag, a *new* label may point at a version that is not loaded.
    client.reload(
        config_text(TWO_VERSIONS, "all {}", {"stable": 123, "default": 123, "canary": 999})
    )
    with pytest.raises(grpc.RpcError) as info:
        client.predict(label="canary")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Specific(hp2, 999)" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        client.predict(label="nope")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label: nope" in info.value.details()


def test_reload_rejects_bad_config(labelled) -> None:
    client = Client(labelled[0])
    with pytest.raises(grpc.RpcError) as info:
        client.reload(config_text(Path("relative/path")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "to have an absolute path or URI" in info.value.details()
    assert client.predict()[1] == [2.5]


def test_config_file_polling_applies_policy_and_labels(labelled) -> None:
    server, config = labelled
    client = Client(server)
    config.write_text(config_text(TWO_VERSIONS, "specific { versions: 124 }", {"default": 124}))
    wait_for(lambda: client.states().get(123) == "END", what="123 unloaded")
    assert client.predict() == (124, [2.5])
    with pytest.raises(grpc.RpcError) as info:
        client.predict(version=123)
    assert "Servable not found for request: Specific(hp2, 123)" in info.value.details()
    # A file that does not parse is ignored; the old config stays.
    config.write_text("model_config_list { config { name: ")
    time.sleep(1.2)
    assert client.predict() == (124, [2.5])
    config.write_text(config_text(TWO_VERSIONS))  # latest {1}: 124, default label gone
    time.sleep(1.2)
    assert client.predict()[0] == 124
    assert server.proc.poll() is None


def test_reload_adds_and_removes_models(labelled) -> None:
    client = Client(labelled[0])
    two = config_text(TWO_VERSIONS).replace("model_config_list {\n", "")
    other = config_text(HALF_PLUS_TWO, name="other")
    client.reload(other.rstrip().removesuffix("}") + two)
    assert client.predict(name="other") == (123, [2.5])
    client.reload(config_text(HALF_PLUS_TWO, name="other"))
    wait_for(lambda: set(client.states().values()) == {"END"}, what="hp2 unloaded")
    with pytest.raises(grpc.RpcError) as info:
        client.predict()
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_hot_reload_under_load_has_no_failures(log_dir: Path, tmp_path: Path) -> None:
    base = copy_model(TWO_VERSIONS, tmp_path / "model", ["00000123"])
    with serving(
        f"--model_name={MODEL}",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=0.2",
        log_dir=log_dir,
        rest=False,
    ) as server:
        client = Client(server)
        seen: set[int] = set()
        failures: list[BaseException] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                try:
                    version, values = client.predict()
                    assert values == [2.5]
                    seen.add(version)
                except BaseException as exc:  # collected and asserted on below
                    failures.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            shutil.copytree(TWO_VERSIONS / "00000124", base / "00000124")  # written in place
            wait_for(
                lambda: client.states() == {124: "AVAILABLE", 123: "END"},
                30,
                "124 AVAILABLE and 123 END",
            )
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not failures, failures[:3]
        assert seen == {123, 124}


def test_failing_version_is_end_while_others_serve(log_dir: Path, tmp_path: Path) -> None:
    base = copy_model(TWO_VERSIONS, tmp_path / "model", ["00000123"])
    broken = base / "00000124"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf")
    config = write_config(
        tmp_path / "config",
        [
            f'name: "{MODEL}" base_path: "{base}" model_platform: "tensorflow" '
            "model_version_policy { all {} }"
        ],
    )
    with serving(
        f"--model_config_file={config}",
        "--max_num_load_retries=1",
        "--load_retry_interval_micros=1000",
        log_dir=log_dir,
        rest=False,
    ) as server:
        client = Client(server)
        wait_for(lambda: client.states().get(124) == "END", what="124 END")
        status = client.status_of(124)
        assert status.status.error_code != 0
        assert status.status.error_message
        assert client.states()[123] == "AVAILABLE"
        assert client.predict() == (123, [2.5])
