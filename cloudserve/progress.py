"""Progress reporting seam: adapters report, the CLI decides how it looks.

On a terminal the CLI shows live bars; in CI (not a TTY) it prints plain lines at a
bounded rate; under ``--output json`` progress goes to stderr so stdout stays parseable.
Adapters only ever call the two methods of :class:`Progress`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from cloudserve.units import human_bytes


class Progress(Protocol):
    def status(self, message: str) -> None:
        """A step started or a long wait is still going ("waiting for endpoint: Updating")."""

    def transfer(self, label: str, done: int, total: int) -> None:
        """Bytes moved so far out of ``total`` for an upload named ``label``."""


def byte_counter(progress: Progress, label: str, total: int) -> Callable[[int], None]:
    """A callback that adds up transferred byte counts and reports the running total of
    ``label`` to ``progress``. Thread-safe: boto3's ``Callback`` calls it from its transfer
    threads."""
    lock = threading.Lock()
    done = 0

    def on_bytes(count: int) -> None:
        nonlocal done
        with lock:
            done += count
            progress.transfer(label, done, total)

    return on_bytes


class NullProgress:
    """Reports nothing. The default when no one is watching."""

    def status(self, message: str) -> None:
        return None

    def transfer(self, label: str, done: int, total: int) -> None:
        return None


class LineProgress:
    """Plain lines for logs and pipes (CI): no colour, no cursor movement.

    Every new status message is one line; a repeated message is printed again only after
    ``interval`` seconds (long waits stay visible without flooding the log). Transfers print
    at most once per ``interval`` per label, plus once when complete.

    Args:
        stream: where lines go (default: stderr at the time of each write).
        interval: seconds between repeated lines.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._last_status: tuple[str, float] | None = None
        self._last_transfer: dict[str, float] = {}
        self._finished: set[str] = set()

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def status(self, message: str) -> None:
        now = self._clock()
        last = self._last_status
        if last and last[0] == message and now - last[1] < self._interval:
            return
        self._last_status = (message, now)
        self._write(f"cloudserve: {message}")

    def transfer(self, label: str, done: int, total: int) -> None:
        now = self._clock()
        finished = total > 0 and done >= total
        last = self._last_transfer.get(label)
        if label in self._finished or (
            not finished and last is not None and now - last < self._interval
        ):
            return
        self._last_transfer[label] = now
        if finished:
            self._finished.add(label)
        percent = f"{100 * done / total:.0f}%" if total > 0 else "?"
        self._write(f"cloudserve: {label}: {percent} ({human_bytes(done)} of {human_bytes(total)})")


class RichProgress:
    """Live progress bars and status lines on a terminal. Use as a context manager.

    Args:
        console: a ``rich.console.Console`` (usually on stderr).
    """

    def __init__(self, console: Any):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as Bars,
        )

        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def status(self, message: str) -> None:
        self._bars.console.print(f"[dim]•[/dim] {message}", markup=True, highlight=False)

    def transfer(self, label: str, done: int, total: int) -> None:
        if label not in self._tasks:
            self._tasks[label] = self._bars.add_task(label, total=total or None)
        self._bars.update(self._tasks[label], completed=done, total=total or None)
