"""Server-side request batching with TensorFlow Serving's semantics.

One :class:`BatchScheduler` (TF Serving's ``SharedBatchScheduler``) owns a pool of
``num_batch_threads`` worker threads shared by every model. Each model version × signature ×
input-name set gets its own :class:`BatchQueue`; workers take ready batches from the queues
round-robin, concatenate the tasks' tensors along dim 0, call the queue's ``run_fn`` once and
split the outputs back to the tasks by row ranges.

Semantics follow TF Serving's ``BatchingParameters`` (spec/tfserving.md §5):

* A queue holds at most ``max_enqueued_batches`` batches, counting the open (last) batch. A task
  that does not fit in the open batch when the queue is at that bound fails with UNAVAILABLE.
* The open batch becomes schedulable when it is full, when ``batch_timeout_micros`` has passed
  since its first task arrived, or when the queue closes. With a timeout of 0 it is schedulable
  at once, so batches only grow from what piles up while every worker is busy.
* A formed batch of N rows is padded to the smallest allowed batch size ≥ N by repeating the
  first row of its last task; the padded output rows are discarded.
* With ``pad_variable_length_inputs`` tensors of one name whose non-batch dimensions differ are
  padded with their own first element to the largest shape; without it such a batch fails.
* With ``enable_large_batch_splitting`` a task is split across batches of
  ``max_execution_batch_size`` rows and its outputs are joined again.
* If every task of a dequeued batch has passed its deadline, the batch fails with
  RESOURCE_EXHAUSTED; an exception raised by ``run_fn`` fails every task of the batch with
  that same exception.

Completion is cheap on the asyncio path: a worker resolves all the batch's futures that belong
to one event loop with a single ``call_soon_threadsafe``, so a request costs one thread hop in
and one wake-up per batch out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
"""Runs one batch: batched input tensors by name in, batched output tensors by name out."""

OnBatch = Callable[[str, int, int], None]
"""Called per executed batch with (queue label, rows from tasks, rows after padding)."""

_Outcome = tuple[Any, "dict[str, np.ndarray] | None", "BaseException | None"]


def _default_num_batch_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's ``BatchingParameters`` message, with the model server's defaults.

    Attributes:
        max_batch_size: Largest batch in dim-0 rows, and the largest single request accepted.
        batch_timeout_micros: How long the open batch waits for more tasks before it may run.
        max_enqueued_batches: Bound on batches per queue, counting the open one (0 means 1).
        num_batch_threads: Worker threads, i.e. batches processed at once across all models.
        thread_pool_name: Name of the worker thread pool (threads are named after it).
        allowed_batch_sizes: Increasing sizes batches are padded up to; the last must equal the
            execution batch size.
        pad_variable_length_inputs: Pad same-named tensors whose non-batch dims differ.
        enable_large_batch_splitting: Split tasks across batches of max_execution_batch_size.
        max_execution_batch_size: Rows per executed batch when splitting; None means
            max_batch_size.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=_default_num_batch_threads)
    thread_pool_name: str = "model_server_batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.max_enqueued_batches == 0:
            object.__setattr__(self, "max_enqueued_batches", 1)
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))

    @property
    def execution_batch_size(self) -> int:
        """Rows per executed batch: max_execution_batch_size when splitting, else max_batch_size."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size

    def validate(self) -> None:
        """Check the parameters as TF Serving does when it loads a model.

        Raises:
            ValueError: naming the first invalid field.
        """
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be positive; was {self.max_batch_size}")
        if self.batch_timeout_micros < 0:
            raise ValueError(
                f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}"
            )
        if self.max_enqueued_batches < 1:
            raise ValueError(
                f"max_enqueued_batches must be non-negative; was {self.max_enqueued_batches}"
            )
        if self.num_batch_threads < 1:
            raise ValueError(f"num_batch_threads must be positive; was {self.num_batch_threads}")
        if self.max_execution_batch_size is not None:
            if self.max_execution_batch_size < 1:
                raise ValueError(
                    "max_execution_batch_size must be positive; was "
                    f"{self.max_execution_batch_size}"
                )
            if self.max_execution_batch_size > self.max_batch_size:
                raise ValueError(
                    "max_execution_batch_size must be <= max_batch_size; was "
                    f"{self.max_execution_batch_size}, max_batch_size is {self.max_batch_size}"
                )
        sizes = self.allowed_batch_sizes
        if not sizes:
            return
        previous = 0
        for size in sizes:
            if size <= previous:
                raise ValueError(
                    "allowed_batch_sizes entries must be positive and monotonically increasing; "
                    f"got {list(sizes)}"
                )
            previous = size
        if sizes[-1] != self.execution_batch_size:
            raise ValueError(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {self.execution_batch_size}"
            )


