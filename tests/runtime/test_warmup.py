"""Warm-up like TF Serving: ``assets.extra/tf_serving_warmup_requests`` is replayed while a
version loads, before it is AVAILABLE; a record that fails fails the load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cloudserve_runtime.errors import ServingError
from tests.conftest import ROOT
from tests.runtime.conftest import HALF_PLUS_TWO, run_server, serving

WRITER = ROOT / "tests" / "cli" / "write_exports.py"


def model_with_warmup(base: Path, requests: list[dict], signature: str = "") -> Path:
    shutil.copytree(HALF_PLUS_TWO / "00000123", base / "1")
    args = [sys.executable, str(WRITER), "warmup", str(base / "1"), json.dumps(requests)]
    subprocess.run([*args, *([signature] if signature else [])], check=True)
    return base


def test_records_are_replayed_before_the_version_is_available(log_dir: Path):
    base = model_with_warmup(log_dir / "warm", [{"x": [[1.0]]}, {"x": [[2.0], [3.0]]}])
    with serving("--model_name=hp", f"--model_base_path={base}", log_dir=log_dir) as server:
        answer = httpx.post(
            f"{server.rest_url}/v1/models/hp:predict", json={"instances": [1.0]}, timeout=30
        )
        assert answer.json() == {"predictions": [2.5]}
        log = server.log()
    replayed = log.index("Number of warmup records read: 2")
    assert replayed < log.index("Successfully loaded servable version {name: hp version: 1}")


def test_a_failing_record_keeps_the_version_from_loading(log_dir: Path):
    base = model_with_warmup(log_dir / "cold", [{"no_such_input": [[1.0]]}])
    flags = ("--model_name=hp", f"--model_base_path={base}", "--max_num_load_retries=0")
    server = run_server(*flags, log_dir=log_dir, wait=False)
    try:
        assert server.proc.wait(timeout=90) == 1  # like TF Serving: no model, no server
    finally:
        server.stop()
    log = server.log()
    assert "1 model(s) did not become available" in log
    assert (
        "error: Warmup record: input tensor alias not found in signature: no_such_input. "
        "Inputs expected to be in the set {x}." in log
    )
    assert "Successfully loaded servable version" not in log


def test_classify_and_regress_records_are_replayed_too(tmp_path: Path):
    """In process: the servable replays every predict, classify and regress record."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow_serving.apis import prediction_log_pb2

    from cloudserve_runtime.servable import WARMUP_FILE, SavedModelServable

    export = shutil.copytree(HALF_PLUS_TWO / "00000123", tmp_path / "1")
    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(3.0)
    records = []
    for kind, signature in (("classify_log", "classify_x_to_y"), ("regress_log", "regress_x_to_y")):
        log = prediction_log_pb2.PredictionLog()
        request = getattr(log, kind).request
        request.model_spec.signature_name = signature
        request.input.example_list.examples.append(example)
        records.append(log)
    predict = prediction_log_pb2.PredictionLog()
    predict.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], tf.float32))
    records.append(predict)
    (export / "assets.extra").mkdir()
    with tf.io.TFRecordWriter(str(export / WARMUP_FILE)) as writer:
        for log in records:
            writer.write(log.SerializeToString())
    servable = SavedModelServable(str(export))
    try:
        assert servable.warm_up() == 3
        bad = prediction_log_pb2.PredictionLog()
        bad.regress_log.request.model_spec.signature_name = "serving_default"
        bad.regress_log.request.input.example_list.examples.append(example)
        with tf.io.TFRecordWriter(str(export / WARMUP_FILE)) as writer:
            writer.write(bad.SerializeToString())
        with pytest.raises(ServingError, match="No regression inputs found in SignatureDef"):
            servable.warm_up()
    finally:
        servable.close()
