"""Writes the SavedModels the verify/Keras 3/warm-up tests need, at test time (run as a script,
so the test process itself never imports TensorFlow).

    python tests/cli/write_exports.py keras3 DIR    # Keras 3 model, tf.saved_model.save(DIR)
    python tests/cli/write_exports.py broken DIR    # loads fine, fails every predict
    python tests/cli/write_exports.py warmup DIR JSON [SIGNATURE]
        # DIR/assets.extra/tf_serving_warmup_requests: one PredictLog per JSON object
        # {"alias": nested list of float32, ...} in the JSON list

The Keras 3 model computes ``dense2(dense1(x))`` with fixed weights: for ``x = [1, 2, 3]`` it
answers ``[9.4]`` (see :data:`KERAS3_ANSWERS`).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: request rows -> the Keras 3 model's predictions
KERAS3_ROWS = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
KERAS3_ANSWERS = [[9.4], [0.4]]
BROKEN_MESSAGE = "broken model: refuses every input"


def keras3(out: str) -> None:
    import numpy as np
    import tensorflow as tf

    model = tf.keras.Sequential(
        [tf.keras.Input((3,)), tf.keras.layers.Dense(2), tf.keras.layers.Dense(1)]
    )
    model.layers[0].set_weights([np.full((3, 2), 0.5, np.float32), np.array([0.1, -0.1])])
    model.layers[1].set_weights([np.array([[1.0], [2.0]], np.float32), np.array([0.5])])
    tf.saved_model.save(model, out)  # the route that TF1-style loaders cannot run


def broken(out: str) -> None:
    import tensorflow as tf

    class Broken(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            check = tf.debugging.assert_less(x, -1e30, message=BROKEN_MESSAGE)
            with tf.control_dependencies([check]):
                return {"y": x * self.w}

    module = Broken()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})


def warmup(export: str, requests_json: str, signature: str = "") -> None:
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for inputs in json.loads(requests_json):
            log = prediction_log_pb2.PredictionLog()
            request = log.predict_log.request
            request.model_spec.signature_name = signature
            for alias, value in inputs.items():
                request.inputs[alias].CopyFrom(
                    tf.make_tensor_proto(np.asarray(value, dtype=np.float32))
                )
            writer.write(log.SerializeToString())


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    {"keras3": keras3, "broken": broken, "warmup": warmup}[kind](*args)