# Field layout of tensorflow.serving.BatchingParameters (session_bundle_config.proto). Field
# numbers play no part in the text format; the types decide the `{ value: N }` wrapper syntax.
_PROTO_FIELDS: tuple[tuple[str, str], ...] = (
    ("max_batch_size", "google.protobuf.Int64Value"),
    ("batch_timeout_micros", "google.protobuf.Int64Value"),
    ("max_enqueued_batches", "google.protobuf.Int64Value"),
    ("num_batch_threads", "google.protobuf.Int64Value"),
    ("thread_pool_name", "google.protobuf.StringValue"),
    ("allowed_batch_sizes", "repeated int64"),
    ("pad_variable_length_inputs", "bool"),
    ("enable_large_batch_splitting", "google.protobuf.BoolValue"),
    ("max_execution_batch_size", "google.protobuf.Int64Value"),
)


@functools.cache
def _batching_parameters_message() -> type[Any]:
    """Build the BatchingParameters message class in a private descriptor pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    proto_file = descriptor_pb2.FileDescriptorProto(
        name="cloudserve_runtime/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )
    message = proto_file.message_type.add(name="BatchingParameters")
    fdp = descriptor_pb2.FieldDescriptorProto
    for number, (name, type_name) in enumerate(_PROTO_FIELDS, start=1):
        entry = message.field.add(name=name, number=number, label=fdp.LABEL_OPTIONAL)
        if type_name == "repeated int64":
            entry.label = fdp.LABEL_REPEATED
            entry.type = fdp.TYPE_INT64
        elif type_name == "bool":
            entry.type = fdp.TYPE_BOOL
        else:
            entry.type = fdp.TYPE_MESSAGE
            entry.type_name = "." + type_name
    pool.Add(proto_file)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    return message_factory.GetMessageClass(descriptor)


def parse_batching_parameters(text: str) -> BatchingParameters:
    """Parse and validate a TF Serving batching parameters file (text-format proto).

    Wrapper fields take ``name { value: N }``; ``allowed_batch_sizes`` and
    ``pad_variable_length_inputs`` are plain (``allowed_batch_sizes: 32``). ``#`` comments and
    separating commas are accepted. Fields absent from the file keep the server defaults.

    Args:
        text: Contents of the ``--batching_parameters_file``.

    Returns:
        The parameters, already validated.

    Raises:
        ValueError: on a syntax error, an unknown field, a wrongly typed value, or a value
            :meth:`BatchingParameters.validate` rejects; the message names the problem.
    """
    from google.protobuf import text_format

    message = _batching_parameters_message()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError(f"invalid batching parameters: {e}") from e

    values: dict[str, Any] = {}
    for name, type_name in _PROTO_FIELDS:
        if type_name == "repeated int64":
            values[name] = tuple(getattr(message, name))
        elif type_name == "bool":
            values[name] = getattr(message, name)
        elif message.HasField(name):
            values[name] = getattr(message, name).value
    params = BatchingParameters(**values)
    params.validate()
    return params


class BatchingError(Exception):
    """A task rejected or failed by the batching layer.

    Attributes:
        code: absl status code name: ``UNAVAILABLE`` (queue full or closed),
            ``INVALID_ARGUMENT`` (task too large, rank 0, dim-0 mismatch),
            ``FAILED_PRECONDITION`` (shape mismatch without padding, bad output dim 0),
            ``RESOURCE_EXHAUSTED`` (deadline passed while queued).
        message: TF Serving's error text.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _queue_full(enqueued: int, limit: int) -> BatchingError:
    return BatchingError(
        "UNAVAILABLE",
        "The batch scheduling queue to which this task was submitted is full; currently "
        f"{enqueued} batches enqueued and max_enqueued_batches is {limit}",
    )


