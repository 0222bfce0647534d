"""The naive baseline: a threaded Flask server that runs the model once per request.

It loads the SavedModel with ``tf.saved_model.load`` and calls its ``serving_default``
signature for every request, with no batching: the pattern TF Serving's docs advise against.
Bench-only; binds 127.0.0.1. Equivalent to ``flask run --with-threads``.

Usage: python bench/naive_flask_server.py --model_dir DIR/1 --model_name m --port 8602
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from flask import Flask, Response, jsonify, request  # noqa: E402


def create_app(model_dir: str, model_name: str) -> Flask:
    """A Flask app answering ``POST /v1/models/<model_name>:predict`` in TF Serving's row format.

    The model must have one input; ``instances`` become that input, and the first output is
    returned as ``predictions``.
    """
    loaded = tf.saved_model.load(model_dir)
    signature = loaded.signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]
    dtype = signature.structured_input_signature[1][input_name].dtype.as_numpy_dtype

    app = Flask(__name__)
    app.config["loaded_model"] = loaded  # keeps the variables alive

    @app.post(f"/v1/models/{model_name}:predict")
    def predict() -> Response:
        instances = request.get_json()["instances"]
        outputs = signature(**{input_name: tf.constant(np.asarray(instances, dtype=dtype))})
        first = next(iter(outputs.values()))
        return jsonify(predictions=first.numpy().tolist())

    @app.get(f"/v1/models/{model_name}")
    def status() -> Response:
        return jsonify(model_version_status=[{"version": "1", "state": "AVAILABLE"}])

    return app


def main() -> None:
    """Serve until killed, one thread per connection."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True, help="a SavedModel directory")
    parser.add_argument("--model_name", default="m")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
    create_app(args.model_dir, args.model_name).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
