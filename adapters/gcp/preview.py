"""Preview endpoints: how ``predict --version`` reaches a version that is not the default.

A shared public Vertex endpoint routes each request by its trafficSplit; a request cannot pick
one of its deployed models (python-aiplatform#827, answered by the maintainers: deploy the
model to its own endpoint). So a version deployed without all the traffic (a candidate being
verified, a canary) is also deployed, with one replica, to its own *preview endpoint*
``<endpoint_id>-v<version>`` (labels ``managed-by: cloudserve`` and ``cloudserve-preview-of``),
where it takes 100%. ``predict --version`` sends requests there. The preview endpoint is
removed once the version becomes the default, is undeployed, or is deleted.
"""

from __future__ import annotations

import re

from cloudserve import limits
from cloudserve_adapters.gcp.vertex import LABEL_MANAGED, VertexApi

LABEL_PREVIEW_OF = "cloudserve-preview-of"


def endpoint_id(main_endpoint_id: str, version: str) -> str | None:
    """The preview endpoint id of ``version``; None when that id would not be valid."""
    candidate = f"{main_endpoint_id}-v{version}"
    return candidate if re.match(limits.limit("gcp", "endpoint_id_pattern"), candidate) else None


def body(main_endpoint_id: str, version: str, labels: dict[str, str], managed_by: str) -> dict:
    """The ``Endpoint`` body of a new preview endpoint."""
    return {
        "displayName": f"{main_endpoint_id} v{version} (preview)",
        "labels": {**labels, LABEL_MANAGED: managed_by, LABEL_PREVIEW_OF: main_endpoint_id},
    }


def deployed_id(endpoint: dict | None, version_id: str) -> str | None:
    """The deployed model serving model version ``version_id`` with all the preview
    endpoint's traffic; None when there is none."""
    for deployed in (endpoint or {}).get("deployedModels", []):
        if str(deployed.get("modelVersionId")) == version_id:
            ident = str(deployed["id"])
            return ident if int(endpoint.get("trafficSplit", {}).get(ident, 0)) == 100 else None
    return None


def is_preview_of(endpoint: dict | None, main_endpoint_id: str, managed_by: str) -> bool:
    """Is ``endpoint`` a preview endpoint cloudserve made for ``main_endpoint_id``?"""
    labels = (endpoint or {}).get("labels", {})
    return labels.get(LABEL_MANAGED) == managed_by and labels.get(LABEL_PREVIEW_OF) == (
        main_endpoint_id
    )


def read(api: VertexApi, main_endpoint_id: str, version: str) -> tuple[str, dict | None] | None:
    """(preview endpoint id, the endpoint or None when absent); None when no valid id."""
    ident = endpoint_id(main_endpoint_id, version)
    return None if ident is None else (ident, api.get_endpoint(ident))
