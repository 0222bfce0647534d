"""Polling SageMaker until an endpoint settles: backoff, a deadline, progress, Ctrl-C.

botocore's own ``endpoint_in_service`` waiter polls every 30 s with no progress and no
overall deadline of our choosing; this one starts fast, backs off, reports every status
change and turns a deadline into DeployTimeout with a resume hint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cloudserve.errors import DeployTimeout
from cloudserve.progress import Progress

#: statuses an endpoint passes through on its own; anything else is where it settled
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})

RESUME_HINT = "re-run the same command: every step is idempotent and picks up where it stopped"


class Interrupted(DeployTimeout):
    """Ctrl-C during a cloud operation. Resources stay consistent; re-running resumes."""

    exit_code = 130
    kind = "interrupted"


@contextmanager
def resumable(what: str, *, provider: str = "aws") -> Iterator[None]:
    """Turn Ctrl-C inside the block into :class:`Interrupted` saying how to resume."""
    try:
        yield
    except KeyboardInterrupt as e:
        raise Interrupted(
            f"interrupted while {what}; what was created is kept and nothing half-made serves",
            hint=RESUME_HINT,
            provider=provider,
        ) from e


def wait_for_endpoint(
    describe: Callable[[], dict[str, Any]],
    *,
    label: str,
    timeout: float,
    progress: Progress,
    poll_initial: float = 5.0,
    poll_max: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``describe()`` (a DescribeEndpoint call) until the status is not transitional.

    Returns the last description; the caller judges success (InService on the right
    config) or failure (Failed, or InService still on the old config after a rollback).

    Raises:
        DeployTimeout: still transitional after ``timeout`` seconds.
    """
    deadline = clock() + timeout
    delay = poll_initial
    last_status = None
    while True:
        description = describe()
        status = description.get("EndpointStatus", "")
        if status != last_status:
            progress.status(f"{label}: {status}")
            last_status = status
        if status not in TRANSITIONAL:
            return description
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeployTimeout(
                f"{label}: still {status} after {timeout:.0f} s",
                hint="SageMaker keeps working on it; " + RESUME_HINT + " (or raise --timeout)",
                provider="aws",
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, poll_max)
