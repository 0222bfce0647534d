"""Waiting for Vertex AI long-running operations (LROs).

Vertex answers uploads, endpoint creation, (un)deploys and deletes with an Operation that is
polled through ``GET v1/{name}`` until ``done`` (clouds.md A2, "LRO"). An operation name lives
under the location, a model or an endpoint, and each has its own discovery method.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from cloudserve.errors import DeployTimeout, ProviderError
from cloudserve.progress import Progress
from cloudserve_adapters.gcp.sdk import PROVIDER, execute

_LOCATION_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/operations/[^/]+$")
_MODEL_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/]+/operations/[^/]+$")
_ENDPOINT_OP = re.compile(r"^projects/[^/]+/locations/[^/]+/endpoints/[^/]+/operations/[^/]+$")

#: each wait is this much longer than the previous one, up to the configured ceiling
BACKOFF_FACTOR = 1.5


@dataclass(frozen=True)
class Poller:
    """How to wait: first delay, delay ceiling, and where to report."""

    initial_s: float
    max_s: float
    progress: Progress


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
    api: Any, operation: dict[str, Any], *, what: str, deadline: float, poller: Poller
) -> dict:
    """Poll ``operation`` until it is done; return its ``response`` (``{}`` when it has none).

    Blocks, sleeping with exponential backoff between polls and reporting each poll as a
    progress status.

    Raises:
        ProviderError: the operation finished with an ``error``.
        DeployTimeout: it was not done by ``deadline`` (a ``time.monotonic()`` value); the
            operation itself keeps running on Vertex.
    """
    name = operation.get("name", "")
    delay = poller.initial_s
    started = time.monotonic()
    while not operation.get("done"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeployTimeout(
                f"{what}: not done after {time.monotonic() - started:.0f}s (operation {name})",
                hint="the operation goes on in Vertex AI; wait longer with --timeout, then check "
                "with 'cloudserve versions list'",
                provider=PROVIDER,
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * BACKOFF_FACTOR, poller.max_s)
        operation = execute(what, _get_request(api, name))
        poller.progress.status(f"{what}: waiting ({time.monotonic() - started:.0f}s)")
    if "error" in operation:
        error = operation["error"]
        raise ProviderError(
            f"{what}: {error.get('message', 'failed')} (operation {name})",
            hint="see the operation in the Vertex AI console or Cloud Logging for details",
            provider=PROVIDER,
        )
    return operation.get("response", {})
