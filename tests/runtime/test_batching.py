"""Unit tests for cloudserve_runtime.batching: no TensorFlow, no server, fake run_fn."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from cloudserve_runtime.batching import (
    BatchingError,
    BatchingParameters,
    BatchScheduler,
    parse_batching_parameters,
)
from tests.conftest import TESTDATA

WAIT = 5.0  # seconds; every wait in these tests is bounded


class FakeModel:
    """A run_fn that records its batches and, while ``gate`` is clear, blocks inside each call."""

    def __init__(self, *, blocked: bool = False, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, np.ndarray]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail = fail
        if not blocked:
            self.gate.set()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append({name: tensor.copy() for name, tensor in inputs.items()})
        self.entered.set()
        assert self.gate.wait(WAIT), "test never opened the gate"
        if self.fail is not None:
            raise self.fail
        return {"y": inputs["x"] * 2.0, "first": inputs["x"][:, :1]}

    @property
    def batch_sizes(self) -> list[int]:
        return [call["x"].shape[0] for call in self.calls]


def rows(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array([[v] for v in values], dtype=np.float32)}


@pytest.fixture
def make_scheduler() -> Iterator:
    """Build schedulers whose threads are always stopped at the end of the test."""
    created: list[BatchScheduler] = []

    def make(on_batch=None, **fields) -> BatchScheduler:
        fields.setdefault("num_batch_threads", 1)
        scheduler = BatchScheduler(BatchingParameters(**fields), on_batch=on_batch)
        created.append(scheduler)
        return scheduler

    yield make
    for scheduler in created:
        scheduler.close()


def result(future: concurrent.futures.Future) -> dict[str, np.ndarray]:
    return future.result(timeout=WAIT)


def occupy_worker(queue, model: FakeModel) -> concurrent.futures.Future:
    """Submit one task and wait until the (single) worker is blocked inside run_fn with it."""
    future = queue.submit(rows(-1.0))
    assert model.entered.wait(WAIT)
    return future


# --- parameters ------------------------------------------------------------------------------


def test_defaults_match_tf_serving() -> None:
    params = BatchingParameters()
    assert params.max_batch_size == 1000
    assert params.batch_timeout_micros == 0
    assert params.max_enqueued_batches == 10
    assert params.num_batch_threads >= 1
    assert params.thread_pool_name == "model_server_batch_threads"
    assert params.allowed_batch_sizes == ()
    assert params.pad_variable_length_inputs is False
    assert params.enable_large_batch_splitting is False
    assert params.max_execution_batch_size is None
    assert params.execution_batch_size == 1000
    params.validate()


def test_zero_max_enqueued_batches_means_one() -> None:
    assert BatchingParameters(max_enqueued_batches=0).max_enqueued_batches == 1


def test_execution_batch_size_only_applies_with_splitting() -> None:
    assert (
        BatchingParameters(max_batch_size=8, max_execution_batch_size=4).execution_batch_size == 8
    )
    split = BatchingParameters(
        max_batch_size=8, max_execution_batch_size=4, enable_large_batch_splitting=True
    )
    assert split.execution_batch_size == 4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"max_batch_size": 64, "allowed_batch_sizes": (16, 32)},
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 32; "
            "expected 64",
        ),
        ({"max_batch_size": 64, "allowed_batch_sizes": (32, 16, 64)}, "monotonically increasing"),
        ({"num_batch_threads": 0}, "num_batch_threads must be positive"),
        ({"max_batch_size": 0}, "max_batch_size must be positive"),
        ({"batch_timeout_micros": -1}, "batch_timeout_micros must be non-negative"),
        (
            {"max_batch_size": 8, "max_execution_batch_size": 16},
            "max_execution_batch_size must be <= max_batch_size",
        ),
    ],
)
def test_validate_rejects(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchingParameters(**fields).validate()


def test_parse_tf_serving_testdata_file() -> None:
    params = parse_batching_parameters((TESTDATA / "batching_config.txt").read_text())
    assert params == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=0,
        max_enqueued_batches=1000000,
        num_batch_threads=8,
    )


def test_parse_every_field_with_comments_and_commas() -> None:
    text = """
    # every BatchingParameters field
    max_batch_size { value: 128 },
    batch_timeout_micros { value: 1000 }  # one millisecond
    max_enqueued_batches { value: 4 }
    num_batch_threads { value: 2 }
    thread_pool_name { value: "my_pool" }
    allowed_batch_sizes: 32,
    allowed_batch_sizes: 64
    pad_variable_length_inputs: true
    enable_large_batch_splitting { value: true }
    max_execution_batch_size { value: 64 }
    """
    assert parse_batching_parameters(text) == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=1000,
        max_enqueued_batches=4,
        num_batch_threads=2,
        thread_pool_name="my_pool",
        allowed_batch_sizes=(32, 64),
        pad_variable_length_inputs=True,
        enable_large_batch_splitting=True,
        max_execution_batch_size=64,
    )


def test_parse_empty_file_gives_defaults() -> None:
    assert parse_batching_parameters("# nothing set\n") == BatchingParameters()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 8 }\nbogus_field { value: 1 }", "bogus_field"),
        ("max_batch_size: 128", "max_batch_size"),
        ("max_batch_size { value: many }", "many"),
        ("max_batch_size { value: 8 ", "invalid batching parameters"),
        ("pad_variable_length_inputs: maybe", "maybe"),
        (
            "max_batch_size { value: 128 }\nallowed_batch_sizes: 32\nallowed_batch_sizes: 64",
            "last entry was 64; expected 128",
        ),
        ("num_batch_threads { value: 0 }", "num_batch_threads must be positive"),
    ],
)
def test_parse_rejects_bad_files(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_batching_parameters(text)


def test_scheduler_validates_parameters() -> None:
    with pytest.raises(ValueError, match="num_batch_threads"):
        BatchScheduler(BatchingParameters(num_batch_threads=0))


# --- task validation -------------------------------------------------------------------------


def test_task_larger_than_max_batch_size(make_scheduler) -> None:
    queue = make_scheduler(max_batch_size=4).queue("m", FakeModel())
    with pytest.raises(BatchingError) as info:
        queue.submit(rows(*range(5)))
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.message == "Task size 5 is larger than maximum input batch size 4"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"x": np.float32(1.0) * np.ones(())}, "input tensors must have at least one dimension"),
        (
            {"x": np.ones((2, 1)), "z": np.ones((3, 1))},
            "input tensors must have equal 0th-dimension size",
        ),
    ],
)
def test_invalid_task_shapes(make_scheduler, inputs: dict, message: str) -> None:
    queue = make_scheduler().queue("m", FakeModel())
    with pytest.raises(BatchingError, match=message) as info:
        queue.submit(inputs)
    assert info.value.code == "INVALID_ARGUMENT"
    assert str(info.value) == info.value.message


# --- batch formation -------------------------------------------------------------------------


def test_single_request_round_trip(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler().queue("m", model)
    out = result(queue.submit(rows(1.0, 2.0)))
    np.testing.assert_array_equal(out["y"], [[2.0], [4.0]])
    assert model.batch_sizes == [2]


def test_requests_that_pile_up_while_busy_merge_into_one_call(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    futures = [queue.submit(rows(float(i), float(i) + 0.5)) for i in range(3)]
    assert queue._scheduler.queue_depth() == 3
    model.gate.set()
    for i, future in enumerate(futures):
        out = result(future)
        np.testing.assert_array_equal(out["y"], [[2.0 * i], [2.0 * i + 1.0]])
        np.testing.assert_array_equal(out["first"], [[i], [i + 0.5]])
    np.testing.assert_array_equal(result(first)["y"], [[-2.0]])
    assert model.batch_sizes == [1, 6]
    assert queue._scheduler.queue_depth() == 0


def test_open_batch_waits_for_timeout(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler(batch_timeout_micros=200_000, num_batch_threads=2).queue("m", model)
    start = time.monotonic()
    futures = [queue.submit(rows(float(i))) for i in range(3)]
    for future in futures:
        result(future)
    assert time.monotonic() - start >= 0.19
    assert model.batch_sizes == [3]


def test_full_batch_runs_before_timeout(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler(max_batch_size=2, batch_timeout_micros=30_000_000).queue("m", model)
    start = time.monotonic()
    futures = [queue.submit(rows(float(i))) for i in range(2)]
    for future in futures:
        result(future)
    assert time.monotonic() - start < 5
    assert model.batch_sizes == [2]


def test_batches_never_exceed_max_batch_size(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler(max_batch_size=3).queue("m", model)
    first = occupy_worker(queue, model)
    futures = [queue.submit(rows(*[float(i)] * 2)) for i in range(3)]
    model.gate.set()
    for future in [first, *futures]:
        result(future)
    assert model.batch_sizes == [1, 2, 2, 2]


def test_queue_full_error_counts_open_batch(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler(max_batch_size=1, max_enqueued_batches=2).queue("m", model)
    first = occupy_worker(queue, model)
    queued = [queue.submit(rows(1.0)), queue.submit(rows(2.0))]
    with pytest.raises(BatchingError) as info:
        queue.submit(rows(3.0))
    assert info.value.code == "UNAVAILABLE"
    assert info.value.message == (
        "The batch scheduling queue to which this task was submitted is full; currently 2 "
        "batches enqueued and max_enqueued_batches is 2"
    )
    model.gate.set()
    for future in [first, *queued]:
        result(future)


def test_same_key_same_queue_and_round_robin(make_scheduler) -> None:
    model_a, model_b = FakeModel(blocked=True), FakeModel()
    scheduler = make_scheduler(max_batch_size=1, max_enqueued_batches=100)
    queue_a = scheduler.queue(("a", 1), model_a)
    assert scheduler.queue(("a", 1), FakeModel()) is queue_a
    queue_b = scheduler.queue(("b", 1), model_b)
    first = occupy_worker(queue_a, model_a)
    order: list[str] = []
    futures = []
    for i in range(3):
        for name, queue in (("a", queue_a), ("b", queue_b)):
            future = queue.submit(rows(float(i)))
            future.add_done_callback(lambda _, name=name: order.append(name))
            futures.append(future)
    model_a.gate.set()
    for future in [first, *futures]:
        result(future)
    assert order == ["b", "a", "b", "a", "b", "a"]


# --- padding and splitting -------------------------------------------------------------------


def test_padding_to_allowed_batch_size_repeats_first_row_of_last_task(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    seen: list[tuple[str, int, int]] = []
    scheduler = make_scheduler(
        on_batch=lambda *args: seen.append(args), max_batch_size=8, allowed_batch_sizes=(2, 4, 8)
    )
    queue = scheduler.queue("m", model, label="m/1/serving_default")
    first = occupy_worker(queue, model)
    a = queue.submit(rows(1.0))
    b = queue.submit(rows(5.0, 6.0))
    model.gate.set()
    np.testing.assert_array_equal(result(first)["y"], [[-2.0]])
    np.testing.assert_array_equal(result(a)["y"], [[2.0]])
    np.testing.assert_array_equal(result(b)["y"], [[10.0], [12.0]])
    np.testing.assert_array_equal(model.calls[0]["x"], [[-1.0], [-1.0]])
    np.testing.assert_array_equal(model.calls[1]["x"], [[1.0], [5.0], [6.0], [5.0]])
    assert seen == [("m/1/serving_default", 1, 2), ("m/1/serving_default", 3, 4)]


def test_variable_length_inputs_are_padded_with_first_element(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler(pad_variable_length_inputs=True).queue("m", model)
    first = occupy_worker(queue, model)
    short = queue.submit({"x": np.array([[7.0, 8.0]])})
    long = queue.submit({"x": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])})
    model.gate.set()
    result(first)
    np.testing.assert_array_equal(result(short)["y"], [[14.0, 16.0, 14.0]])
    np.testing.assert_array_equal(result(long)["y"], [[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]])
    np.testing.assert_array_equal(
        model.calls[1]["x"], [[7.0, 8.0, 7.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    )


def test_variable_length_padding_of_strings() -> None:
    from cloudserve_runtime.batching import _pad_to_shape

    padded = _pad_to_shape(np.array([[b"a", b"bc"]], dtype=object), (3,))
    assert padded.tolist() == [[b"a", b"bc", b"a"]]


def test_shape_mismatch_without_padding_fails_whole_batch(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    futures = [queue.submit({"x": np.ones((1, 2))}), queue.submit({"x": np.ones((1, 3))})]
    model.gate.set()
    result(first)
    for future in futures:
        with pytest.raises(BatchingError) as info:
            result(future)
        assert info.value.code == "FAILED_PRECONDITION"
        assert info.value.message.startswith(
            "Tensors with name 'x' from different tasks have different shapes and padding is "
            "turned off"
        )
    assert model.batch_sizes == [1]


def test_large_batch_splitting(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler(
        max_batch_size=10, enable_large_batch_splitting=True, max_execution_batch_size=4
    ).queue("m", model)
    values = [float(i) for i in range(10)]
    out = result(queue.submit(rows(*values)))
    np.testing.assert_array_equal(out["y"][:, 0], [2.0 * v for v in values])
    assert model.batch_sizes == [4, 4, 2]


def test_splitting_fills_the_open_batch_first(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler(
        max_batch_size=8, enable_large_batch_splitting=True, max_execution_batch_size=3
    ).queue("m", model)
    first = occupy_worker(queue, model)
    small = queue.submit(rows(1.0))
    big = queue.submit(rows(*[float(i) for i in range(5)]))
    model.gate.set()
    result(first)
    np.testing.assert_array_equal(result(small)["y"], [[2.0]])
    np.testing.assert_array_equal(result(big)["y"][:, 0], [0.0, 2.0, 4.0, 6.0, 8.0])
    assert model.batch_sizes == [1, 3, 3]


def test_splitting_queue_full(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler(
        max_batch_size=8,
        enable_large_batch_splitting=True,
        max_execution_batch_size=2,
        max_enqueued_batches=2,
    ).queue("m", model)
    first = occupy_worker(queue, model)
    with pytest.raises(BatchingError) as info:
        queue.submit(rows(*[1.0] * 5))
    assert info.value.code == "UNAVAILABLE"
    assert info.value.message.startswith(
        "The batch scheduling queue to which this task was submitted is full; task size is 5"
    )
    model.gate.set()
    result(first)


# --- failures and deadlines ------------------------------------------------------------------


def test_run_fn_exception_fails_every_task_of_the_batch(make_scheduler) -> None:
    model = FakeModel(blocked=True, fail=RuntimeError("model exploded"))
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    futures = [queue.submit(rows(1.0)), queue.submit(rows(2.0))]
    model.gate.set()
    errors = []
    for future in [first, *futures]:
        with pytest.raises(RuntimeError, match="model exploded"):
            result(future)
        errors.append(future.exception())
    assert errors[1] is errors[2]


def test_output_dim0_must_match_batch(make_scheduler) -> None:
    queue = make_scheduler().queue("m", lambda inputs: {"y": np.zeros((5, 1))})
    with pytest.raises(BatchingError) as info:
        result(queue.submit(rows(1.0, 2.0)))
    assert info.value.code == "FAILED_PRECONDITION"
    queue = make_scheduler().queue("m", lambda inputs: {"y": np.float32(3.0) * np.ones(())})
    with pytest.raises(BatchingError, match="0 dimensions"):
        result(queue.submit(rows(1.0)))


def test_batch_whose_deadlines_all_passed_is_not_run(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    expired = [queue.submit(rows(1.0), deadline=time.monotonic() + 0.01) for _ in range(2)]
    time.sleep(0.05)
    model.gate.set()
    result(first)
    for future in expired:
        with pytest.raises(BatchingError) as info:
            result(future)
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert info.value.message == "Run() timeout exceeded while waiting in batching queue"
    assert model.batch_sizes == [1]


def test_batch_with_one_live_deadline_still_runs(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    expired = queue.submit(rows(1.0), deadline=time.monotonic() + 0.01)
    live = queue.submit(rows(2.0), deadline=time.monotonic() + 60)
    time.sleep(0.05)
    model.gate.set()
    result(first)
    np.testing.assert_array_equal(result(expired)["y"], [[2.0]])
    np.testing.assert_array_equal(result(live)["y"], [[4.0]])


def test_cancelled_future_is_dropped(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)
    cancelled = queue.submit(rows(1.0))
    kept = queue.submit(rows(2.0))
    assert cancelled.cancel()
    model.gate.set()
    result(first)
    np.testing.assert_array_equal(result(kept)["y"], [[4.0]])
    assert model.batch_sizes == [1, 1]


# --- asyncio ---------------------------------------------------------------------------------


def test_submit_async_many_concurrent_requests(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler(num_batch_threads=2, max_batch_size=16, max_enqueued_batches=100).queue(
        "m", model
    )

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.wait_for(
            asyncio.gather(*(queue.submit_async(rows(float(i))) for i in range(200))), WAIT
        )

    outputs = asyncio.run(main())
    assert [float(out["y"][0, 0]) for out in outputs] == [2.0 * i for i in range(200)]
    assert sum(model.batch_sizes) == 200
    assert max(model.batch_sizes) <= 16


def test_submit_async_raises_validation_errors_and_run_errors(make_scheduler) -> None:
    queue = make_scheduler(max_batch_size=2).queue("m", FakeModel(fail=ValueError("bad input")))

    async def main() -> None:
        with pytest.raises(BatchingError, match="Task size 3"):
            await queue.submit_async(rows(1.0, 2.0, 3.0))
        with pytest.raises(ValueError, match="bad input"):
            await asyncio.wait_for(queue.submit_async(rows(1.0)), WAIT)

    asyncio.run(main())


def test_submit_async_cancellation_drops_task(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    queue = make_scheduler().queue("m", model)
    first = occupy_worker(queue, model)

    async def main() -> np.ndarray:
        doomed = asyncio.ensure_future(queue.submit_async(rows(1.0)))
        kept = asyncio.ensure_future(queue.submit_async(rows(2.0)))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.sleep(0)
        model.gate.set()
        return (await asyncio.wait_for(kept, WAIT))["y"]

    np.testing.assert_array_equal(asyncio.run(main()), [[4.0]])
    result(first)
    assert model.batch_sizes == [1, 1]


# --- lifecycle -------------------------------------------------------------------------------


def test_close_drains_queued_tasks_then_rejects(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    scheduler = make_scheduler(batch_timeout_micros=60_000_000, max_batch_size=100)
    queue = scheduler.queue("m", model)
    futures = [queue.submit(rows(0.0)), queue.submit(rows(0.5))]  # open batch waits a minute
    assert not model.entered.wait(0.05)
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    assert model.entered.wait(WAIT)  # closing made the open batch schedulable
    model.gate.set()
    closer.join(WAIT)
    assert not closer.is_alive()
    assert [result(f)["y"].tolist() for f in futures] == [[[0.0]], [[1.0]]]
    assert model.batch_sizes == [2]
    with pytest.raises(BatchingError) as info:
        queue.submit(rows(1.0))
    assert info.value.code == "UNAVAILABLE"


def test_remove_queue_waits_for_in_flight_batches(make_scheduler) -> None:
    model = FakeModel(blocked=True)
    scheduler = make_scheduler()
    queue = scheduler.queue("v1", model)
    first = occupy_worker(queue, model)
    queued = queue.submit(rows(3.0))
    assert scheduler.remove_queue("v1", timeout=0.05) is False
    with pytest.raises(BatchingError):
        queue.submit(rows(4.0))
    model.gate.set()
    assert scheduler.remove_queue("v1", timeout=WAIT) is True
    assert first.done() and queued.done()
    np.testing.assert_array_equal(result(queued)["y"], [[6.0]])
    assert scheduler.queue("v1", model) is not queue
    assert scheduler.remove_queue("unknown") is True


def test_many_threads_get_their_own_rows(make_scheduler) -> None:
    model = FakeModel()
    queue = make_scheduler(num_batch_threads=2, max_batch_size=32, max_enqueued_batches=1000).queue(
        "m", model
    )
    failures: list[str] = []

    def client(worker: int) -> None:
        for i in range(100):
            value = worker * 1000.0 + i
            out = result(queue.submit(rows(value, value + 0.25)))
            if out["y"].tolist() != [[2 * value], [2 * value + 0.5]]:
                failures.append(f"{worker}/{i}: {out['y'].tolist()}")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures
    assert sum(model.batch_sizes) == 1600
