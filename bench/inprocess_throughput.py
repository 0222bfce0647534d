"""In-process model throughput (no HTTP): rows/s when batches run back to back.

Runs the SavedModel through the runtime's own session path (``SavedModelServable.run``) from
``--threads`` threads for ``--seconds`` and prints one JSON line.

Usage: python bench/inprocess_throughput.py DIR/1 --batch 64 --seconds 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cloudserve_runtime.servable import SavedModelServable  # noqa: E402


def measure(model_dir: str, batch: int, seconds: float, threads: int) -> dict[str, float]:
    """Run batches of ``batch`` random rows for ``seconds``; return rows/s and batch latency."""
    servable = SavedModelServable(model_dir)
    signature = servable.signature("serving_default")
    assert signature is not None, "the model has no serving_default signature"
    ((alias, _),) = signature.inputs.items()
    shape = signature.definition.inputs[alias].tensor_shape
    row_shape = [dim.size for dim in shape.dim][1:]
    inputs = {alias: np.random.default_rng(0).random((batch, *row_shape), dtype=np.float32)}
    for _ in range(5):
        servable.run(signature, inputs)

    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            servable.run(signature, inputs)
            counts[index] += 1

    start = time.monotonic()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    batches = sum(counts)
    servable.close()
    return {
        "rows_per_s": batches * batch / elapsed,
        "batches": batches,
        "batch_ms": 1000 * elapsed * threads / max(batches, 1),
    }


def main() -> None:
    """Print the measurement as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.model_dir, args.batch, args.seconds, args.threads)))


if __name__ == "__main__":
    main()
