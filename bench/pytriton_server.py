"""The PyTriton peer: NVIDIA's PyTriton (Triton Inference Server's C++ HTTP/gRPC front end with
dynamic batching) calling the SavedModel's ``serving_default`` signature from Python.

It speaks the KServe v2 protocol (``POST /v2/models/<name>/infer`` with
``{"inputs": [{"name", "shape", "datatype": "FP32", "data"}]}``), not TF Serving's. Run by
bench/run_bench.py with the interpreter of the virtualenv it makes (``nvidia-pytriton`` and
TensorFlow through ``--system-site-packages``). Bench-only; binds 127.0.0.1.

Usage: python bench/pytriton_server.py --model_dir DIR/1 --model_name m --http_port 8000
    --grpc_port 8001 --metrics_port 8002
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig  # noqa: E402

MAX_BATCH = 64
"""Largest dynamic batch, as the runtime's ``max_batch_size`` in the bench."""


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True, help="a SavedModel version directory")
    parser.add_argument("--model_name", default="m")
    parser.add_argument("--http_port", type=int, required=True)
    parser.add_argument("--grpc_port", type=int, required=True)
    parser.add_argument("--metrics_port", type=int, required=True)
    args = parser.parse_args()

    loaded = tf.saved_model.load(args.model_dir)
    signature = loaded.signatures["serving_default"]
    ((input_name, spec),) = signature.structured_input_signature[1].items()
    output_name = next(iter(signature.structured_outputs))

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        outputs = signature(**{input_name: tf.constant(inputs[input_name])})
        return {output_name: outputs[output_name].numpy()}

    row_shape = tuple(-1 if d is None else d for d in spec.shape[1:])
    out_spec = signature.structured_outputs[output_name]
    out_shape = tuple(-1 if d is None else d for d in out_spec.shape[1:])
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.model_name,
            infer_func=infer,
            inputs=[Tensor(name=input_name, dtype=np.float32, shape=row_shape)],
            outputs=[Tensor(name=output_name, dtype=np.float32, shape=out_shape)],
            config=ModelConfig(
                max_batch_size=MAX_BATCH,
                batcher=DynamicBatcher(max_queue_delay_microseconds=0),
            ),
            strict=True,
        )
        triton.serve()


if __name__ == "__main__":
    main()
