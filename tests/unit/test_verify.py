"""The smoke request's sources: warm-up records written by TensorFlow's own protos and TFRecord
writer (read back without TensorFlow), requests built from signatures, user samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cloudserve.errors import ConfigError
from cloudserve.export import inspect
from cloudserve.records import ExportInfo, SignatureInfo, TensorInfo
from cloudserve.verify import (
    WARMUP_FILE,
    SmokeRequest,
    built_request,
    check_answer,
    load_sample,
    predict_body,
    read_tfrecords,
    smoke_request,
    tensor_to_json,
    warmup_request,
)

tf = pytest.importorskip("tensorflow", reason="writes TFRecords with TensorFlow's own writer")
prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")


def write_warmup(export: Path, requests: list[dict[str, np.ndarray]], signature: str = "") -> Path:
    path = export / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs in requests:
            log = prediction_log_pb2.PredictionLog()
            request = log.predict_log.request
            request.model_spec.name = "ignored"
            request.model_spec.signature_name = signature
            for alias, value in inputs.items():
                request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
            writer.write(log.SerializeToString())
    return path


@pytest.fixture
def hp_export(testdata: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "hp" / "1"
    shutil.copytree(testdata / "saved_model_half_plus_two_tf2_cpu" / "00000123", dest)
    return dest


@pytest.mark.parametrize(
    "value",
    [
        np.array([[1.5], [2.0]], dtype=np.float32),
        np.array([[1, -2, 3]], dtype=np.int32),
        np.array([-(2**40), 7], dtype=np.int64),
        np.array([True, False, True]),
        np.array(3.25, dtype=np.float64),
        np.array([[0.5, 1.0], [2.0, 4.0]], dtype=np.float16),
        np.array([[7, 255]], dtype=np.uint8),
    ],
)
def test_tensor_protos_become_rest_json(value: np.ndarray):
    proto = tf.make_tensor_proto(value)
    assert tensor_to_json(proto.SerializeToString()) == value.tolist()


def test_tensor_content_and_broadcast_values():
    packed = tf.make_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert packed.tensor_content  # large enough that TF packs it as raw bytes
    assert tensor_to_json(packed.SerializeToString()) == [[0, 1, 2], [3, 4, 5]]
    broadcast = tf.make_tensor_proto(2.0, shape=[2, 2])
    assert tensor_to_json(broadcast.SerializeToString()) == [[2.0, 2.0], [2.0, 2.0]]


def test_string_tensors_are_text_or_b64():
    proto = tf.make_tensor_proto(np.array([b"hello", b"\xff\xd8jpeg"], dtype=object))
    assert tensor_to_json(proto.SerializeToString()) == ["hello", {"b64": "/9hqcGVn"}]


def test_warmup_records_give_the_first_predict_request(hp_export: Path):
    write_warmup(
        hp_export,
        [{"x": np.array([[1.0], [3.0]], dtype=np.float32)}, {"x": np.zeros((1, 1), np.float32)}],
        signature="serving_default",
    )
    found = warmup_request(inspect(hp_export))
    assert found == SmokeRequest(
        {"instances": [[1.0], [3.0]]},  # serving_default is not named: Vertex takes no name
        f"warm-up record {hp_export / WARMUP_FILE}",
    )
    assert len(list(read_tfrecords(hp_export / WARMUP_FILE))) == 2


def test_truncated_warmup_file_is_a_config_error(hp_export: Path):
    path = write_warmup(hp_export, [{"x": np.ones((1, 1), np.float32)}])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ConfigError, match="truncated"):
        warmup_request(inspect(hp_export))


def test_order_sample_then_warmup_then_built(hp_export: Path, tmp_path: Path):
    export = inspect(hp_export)
    assert export.signatures["serving_default"].inputs["x"].shape == (1,)
    assert smoke_request(export).payload == {"instances": [0.0]}
    write_warmup(hp_export, [{"x": np.array([[5.0]], np.float32)}])
    assert smoke_request(export).payload == {"instances": [[5.0]]}
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"instances": [[9.0]]}))
    assert smoke_request(export, sample=sample).payload == {"instances": [[9.0]]}


def _export(inputs: dict[str, TensorInfo], name: str = "serving_default") -> ExportInfo:
    signature = SignatureInfo("tensorflow/serving/predict", inputs, {})
    return ExportInfo(
        path=Path("/nowhere"),
        base_path=None,
        version="1",
        total_bytes=0,
        file_count=0,
        files=(),
        tf_version="2.21.0",
        saved_model_file="saved_model.pb",
        has_variables=False,
        signatures={name: signature},
    )


def test_built_request_shapes_and_dtypes():
    export = _export(
        {
            "image": TensorInfo("DT_FLOAT", (-1, 2, 2), "image:0"),
            "ids": TensorInfo("DT_INT64", (-1,), "ids:0"),
            "flag": TensorInfo("DT_BOOL", None, "flag:0"),
        },
        name="predict_it",
    )
    request = built_request(export, None)
    assert request.payload == {
        "signature_name": "predict_it",
        "instances": [{"flag": False, "ids": 0, "image": [[0.0, 0.0], [0.0, 0.0]]}],
    }


def test_bodies_are_rows_when_batches_agree_else_columns():
    assert predict_body({"x": [[1.0], [2.0]]}) == {"instances": [[1.0], [2.0]]}
    assert predict_body({"a": [1, 2], "b": [[3], [4]]}, "s") == {
        "signature_name": "s",
        "instances": [{"a": 1, "b": [3]}, {"a": 2, "b": [4]}],
    }
    assert predict_body({"a": [1, 2], "b": [3]}) == {"inputs": {"a": [1, 2], "b": [3]}}
    assert predict_body({"scalar": 2.0}) == {"inputs": {"scalar": 2.0}}


def test_string_inputs_get_no_built_request():
    export = _export({"jpeg": TensorInfo("DT_STRING", (-1,), "jpeg:0")})
    assert built_request(export, None) == "input 'jpeg' of signature 'serving_default' is DT_STRING"
    reason = smoke_request(export)
    assert isinstance(reason, str) and reason.endswith("pass --sample FILE")


def test_huge_inputs_get_no_built_request():
    export = _export({"x": TensorInfo("DT_FLOAT", (-1, 1000, 1000), "x:0")})
    assert "1000000 values" in built_request(export, None)


def test_sample_files_are_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sample(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_sample(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a TF Serving predict body"):
        load_sample(tmp_path / "list.json")


def test_answers_without_predictions_are_failures():
    assert check_answer({"predictions": [[1.0]]}) is None
    assert check_answer({"outputs": {"y": [1]}}) is None
    assert "no predictions" in check_answer({"result": 1})
    assert check_answer({"error": "boom"}) == "boom"
    assert "not a JSON object" in check_answer([1, 2])