def _task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """Dim-0 size shared by all of a task's inputs (TF Serving's ComputeInputSize)."""
    size = -1
    for tensor in inputs.values():
        if tensor.ndim == 0:
            raise BatchingError(
                "INVALID_ARGUMENT", "Batching Run() input tensors must have at least one dimension"
            )
        rows = tensor.shape[0]
        if size < 0:
            size = rows
        elif rows != size:
            raise BatchingError(
                "INVALID_ARGUMENT",
                "Batching Run() input tensors must have equal 0th-dimension size",
            )
    if size < 0:
        raise BatchingError(
            "INVALID_ARGUMENT", "Batching Run() must have at least one input tensor"
        )
    return size


class _Task:
    """One request (or one piece of a split request) waiting in a queue."""

    __slots__ = ("inputs", "size", "deadline", "future", "loop", "parent", "piece")

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        size: int,
        deadline: float | None,
        future: Any,
        loop: asyncio.AbstractEventLoop | None,
        parent: _SplitTask | None = None,
        piece: int = 0,
    ) -> None:
        self.inputs = inputs
        self.size = size
        self.deadline = deadline
        self.future = future
        self.loop = loop
        self.parent = parent
        self.piece = piece


class _SplitTask:
    """A request split across batches; it completes once every piece has."""

    __slots__ = ("future", "loop", "_lock", "_pending", "_results", "_error")

    def __init__(self, future: Any, loop: asyncio.AbstractEventLoop | None, pieces: int) -> None:
        self.future = future
        self.loop = loop
        self._lock = threading.Lock()
        self._pending = pieces
        self._results: list[dict[str, np.ndarray] | None] = [None] * pieces
        self._error: BaseException | None = None

    def deliver(
        self, piece: int, result: dict[str, np.ndarray] | None, error: BaseException | None
    ) -> _Outcome | None:
        """Record one piece's outcome; return the joined outcome once all pieces are in."""
        with self._lock:
            if error is not None and self._error is None:
                self._error = error
            self._results[piece] = result
            self._pending -= 1
            if self._pending:
                return None
        if self._error is not None:
            return (self, None, self._error)
        parts = self._results
        try:
            joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        except ValueError as e:
            error = BatchingError("FAILED_PRECONDITION", f"cannot join split outputs: {e}")
            return (self, None, error)
        return (self, joined, None)


class _Batch:
    __slots__ = ("tasks", "size", "created")

    def __init__(self, created: float) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.created = created


def _resolve_async(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in items:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _resolve(outcomes: list[_Outcome]) -> None:
    """Complete futures: thread futures directly, asyncio futures with one hop per loop."""
    per_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for owner, result, error in outcomes:
        if owner.loop is not None:
            per_loop.setdefault(owner.loop, []).append((owner.future, result, error))
            continue
        try:
            if error is None:
                owner.future.set_result(result)
            else:
                owner.future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass  # a split request's caller cancelled it meanwhile
    for loop, items in per_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting for these results any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve_async, items)


