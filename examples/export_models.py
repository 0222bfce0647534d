"""Write the example SavedModels in TF Serving's base-path layout (``DIR/<version>/``).

Usage::

    python examples/export_models.py half_plus_two --out /tmp/models/half_plus_two
    python examples/export_models.py linear --out /tmp/models/linear --version 2 --weight 2 --bias 1

Models (inputs → outputs, signature):

* ``half_plus_two``: ``x`` float [None, 1] → ``y = 0.5x + 2``, ``serving_default``.
* ``linear``: ``x`` float [None, 1] → ``y = weight·x + bias``, ``serving_default``.
* ``mlp_two_inputs``: a Keras MLP, ``age`` [None, 1] and ``features`` [None, 4] → ``score``
  [None, 1], signature ``your_prediction`` only (no ``serving_default``).
* ``cnn_jpeg``: ``inputs``, serialized ``tf.Example`` protos whose ``image/encoded`` feature holds
  a JPEG, decoded and resized to 32×32 → ``probabilities`` [None, 10], ``serving_default``.
* ``bench_mlp``: ``x`` float [None, 32] → Dense 256 relu → Dense 256 relu → Dense 1 → ``y``.
* ``bench_cnn``: ``x`` float [None, 32, 32, 3] → Conv 32 → max-pool → Conv 64 → global average
  pool → Dense 10 → ``y``.

Weights are drawn from a seeded generator, so every export of a model computes the same function.
Importable: :func:`export` writes one model and :func:`cnn_jpeg_request_body` builds a REST
predict body for ``cnn_jpeg``.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SEED = 20240101
JPEG_FEATURE = "image/encoded"


def _weights(rng: np.random.Generator, *shape: int) -> tf.Variable:
    """A Glorot-uniform float32 variable drawn from ``rng``."""
    fan_in = int(np.prod(shape[:-1]))
    limit = np.sqrt(6.0 / (fan_in + shape[-1]))
    return tf.Variable(rng.uniform(-limit, limit, size=shape).astype(np.float32))


def _bias(size: int) -> tf.Variable:
    return tf.Variable(np.full(size, 0.01, dtype=np.float32))


class _Linear(tf.Module):
    """``y = weight·x + bias`` on a [None, 1] input."""

    def __init__(self, weight: float, bias: float) -> None:
        super().__init__()
        self.weight = tf.Variable(weight, dtype=tf.float32)
        self.bias = tf.Variable(bias, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.weight * x + self.bias}


class _BenchMLP(tf.Module):
    """32 features → Dense 256 relu → Dense 256 relu → Dense 1."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.w1, self.b1 = _weights(rng, 32, 256), _bias(256)
        self.w2, self.b2 = _weights(rng, 256, 256), _bias(256)
        self.w3, self.b3 = _weights(rng, 256, 1), _bias(1)

    @tf.function(input_signature=[tf.TensorSpec([None, 32], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden = tf.nn.relu(x @ self.w1 + self.b1)
        hidden = tf.nn.relu(hidden @ self.w2 + self.b2)
        return {"y": hidden @ self.w3 + self.b3}


class _SmallCNN(tf.Module):
    """[N, 32, 32, 3] → Conv 3×3 → max-pool 2 → Conv 3×3 → global average pool → Dense 10."""

    def __init__(self, rng: np.random.Generator, filters1: int, filters2: int) -> None:
        super().__init__()
        self.k1, self.c1 = _weights(rng, 3, 3, 3, filters1), _bias(filters1)
        self.k2, self.c2 = _weights(rng, 3, 3, filters1, filters2), _bias(filters2)
        self.w, self.b = _weights(rng, filters2, 10), _bias(10)

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        hidden = tf.nn.relu(tf.nn.conv2d(images, self.k1, 1, "SAME") + self.c1)
        hidden = tf.nn.max_pool2d(hidden, 2, 2, "VALID")
        hidden = tf.nn.relu(tf.nn.conv2d(hidden, self.k2, 1, "SAME") + self.c2)
        return tf.reduce_mean(hidden, axis=[1, 2]) @ self.w + self.b


class _BenchCNN(_SmallCNN):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng, 32, 64)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.logits(x)}


class _JpegCNN(_SmallCNN):
    """Parses tf.Example protos, decodes their JPEG and classifies it into 10 classes."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng, 8, 16)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_example(inputs, {JPEG_FEATURE: tf.io.FixedLenFeature([], tf.string)})

        def decode(jpeg: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_jpeg(jpeg, channels=3)
            return tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), [32, 32])

        images = tf.map_fn(
            decode,
            features[JPEG_FEATURE],
            fn_output_signature=tf.TensorSpec([32, 32, 3], tf.float32),
        )
        return {"probabilities": tf.nn.softmax(self.logits(images))}


def _mlp_two_inputs(rng: np.random.Generator) -> tuple[tf.Module, dict[str, Any]]:
    """A Keras functional MLP over two named inputs, served as ``your_prediction``."""
    import keras

    keras.utils.set_random_seed(int(rng.integers(2**31)))
    age = keras.Input(shape=(1,), name="age")
    features = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Concatenate()([age, features])
    hidden = keras.layers.Dense(8, activation="relu")(hidden)
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
    model = keras.Model(inputs={"age": age, "features": features}, outputs=score)

    module = tf.Module()
    module.model = model

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 1], tf.float32, name="age"),
            tf.TensorSpec([None, 4], tf.float32, name="features"),
        ]
    )
    def predict(age: tf.Tensor, features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"score": model({"age": age, "features": features})}

    module.predict = predict
    return module, {"your_prediction": predict}


def _serving_default(module: tf.Module) -> tuple[tf.Module, dict[str, Any]]:
    return module, {"serving_default": module.serve}


def _build(name: str, weight: float, bias: float) -> tuple[tf.Module, dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    builders: dict[str, Callable[[], tuple[tf.Module, dict[str, Any]]]] = {
        "half_plus_two": lambda: _serving_default(_Linear(0.5, 2.0)),
        "linear": lambda: _serving_default(_Linear(weight, bias)),
        "mlp_two_inputs": lambda: _mlp_two_inputs(rng),
        "cnn_jpeg": lambda: _serving_default(_JpegCNN(rng)),
        "bench_mlp": lambda: _serving_default(_BenchMLP(rng)),
        "bench_cnn": lambda: _serving_default(_BenchCNN(rng)),
    }
    return builders[name]()


MODEL_NAMES = (
    "half_plus_two",
    "linear",
    "mlp_two_inputs",
    "cnn_jpeg",
    "bench_mlp",
    "bench_cnn",
)


def export(
    name: str,
    out: str | os.PathLike[str],
    *,
    version: int = 1,
    weight: float = 2.0,
    bias: float = 1.0,
) -> Path:
    """Write model ``name`` as a SavedModel at ``out/<version>/``.

    An existing ``out/<version>/`` directory is replaced; other versions under ``out`` are kept.

    Args:
        name: One of :data:`MODEL_NAMES`.
        out: The model's base path.
        version: Version number (directory name), ≥ 1.
        weight: Weight of ``linear``; ignored by the other models.
        bias: Bias of ``linear``; ignored by the other models.

    Returns:
        The version directory written.

    Raises:
        ValueError: for an unknown model name or a version < 1.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if version < 1:
        raise ValueError(f"version must be >= 1; got {version}")
    module, signatures = _build(name, weight, bias)
    target = Path(out) / str(version)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(target), signatures=signatures)
    return target


