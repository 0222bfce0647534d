"""Prometheus metrics with TF Serving's names (spec §1.8), kept in dicts under one lock.

Exported (names are TF monitoring paths with ``/`` replaced by ``:``):

* ``:tensorflow:serving:request_count{model_name,status}`` counter;
* ``:tensorflow:serving:request_latency{model_name,API,entrypoint}`` histogram in µs with
  buckets ``10·1.8^k`` for k = 0..32, successful requests only;
* ``:tensorflow:serving:batching_session:processed_batch_size{model_name}`` histogram of
  executed batch sizes (after padding), buckets 1, 2, 4, … 2^20;
* ``:tensorflow:serving:batching_session:wrapped_run_count{model_name}`` counter of batched
  model calls;
* ``:cloudserve:batching:queue_depth`` gauge of tasks waiting in batch queues.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
WRAPPED_RUN_COUNT = ":tensorflow:serving:batching_session:wrapped_run_count"
QUEUE_DEPTH = ":cloudserve:batching:queue_depth"

LATENCY_BUCKETS_US: tuple[float, ...] = tuple(10.0 * 1.8**k for k in range(33))
BATCH_SIZE_BUCKETS: tuple[float, ...] = tuple(float(2**k) for k in range(21))

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, labels: Labels) -> list[str]:
        lines = []
        cumulative = 0
        for bound, bucket in zip(self.bounds, self.counts, strict=False):
            cumulative += bucket
            le = f'le="{_format_number(bound)}"'
            lines.append(f"{name}_bucket{_format_labels(labels, le)} {cumulative}")
        inf = 'le="+Inf"'
        lines.append(f"{name}_bucket{_format_labels(labels, inf)} {self.count}")
        lines.append(f"{name}_sum{_format_labels(labels)} {_format_number(self.total)}")
        lines.append(f"{name}_count{_format_labels(labels)} {self.count}")
        return lines


class Metrics:
    """The server's metric registry. Every method is thread-safe and O(1) apart from render."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request_count: dict[Labels, int] = {}
        self._latency: dict[Labels, _Histogram] = {}
        self._batch_sizes: dict[Labels, _Histogram] = {}
        self._wrapped_runs: dict[Labels, int] = {}
        self._queue_depth: Callable[[], int] | None = None

    def record_request(
        self, model_name: str, api: str, entrypoint: str, status: str, latency_us: float
    ) -> None:
        """Counts one request; its latency is recorded only when ``status`` is ``OK``.

        Args:
            model_name: model named by the request.
            api: ``predict``/``classify``/``regress``/``""`` (REST) or ``Predict``/… (gRPC).
            entrypoint: ``REST`` or ``GRPC``.
            status: absl code name of the outcome.
            latency_us: request latency in microseconds.
        """
        count_key = (("model_name", model_name), ("status", status))
        with self._lock:
            self._request_count[count_key] = self._request_count.get(count_key, 0) + 1
            if status == "OK":
                key = (("model_name", model_name), ("API", api), ("entrypoint", entrypoint))
                histogram = self._latency.get(key)
                if histogram is None:
                    histogram = self._latency[key] = _Histogram(LATENCY_BUCKETS_US)
                histogram.observe(latency_us)

    def record_batch(self, model_name: str, rows: int, padded_rows: int) -> None:
        """Records one batched model call of ``padded_rows`` rows (``rows`` from requests)."""
        del rows
        key = (("model_name", model_name),)
        with self._lock:
            histogram = self._batch_sizes.get(key)
            if histogram is None:
                histogram = self._batch_sizes[key] = _Histogram(BATCH_SIZE_BUCKETS)
            histogram.observe(padded_rows)
            self._wrapped_runs[key] = self._wrapped_runs.get(key, 0) + 1

    def set_queue_depth_source(self, source: Callable[[], int]) -> None:
        """Makes the queue-depth gauge read ``source()`` at render time."""
        self._queue_depth = source

    def render(self) -> str:
        """Returns the Prometheus text exposition (lines joined by ``\\n``, trailing ``\\n``)."""
        lines: list[str] = []
        with self._lock:
            lines.append(f"# TYPE {REQUEST_COUNT} counter")
            for labels, value in self._request_count.items():
                lines.append(f"{REQUEST_COUNT}{_format_labels(labels)} {value}")
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for labels, histogram in self._latency.items():
                lines.extend(histogram.render(REQUEST_LATENCY, labels))
            lines.append(f"# TYPE {PROCESSED_BATCH_SIZE} histogram")
            for labels, histogram in self._batch_sizes.items():
                lines.extend(histogram.render(PROCESSED_BATCH_SIZE, labels))
            lines.append(f"# TYPE {WRAPPED_RUN_COUNT} counter")
            for labels, value in self._wrapped_runs.items():
                lines.append(f"{WRAPPED_RUN_COUNT}{_format_labels(labels)} {value}")
        if self._queue_depth is not None:
            lines.append(f"# TYPE {QUEUE_DEPTH} gauge")
            lines.append(f"{QUEUE_DEPTH} {self._queue_depth()}")
        return "\n".join(lines) + "\n"