def _pad_to_shape(tensor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Pad every non-batch dim of ``tensor`` up to ``shape`` with its own first element."""
    if tensor.shape[1:] == shape:
        return tensor
    value = tensor.flat[0] if tensor.size else np.zeros((), tensor.dtype)[()]
    padded = np.full((tensor.shape[0], *shape), value, dtype=tensor.dtype)
    padded[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return padded


class BatchQueue:
    """The queue of one model version × signature × input-name set.

    Obtain it from :meth:`BatchScheduler.queue`. ``submit`` and ``submit_async`` are thread-safe
    and never block on the model.
    """

    def __init__(
        self,
        scheduler: BatchScheduler,
        key: Hashable,
        run_fn: RunFn,
        params: BatchingParameters,
        label: str,
    ) -> None:
        self.key = key
        self.label = label
        self.params = params
        self._scheduler = scheduler
        self._run_fn = run_fn
        self._batches: deque[_Batch] = deque()
        self._closed = False
        self._in_flight = 0
        self._input_limit = params.max_batch_size
        self._execution_size = params.execution_batch_size
        self._split = params.enable_large_batch_splitting
        self._timeout = params.batch_timeout_micros / 1e6
        self._allowed = params.allowed_batch_sizes

    def submit(
        self, inputs: dict[str, np.ndarray], *, deadline: float | None = None
    ) -> concurrent.futures.Future[dict[str, np.ndarray]]:
        """Enqueue one task; return a future of its own output rows.

        Args:
            inputs: Input tensors by name, all with the same dim-0 size (the task size).
            deadline: Absolute ``time.monotonic()`` time after which the task need not run.

        Returns:
            A future resolving to the task's output tensors by name, or failing with
            :class:`BatchingError` (deadline, shape mismatch, bad outputs) or with the exception
            ``run_fn`` raised for its batch. Cancelling it before its batch runs drops the task.

        Raises:
            BatchingError: synchronously, if the task is invalid (rank 0, unequal dim 0, larger
                than max_batch_size) or the queue is full or closed.
        """
        future: concurrent.futures.Future[dict[str, np.ndarray]] = concurrent.futures.Future()
        self._enqueue(inputs, deadline, future, None)
        return future

    async def submit_async(
        self, inputs: dict[str, np.ndarray], *, deadline: float | None = None
    ) -> dict[str, np.ndarray]:
        """Like :meth:`submit`, awaited on the running event loop.

        Invalid tasks and a full queue raise :class:`BatchingError` before anything is queued.
        Cancelling the awaiting coroutine before its batch runs drops the task.
        """
        return await self.submit_loop_future(inputs, asyncio.get_running_loop(), deadline=deadline)

    def submit_loop_future(
        self, inputs: dict[str, np.ndarray], loop: asyncio.AbstractEventLoop, *,
        deadline: float | None = None,
    ) -> asyncio.Future[dict[str, np.ndarray]]:
        """Like :meth:`submit`, but returns a future of ``loop`` (call it on that loop's thread).

        Invalid tasks and a full queue raise :class:`BatchingError` before anything is queued.
        Completing the future (cancelling it, or setting an exception such as a deadline error)
        before its batch runs drops the task.
        """
        future: asyncio.Future[dict[str, np.ndarray]] = loop.create_future()
        self._enqueue(inputs, deadline, future, loop)
        return future

    def _enqueue(
        self,
        inputs: dict[str, np.ndarray],
        deadline: float | None,
        future: Any,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        size = _task_size(inputs)
        if size > self._input_limit:
            raise BatchingError(
                "INVALID_ARGUMENT",
                f"Task size {size} is larger than maximum input batch size {self._input_limit}",
            )
        scheduler = self._scheduler
        with scheduler._lock:
            if self._closed or scheduler._closing:
                raise BatchingError("UNAVAILABLE", "The batch scheduling queue is closed")
            now = time.monotonic()
            batches = self._batches
            open_batch = batches[-1] if batches else None
            room = self._execution_size - open_batch.size if open_batch else 0
            if size <= room:
                open_batch.tasks.append(_Task(inputs, size, deadline, future, loop))
                open_batch.size += size
                added = 1
                wake = self._timeout <= 0 or open_batch.size >= self._execution_size
            elif self._split:
                added = self._enqueue_split(inputs, size, room, deadline, future, loop, now)
                wake = True
            else:
                if len(batches) >= self.params.max_enqueued_batches:
                    raise _queue_full(len(batches), self.params.max_enqueued_batches)
                batch = _Batch(now)
                batch.tasks.append(_Task(inputs, size, deadline, future, loop))
                batch.size = size
                batches.append(batch)
                added = 1
                wake = True
            scheduler._depth += added
            if wake and scheduler._idle:
                scheduler._work.notify()

    def _enqueue_split(
        self,
        inputs: dict[str, np.ndarray],
        size: int,
        room: int,
        deadline: float | None,
        future: Any,
        loop: asyncio.AbstractEventLoop | None,
        now: float,
    ) -> int:
        """Split a task over the open batch's free rows and new batches (lock held)."""
        limit = self.params.max_enqueued_batches
        chunk = self._execution_size
        new_batches = -(-(size - room) // chunk)
        if len(self._batches) + new_batches > limit:
            raise BatchingError(
                "UNAVAILABLE",
                "The batch scheduling queue to which this task was submitted is full; task size "
                f"is {size} but the queue has room for only "
                f"{room + (limit - len(self._batches)) * chunk} more rows",
            )
        bounds = [0, room] if room else [0]
        bounds += range(bounds[-1] + chunk, size, chunk)
        bounds.append(size)
        parent = _SplitTask(future, loop, len(bounds) - 1)
        for piece, (start, stop) in enumerate(itertools.pairwise(bounds)):
            part = {name: tensor[start:stop] for name, tensor in inputs.items()}
            task = _Task(part, stop - start, deadline, None, loop, parent, piece)
            if piece == 0 and room:
                batch = self._batches[-1]
            else:
                batch = _Batch(now)
                self._batches.append(batch)
            batch.tasks.append(task)
            batch.size += task.size
        return len(bounds) - 1

    def _head_ready(self, now: float) -> bool:
        """Whether the oldest batch may run now (lock held, queue non-empty)."""
        head = self._batches[0]
        return (
            self._timeout <= 0
            or len(self._batches) > 1
            or head.size >= self._execution_size
            or self._closed
            or self._scheduler._closing
            or now >= head.created + self._timeout
        )

    def _run_batch(self, batch: _Batch) -> None:
        """Execute one dequeued batch and complete its tasks (worker thread, lock not held)."""
        tasks = [task for task in batch.tasks if _still_wanted(task)]
        if not tasks:
            return
        now = time.monotonic()
        if all(task.deadline is not None and task.deadline < now for task in tasks):
            error = BatchingError(
                "RESOURCE_EXHAUSTED", "Run() timeout exceeded while waiting in batching queue"
            )
            _finish([(task, None, error) for task in tasks])
            return
        try:
            inputs, rows, padded = self._merge(tasks)
            self._scheduler._report(self.label, rows, padded)
            outputs = self._run_fn(inputs)
            results = self._split_outputs(outputs, tasks, padded)
        except Exception as e:  # noqa: BLE001 - every task of the batch gets run_fn's error
            _finish([(task, None, e) for task in tasks])
            return
        _finish(list(zip(tasks, results, [None] * len(tasks), strict=True)))

    def _merge(self, tasks: list[_Task]) -> tuple[dict[str, np.ndarray], int, int]:
        """Concatenate the tasks' inputs, padding shapes and rows as configured."""
        rows = sum(task.size for task in tasks)
        padded = rows
        if self._allowed and rows:
            padded = next(size for size in self._allowed if size >= rows)
        if len(tasks) == 1 and padded == rows:
            return tasks[0].inputs, rows, rows
        names = tasks[0].inputs.keys()
        for task in tasks:
            if task.inputs.keys() != names:
                raise BatchingError(
                    "INVALID_ARGUMENT", "Batching Run() input tensor names differ between tasks"
                )
        pad_source = next(task for task in reversed(tasks) if task.size)
        merged: dict[str, np.ndarray] = {}
        for name in names:
            tensors = [task.inputs[name] for task in tasks]
            tensors = self._common_shape(name, tensors)
            if padded > rows:
                first_row = tensors[tasks.index(pad_source)][:1]
                tensors.append(np.repeat(first_row, padded - rows, axis=0))
            merged[name] = tensors[0] if len(tensors) == 1 else np.concatenate(tensors)
        return merged, rows, padded

    def _common_shape(self, name: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
        shape = tensors[0].shape[1:]
        if all(t.shape[1:] == shape for t in tensors):
            return tensors
        if not self.params.pad_variable_length_inputs:
            raise BatchingError(
                "FAILED_PRECONDITION",
                f"Tensors with name '{name}' from different tasks have different shapes and "
                "padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
                "all tensors with the same name have equal dimensions starting with the first dim.",
            )
        rank = tensors[0].ndim
        if any(t.ndim != rank for t in tensors):
            raise BatchingError(
                "FAILED_PRECONDITION",
                f"Tensors with name '{name}' from different tasks have different ranks, so they "
                "cannot be padded",
            )
        if rank > 6:
            raise BatchingError(
                "FAILED_PRECONDITION", "Only tensors with rank from 1 to 6 can be padded."
            )
        target = tuple(max(t.shape[d] for t in tensors) for d in range(1, rank))
        return [_pad_to_shape(t, target) for t in tensors]

    @staticmethod
    def _split_outputs(
        outputs: dict[str, np.ndarray], tasks: list[_Task], padded: int
    ) -> list[dict[str, np.ndarray]]:
        """Give each task its row range of every output; padded rows are dropped."""
        for tensor in outputs.values():
            if tensor.ndim == 0:
                raise BatchingError("FAILED_PRECONDITION", "Batched output tensor has 0 dimensions")
            if tensor.shape[0] != padded:
                raise BatchingError(
                    "FAILED_PRECONDITION",
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                    "dimension sizes of the input tensors",
                )
        if len(tasks) == 1 and tasks[0].size == padded:
            return [outputs]
        results = []
        start = 0
        for task in tasks:
            stop = start + task.size
            results.append({name: tensor[start:stop] for name, tensor in outputs.items()})
            start = stop
        return results


def _still_wanted(task: _Task) -> bool:
    """False for a task whose caller gave up on it; claims thread futures as running."""
    if task.parent is not None:
        return True
    if task.loop is not None:
        return not task.future.done()
    return task.future.set_running_or_notify_cancel()


def _finish(outcomes: list[_Outcome]) -> None:
    """Route task outcomes to their futures, joining the pieces of split tasks."""
    final: list[_Outcome] = []
    for task, result, error in outcomes:
        if task.parent is None:
            final.append((task, result, error))
        else:
            joined = task.parent.deliver(task.piece, result, error)
            if joined is not None:
                final.append(joined)
    _resolve(final)


class BatchScheduler:
    """A pool of batch threads shared by all queues (TF Serving's SharedBatchScheduler).

    Threads start at construction. Each thread repeatedly takes the oldest ready batch of the
    next queue in round-robin order, runs it and completes its tasks.
    """

    def __init__(self, params: BatchingParameters, on_batch: OnBatch | None = None) -> None:
        """Validate ``params`` and start ``params.num_batch_threads`` daemon worker threads.

        Args:
            params: Thread-pool settings, and the default queue settings.
            on_batch: Called from a worker thread before each batch runs, with the queue label,
                the batch's rows and its padded size; exceptions from it are logged and ignored.

        Raises:
            ValueError: if ``params`` are invalid.
        """
        params.validate()
        self.params = params
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._queues: dict[Hashable, BatchQueue] = {}
        self._active: list[BatchQueue] = []
        self._next = 0
        self._depth = 0
        self._idle = 0  # workers waiting for work: a submit only notifies when one is
        self._closing = False
        self._threads = [
            threading.Thread(
                target=self._worker, name=f"{params.thread_pool_name}_{i}", daemon=True
            )
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def queue(
        self,
        key: Hashable,
        run_fn: RunFn,
        *,
        params: BatchingParameters | None = None,
        label: str | None = None,
    ) -> BatchQueue:
        """Return the queue for ``key``, creating it on first use.

        Args:
            key: Identifies the model version × signature × input-name set.
            run_fn: Runs one batch; used only when the queue is created.
            params: Per-queue settings (per-model batching parameters); only the queue fields are
                used, the thread pool stays the scheduler's. Defaults to the scheduler's.
            label: Name passed to ``on_batch``; defaults to ``str(key)``.

        Raises:
            ValueError: if ``params`` are invalid.
            BatchingError: UNAVAILABLE if the scheduler is closed.
        """
        if params is not None:
            params.validate()
        with self._lock:
            if self._closing:
                raise BatchingError("UNAVAILABLE", "The batch scheduler is closed")
            queue = self._queues.get(key)
            if queue is None:
                queue = BatchQueue(
                    self, key, run_fn, params or self.params, str(key) if label is None else label
                )
                self._queues[key] = queue
                self._active.append(queue)
            return queue

    def remove_queue(self, key: Hashable, timeout: float | None = None) -> bool:
        """Close the queue for ``key`` and wait until its queued and running batches finish.

        New submissions to the closed queue fail with UNAVAILABLE; a later ``queue(key, ...)``
        creates a fresh queue. Unknown keys are ignored. Blocks the caller.

        Returns:
            True once drained (or if there was no such queue), False if ``timeout`` passed first.
        """
        with self._lock:
            queue = self._queues.pop(key, None)
            if queue is None:  # maybe an earlier remove_queue(key) timed out: wait for it again
                queue = next((q for q in self._active if q._closed and q.key == key), None)
            if queue is None:
                return True
            queue._closed = True
            self._work.notify_all()
            drained = self._drained.wait_for(
                lambda: not queue._batches and not queue._in_flight, timeout
            )
            if drained and queue in self._active:
                self._active.remove(queue)
            return drained

    def queue_depth(self) -> int:
        """Tasks waiting in all queues (not counting batches being run)."""
        return self._depth

    def close(self) -> None:
        """Stop accepting tasks, run everything already queued, and join the threads.

        Idempotent. Blocks until the workers have exited.
        """
        with self._lock:
            self._closing = True
            self._work.notify_all()
        for thread in self._threads:
            thread.join()

    def _report(self, label: str, rows: int, padded: int) -> None:
        if self._on_batch is None:
            return
        try:
            self._on_batch(label, rows, padded)
        except Exception:
            logger.exception("on_batch callback failed")

    def _take_ready(self, now: float) -> BatchQueue | None:
        """The next queue, round-robin, whose oldest batch may run now (lock held)."""
        queues = self._active
        count = len(queues)
        for offset in range(count):
            index = (self._next + offset) % count
            queue = queues[index]
            if queue._batches and queue._head_ready(now):
                self._next = index + 1
                return queue
        return None

    def _wait_time(self, now: float) -> float | None:
        """Seconds until the earliest open batch times out; None if nothing is queued."""
        wake: float | None = None
        for queue in self._active:
            if queue._batches:
                due = queue._batches[0].created + queue._timeout - now
                wake = due if wake is None else min(wake, due)
        return None if wake is None else max(wake, 0.0)

    def _worker(self) -> None:
        finished: BatchQueue | None = None
        while True:
            with self._lock:
                if finished is not None:
                    finished._in_flight -= 1
                    if finished._closed and not finished._batches and not finished._in_flight:
                        if finished in self._active:
                            self._active.remove(finished)
                        self._drained.notify_all()
                    finished = None
                while True:
                    now = time.monotonic()
                    queue = self._take_ready(now)
                    if queue is not None:
                        break
                    if self._closing and not self._depth:
                        return
                    self._idle += 1
                    try:
                        self._work.wait(self._wait_time(now))
                    finally:
                        self._idle -= 1
                batch = queue._batches.popleft()
                queue._in_flight += 1
                self._depth -= len(batch.tasks)
            try:
                queue._run_batch(batch)
            except Exception:
                logger.exception("batch thread failed to complete a batch of %s", queue.label)
            finished = queue