def sample_jpeg_example(seed: int = 0, height: int = 48, width: int = 40) -> bytes:
    """A serialized tf.Example whose ``image/encoded`` feature is a small generated JPEG."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(pixels).numpy()
    example = tf.train.Example(
        features=tf.train.Features(
            feature={JPEG_FEATURE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg]))}
        )
    )
    return example.SerializeToString()


def cnn_jpeg_request_body(count: int = 1) -> dict[str, Any]:
    """A REST predict body for ``cnn_jpeg``: ``count`` b64-encoded tf.Example instances."""
    return {
        "instances": [
            {"b64": base64.b64encode(sample_jpeg_example(seed)).decode("ascii")}
            for seed in range(count)
        ]
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=MODEL_NAMES, help="which example model to export")
    parser.add_argument("--out", required=True, help="model base path; writes OUT/<version>/")
    parser.add_argument("--version", type=int, default=1, help="version number (default 1)")
    parser.add_argument("--weight", type=float, default=2.0, help="linear: weight (default 2.0)")
    parser.add_argument("--bias", type=float, default=1.0, help="linear: bias (default 1.0)")
    args = parser.parse_args(argv)
    try:
        target = export(
            args.name, args.out, version=args.version, weight=args.weight, bias=args.bias
        )
    except ValueError as e:
        parser.error(str(e))
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
