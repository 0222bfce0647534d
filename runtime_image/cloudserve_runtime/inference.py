"""Running a signature for a request: through the batch scheduler, or straight on a thread.

With batching, each (servable, signature, input set, output set) gets its own batch queue; the
queues of a servable are drained when it unloads. Without batching, REST calls run in a thread
pool (never on the event loop) and gRPC calls run on the gRPC worker thread itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from collections.abc import Hashable

import numpy as np

from cloudserve_runtime.batching import BatchQueue, BatchScheduler
from cloudserve_runtime.errors import ServingError
from cloudserve_runtime.models import ServableHandle
from cloudserve_runtime.servable import Signature


def _deadline_error(timeout_s: float) -> ServingError:
    return ServingError(
        "DEADLINE_EXCEEDED", f"Timed out waiting for the model to run after {timeout_s * 1000:g} ms"
    )


def _expire(future: asyncio.Future[dict[str, np.ndarray]], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(_deadline_error(timeout_s))


class InferenceRunner:
    """Runs signatures of held servables, batched or not. Thread-safe.

    Args:
        scheduler: the shared batch scheduler, or None when batching is off.
        executor: thread pool for unbatched calls made from the event loop.
    """

    def __init__(
        self, scheduler: BatchScheduler | None, executor: concurrent.futures.ThreadPoolExecutor
    ) -> None:
        self._scheduler = scheduler
        self._executor = executor
        self._lock = threading.Lock()
        self._queue_keys: dict[int, set[Hashable]] = {}
        self._queues: dict[Hashable, BatchQueue] = {}

    def _queue(self, handle: ServableHandle, signature: Signature, inputs: dict[str, np.ndarray],
               output_aliases: tuple[str, ...] | None) -> BatchQueue:
        """The batch queue for this call, from a cache filled on first use of each key."""
        assert self._scheduler is not None
        servable = handle.servable
        key = (id(servable), signature.name, tuple(sorted(inputs)), output_aliases)
        queue = self._queues.get(key)
        if queue is not None:
            return queue
        run_fn = functools.partial(servable.run, signature, output_aliases=output_aliases)
        with self._lock:
            self._queue_keys.setdefault(id(servable), set()).add(key)
            queue = self._scheduler.queue(key, run_fn, label=handle.model_name)
            self._queues[key] = queue
        return queue

    async def run_async(
        self, handle: ServableHandle, signature: Signature, inputs: dict[str, np.ndarray],
        output_aliases: tuple[str, ...] | None = None, timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs off the event loop and awaits the outputs (alias -> array).

        The handle must stay held until this returns; if the call times out while the model is
        still running, the version is kept alive until the run ends.

        Raises:
            ServingError: DEADLINE_EXCEEDED after ``timeout_s``, or the run's own error.
            BatchingError: queue full, task too large, … (batching only).
        """
        loop = asyncio.get_running_loop()
        if self._scheduler is not None:
            queue = self._queue(handle, signature, inputs, output_aliases)
            if timeout_s is None:
                return await queue.submit_loop_future(inputs, loop)
            deadline = time.monotonic() + timeout_s
            batched = queue.submit_loop_future(inputs, loop, deadline=deadline)
            # A timer, not a Task per request: on expiry the future fails and its task is
            # dropped if its batch has not run yet.
            timer = loop.call_later(timeout_s, _expire, batched, timeout_s)
            try:
                return await batched
            finally:
                timer.cancel()
        future = loop.run_in_executor(
            self._executor, handle.servable.run, signature, inputs, output_aliases
        )
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            keeper = handle.retain()
            future.add_done_callback(lambda _: keeper.release())
            raise _deadline_error(timeout_s or 0.0) from None

    def run_blocking(
        self, handle: ServableHandle, signature: Signature, inputs: dict[str, np.ndarray],
        output_aliases: tuple[str, ...] | None = None, timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs from a non-event-loop thread (gRPC) and returns the outputs.

        Raises:
            ServingError: DEADLINE_EXCEEDED after ``timeout_s`` (batching), or the run's error.
            BatchingError: queue full, task too large, … (batching only).
        """
        if self._scheduler is None:
            return handle.servable.run(signature, inputs, output_aliases)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        future = self._queue(handle, signature, inputs, output_aliases).submit(
            inputs, deadline=deadline
        )
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise _deadline_error(timeout_s or 0.0) from None

    def drop_servable(self, servable: object) -> None:
        """Drains and removes the batch queues of ``servable`` (blocks until they are empty)."""
        if self._scheduler is None:
            return
        with self._lock:
            keys = self._queue_keys.pop(id(servable), set())
            for key in keys:
                self._queues.pop(key, None)
        for key in keys:
            self._scheduler.remove_queue(key)
