"""Progress reporting seam: adapters report, the CLI decides how it looks.

On a terminal the CLI shows live bars; in CI (not a TTY) it prints plain lines at a
bounded rate; under ``--output json`` progress goes to stderr so stdout stays parseable.
Adapters only ever call the two methods of :class:`Progress`.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def status(self, message: str) -> None:
        """A step started or a long wait is still going ("waiting for endpoint: Updating")."""

    def transfer(self, label: str, done: int, total: int) -> None:
        """Bytes moved so far out of ``total`` for an upload named ``label``."""


class NullProgress:
    """Reports nothing. The default when no one is watching."""

    def status(self, message: str) -> None:
        return None

    def transfer(self, label: str, done: int, total: int) -> None:
        return None
