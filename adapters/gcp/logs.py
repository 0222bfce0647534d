"""A deployed version's serving-container log lines, read from Cloud Logging.

Vertex AI writes the stdout/stderr of a deployed model's container to Cloud Logging under the
monitored resource ``aiplatform.googleapis.com/Endpoint`` (labels ``endpoint_id``,
``location``), each entry labelled with the ``deployed_model_id`` that wrote it. The label
name on the entry is UNVERIFIED (not in spec/clouds.md); the resource type is the one the
Vertex docs' "view container logs" query uses.
"""

from __future__ import annotations

from typing import Any

from cloudserve.errors import CloudserveError
from cloudserve_adapters.gcp.sdk import execute

RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"


def version_filter(endpoint_id: str, region: str, deployed_model_id: str) -> str:
    """The Logging query selecting one deployed model's container log entries."""
    return (
        f'resource.type="{RESOURCE_TYPE}" '
        f'AND resource.labels.endpoint_id="{endpoint_id}" '
        f'AND resource.labels.location="{region}" '
        f'AND labels.deployed_model_id="{deployed_model_id}"'
    )


def entry_text(entry: dict[str, Any]) -> str:
    """One log line: ``textPayload``, else ``jsonPayload.message``, else the JSON payload."""
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip("\n")
    payload = entry.get("jsonPayload") or {}
    return str(payload.get("message", payload)).rstrip("\n")


def last_lines(client: Any, project: str, query: str, *, lines: int, retries: int) -> list[str]:
    """The newest ``lines`` entries matching ``query``, oldest first; ``[]`` when unreadable.

    One ``entries.list`` call (newest first, ``pageSize`` = ``lines``), resent on transport
    errors (a read). Never raises: a log is a diagnosis aid, not part of the deploy.
    """
    body = {
        "resourceNames": [f"projects/{project}"],
        "filter": query,
        "orderBy": "timestamp desc",
        "pageSize": lines,
    }
    try:
        page = execute("read serving logs", client.entries().list(body=body), retries=retries)
    except CloudserveError:
        return []
    return [entry_text(e) for e in reversed(page.get("entries", [])[:lines])]
