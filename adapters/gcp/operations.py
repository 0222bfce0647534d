"""Waiting for Vertex AI long-running operations (LROs).

Vertex answers uploads, endpoint creation, (un)deploys, mutations and deletes with an Operation
that is polled through ``GET v1/{name}`` until ``done`` (clouds.md A2, "LRO"). An operation
name lives under the location, a model or an endpoint, and each has its own discovery method.
The waiting itself (backoff, deadline, progress, Ctrl-C) is :func:`cloudserve.waiting.wait_until`.
"""

from __future__ import annotations

import re
import time
from typing import Any

from cloudserve.errors import ProviderError
from cloudserve.progress import Progress
from cloudserve.waiting import Backoff, wait_until
from cloudserve_adapters.gcp.sdk import PROVIDER, execute

_LOCATION_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/operations/[^/]+$")
_MODEL_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/]+/operations/[^/]+$")
_ENDPOINT_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/endpoints/[^/]+/operations/[^/]+$")

#: each wait is this much longer than the previous one, up to the configured ceiling
BACKOFF_FACTOR = 1.5


def _get_request(api: Any, name: str) -> Any:
    locations = api.projects().locations()
    if _LOCATION_OP.match(name):
        return locations.operations().get(name=name)
    if _MODEL_OP.match(name):
        return locations.models().operations().get(name=name)
    if _ENDPOINT_OP.match(name):
        return locations.endpoints().operations().get(name=name)
    raise ProviderError(f"unexpected operation name from Vertex AI: {name}", provider=PROVIDER)


def wait(
    api: Any,
    operation: dict[str, Any],
    *,
    what: str,
    deadline: float,
    backoff: Backoff,
    progress: Progress,
    retries: int = 0,
) -> dict:
    """Poll ``operation`` until it is done; return its ``response`` (``{}`` when it has none).

    Blocks, polling with ``backoff`` (each poll a GET, resent ``retries`` times on transport
    errors) and reporting through ``progress``, until ``deadline`` (a ``time.monotonic()``
    value).

    Raises:
        ProviderError: the operation finished with an ``error``.
        DeployTimeout: it was not done by ``deadline``; the operation keeps running on Vertex.
        Interrupted: Ctrl-C while waiting (exit 130; re-running the command resumes).
    """
    name = operation.get("name", "")
    if not operation.get("done"):
        first = True

        def poll() -> dict[str, Any]:
            nonlocal first
            if first:  # the operation as started; its first poll comes after a backoff step
                first = False
                return operation
            return execute(what, _get_request(api, name), retries=retries)

        operation = wait_until(
            poll,
            settled=lambda op: bool(op.get("done")),
            label=what,
            timeout=max(deadline - time.monotonic(), 0.0),
            progress=progress,
            describe=lambda op: "done" if op.get("done") else "waiting for the operation",
            backoff=backoff,
            provider=PROVIDER,
            timeout_hint=f"operation {name} goes on in Vertex AI; wait longer with --timeout, "
            "then check with 'cloudserve versions list' (re-running the deploy resumes)",
        )
    if "error" in operation:
        error = operation["error"]
        raise ProviderError(
            f"{what}: {error.get('message', 'failed')} (operation {name})",
            hint="see the operation in the Vertex AI console or Cloud Logging for details",
            provider=PROVIDER,
        )
    return operation.get("response", {})
