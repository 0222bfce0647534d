"""The example models: each exports into TF Serving's layout with the documented signatures."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "export_models.py"


@pytest.fixture(scope="module")
def export_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_models", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signature_io(path: Path) -> dict[str, tuple[dict[str, tuple], list[str]]]:
    """{signature: ({input alias: (dtype, shape)}, sorted output aliases)} of a SavedModel."""
    loaded = tf.saved_model.load(str(path))
    result = {}
    for name, function in loaded.signatures.items():
        inputs = {
            alias: (spec.dtype.name, tuple(spec.shape.as_list()))
            for alias, spec in function.structured_input_signature[1].items()
        }
        result[name] = (inputs, sorted(function.structured_outputs))
    return result


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("half_plus_two", {"serving_default": ({"x": ("float32", (None, 1))}, ["y"])}),
        ("linear", {"serving_default": ({"x": ("float32", (None, 1))}, ["y"])}),
        (
            "mlp_two_inputs",
            {
                "your_prediction": (
                    {"age": ("float32", (None, 1)), "features": ("float32", (None, 4))},
                    ["score"],
                )
            },
        ),
        ("cnn_jpeg", {"serving_default": ({"inputs": ("string", (None,))}, ["probabilities"])}),
        ("bench_mlp", {"serving_default": ({"x": ("float32", (None, 32))}, ["y"])}),
        ("bench_cnn", {"serving_default": ({"x": ("float32", (None, 32, 32, 3))}, ["y"])}),
    ],
)
def test_signatures(export_models: ModuleType, tmp_path: Path, name: str, expected: dict) -> None:
    target = export_models.export(name, tmp_path / name)
    assert target == tmp_path / name / "1"
    assert (target / "saved_model.pb").is_file()
    assert signature_io(target) == expected


def test_half_plus_two_and_linear_predict(export_models: ModuleType, tmp_path: Path) -> None:
    export_models.export("half_plus_two", tmp_path / "m", version=1)
    export_models.export("linear", tmp_path / "m", version=2)
    x = tf.constant([[1.0], [4.0]])
    v1 = tf.saved_model.load(str(tmp_path / "m" / "1")).signatures["serving_default"]
    v2 = tf.saved_model.load(str(tmp_path / "m" / "2")).signatures["serving_default"]
    np.testing.assert_allclose(v1(x=x)["y"].numpy(), [[2.5], [4.0]])
    np.testing.assert_allclose(v2(x=x)["y"].numpy(), [[3.0], [9.0]])


def test_linear_weight_and_bias(export_models: ModuleType, tmp_path: Path) -> None:
    export_models.export("linear", tmp_path, weight=-1.0, bias=0.5)
    fn = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    np.testing.assert_allclose(fn(x=tf.constant([[2.0]]))["y"].numpy(), [[-1.5]])


def test_exports_are_deterministic(export_models: ModuleType, tmp_path: Path) -> None:
    x = tf.constant(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32))
    outputs = []
    for attempt in ("a", "b"):
        target = export_models.export("bench_mlp", tmp_path / attempt)
        fn = tf.saved_model.load(str(target)).signatures["serving_default"]
        outputs.append(fn(x=x)["y"].numpy())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_cnn_jpeg_request_body_runs(export_models: ModuleType, tmp_path: Path) -> None:
    target = export_models.export("cnn_jpeg", tmp_path)
    body = export_models.cnn_jpeg_request_body(count=2)
    examples = [base64.b64decode(instance["b64"]) for instance in body["instances"]]
    fn = tf.saved_model.load(str(target)).signatures["serving_default"]
    probabilities = fn(inputs=tf.constant(examples))["probabilities"].numpy()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-5)


def test_mlp_two_inputs_scores(export_models: ModuleType, tmp_path: Path) -> None:
    target = export_models.export("mlp_two_inputs", tmp_path)
    fn = tf.saved_model.load(str(target)).signatures["your_prediction"]
    score = fn(age=tf.constant([[0.3]]), features=tf.ones([1, 4]))["score"].numpy()
    assert score.shape == (1, 1) and 0.0 < score[0, 0] < 1.0


def test_reexport_replaces_version_and_keeps_others(
    export_models: ModuleType, tmp_path: Path
) -> None:
    export_models.export("half_plus_two", tmp_path, version=1)
    (tmp_path / "1" / "stale.txt").write_text("old")
    export_models.export("linear", tmp_path, version=2)
    export_models.export("half_plus_two", tmp_path, version=1)
    assert not (tmp_path / "1" / "stale.txt").exists()
    assert (tmp_path / "2" / "saved_model.pb").is_file()


def test_bad_arguments(export_models: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        export_models.export("resnet", tmp_path)
    with pytest.raises(ValueError, match="version must be >= 1"):
        export_models.export("linear", tmp_path, version=0)


@pytest.mark.slow
def test_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "linear", "--out", str(tmp_path), "--version", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == str(tmp_path / "3")
    assert (tmp_path / "3" / "saved_model.pb").is_file()
