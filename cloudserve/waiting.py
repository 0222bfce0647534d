"""Waiting on long-running provider work: one loop for every adapter.

Cloud operations (an endpoint update, a Vertex LRO, an Azure deployment, a Kubernetes
rollout) are polled the same way: poll at once, then back off from ``initial_s`` to
``max_s``; report every change of state (and a still-waiting line now and then) through
the adapter's :class:`~cloudserve.progress.Progress`; stop at a deadline with
:class:`~cloudserve.errors.DeployTimeout`; and turn Ctrl-C into :class:`Interrupted`
(exit 130) that says the command can be re-run, because deploys are idempotent.

Adapters supply only what differs: how to poll, when the polled state is settled, and how
to describe it. Failure is judged by the caller on the returned state (or raised from
``poll`` itself), so this module knows nothing about any provider's states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from cloudserve.errors import DeployTimeout
from cloudserve.progress import NullProgress, Progress

T = TypeVar("T")

RESUME_HINT = "re-run the same command: every step is idempotent and picks up where it stopped"


class Interrupted(DeployTimeout):
    """Ctrl-C during a provider operation. What was created is kept; re-running resumes."""

    exit_code = 130
    kind = "interrupted"


@contextmanager
def resumable(what: str, *, provider: str | None = None) -> Iterator[None]:
    """Turn Ctrl-C inside the block into :class:`Interrupted` saying how to resume."""
    try:
        yield
    except KeyboardInterrupt as e:
        raise Interrupted(
            f"interrupted while {what}; what was created is kept and nothing half-made serves",
            hint=RESUME_HINT,
            provider=provider,
        ) from e


@dataclass(frozen=True)
class Backoff:
    """How to pace polls: the first delay, the growth factor and the ceiling (seconds)."""

    initial_s: float = 5.0
    max_s: float = 30.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """Endless delays: ``initial_s``, growing by ``factor`` up to ``max_s``."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


class Deadline:
    """One overall timeout shared by the several waits of one command.

    Args:
        timeout: seconds from now.
        floor_s: what :meth:`remaining` returns at least, so a last short wait (or a
            request's own timeout) is never zero.
    """

    def __init__(self, timeout: float, *, floor_s: float = 0.1, clock=time.monotonic):
        self.timeout = timeout
        self._floor_s = floor_s
        self._clock = clock
        self._end = clock() + timeout

    def remaining(self) -> float:
        """Seconds left, at least ``floor_s``."""
        return max(self._end - self._clock(), self._floor_s)

    def expired(self) -> bool:
        """True once the timeout has passed."""
        return self._clock() > self._end


def wait_until(
    poll: Callable[[], T],
    *,
    settled: Callable[[T], bool],
    label: str,
    timeout: float,
    progress: Progress | None = None,
    describe: Callable[[T], str] = str,
    backoff: Backoff = Backoff(),
    provider: str | None = None,
    timeout_hint: str | None = None,
    heartbeat_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``poll()`` until ``settled(state)``; return that state.

    Polls once immediately, then sleeps per ``backoff`` (never past the deadline). Each new
    ``describe(state)`` is reported as ``"<label>: <description>"``; an unchanged one is
    repeated with the elapsed time every ``heartbeat_s`` so a long wait stays visible in CI
    logs. Ctrl-C raises :class:`Interrupted`. Exceptions from ``poll`` propagate unchanged
    (an adapter raises ProviderError there when the provider reports a failure).

    Raises:
        DeployTimeout: not settled after ``timeout`` seconds; the provider keeps working.
        Interrupted: Ctrl-C while waiting.
    """
    progress = progress or NullProgress()
    started = clock()
    deadline = started + timeout
    delays = backoff.delays()
    last_text: str | None = None
    last_report = started
    with resumable(f"waiting for {label}", provider=provider):
        while True:
            state = poll()
            text = describe(state)
            now = clock()
            if text != last_text:
                progress.status(f"{label}: {text}")
                last_text, last_report = text, now
            elif now - last_report >= heartbeat_s:
                progress.status(f"{label}: {text} ({now - started:.0f}s)")
                last_report = now
            if settled(state):
                return state
            remaining = deadline - now
            if remaining <= 0:
                raise DeployTimeout(
                    f"{label}: still {text} after {timeout:.0f} s",
                    hint=timeout_hint
                    or "the provider keeps working on it; wait longer with --timeout, or "
                    + RESUME_HINT,
                    provider=provider,
                )
            sleep(min(next(delays), remaining))
