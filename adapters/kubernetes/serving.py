"""What the pods serve: the runtime's status routes on every ready pod, through the API server.

Each ready pod is asked directly (``/api/v1/namespaces/<ns>/pods/<pod>:8501/proxy/...``, the
API server's pod proxy; RBAC ``get`` on ``pods/proxy``), because a request through the
Service reaches only one pod and the point is that *every* pod has reloaded. A version serves
when each ready pod reports it AVAILABLE (``/v1/models/<m>``); the default has moved when each
ready pod answers a request naming no version with it (``model_spec.version`` of
``/v1/models/<m>/metadata``, which the runtime resolves through the ``default`` label).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cloudserve_adapters.kubernetes import manifests
from cloudserve_adapters.kubernetes.rollout import pod_ready
from cloudserve_adapters.kubernetes.sdk import Kube


@dataclass(frozen=True)
class PodView:
    """One ready pod's answer: version -> (state, error message) and the default label."""

    pod: str
    versions: dict[str, tuple[str, str]]
    default: str | None
    error: str = ""


def ready_pods(kube: Kube, namespace: str, model: str) -> list[str]:
    """Names of the model's pods that are Ready, sorted."""
    pods = kube.list("Pod", namespace, manifests.selector(model))
    return sorted(p["metadata"]["name"] for p in pods if pod_ready(p))


def _get(kube: Kube, namespace: str, pod: str, path: str) -> tuple[int, dict]:
    status, body = kube.proxy("Pod", namespace, pod, manifests.REST_PORT, path, timeout=10)
    try:
        return status, json.loads(body or b"{}")
    except ValueError:
        return status, {"error": body.decode("utf-8", "replace")[:200]}


def view(kube: Kube, namespace: str, pod: str, model: str) -> PodView:
    """Ask one pod for the model's versions and where its ``default`` label points."""
    status, body = _get(kube, namespace, pod, f"v1/models/{model}")
    if status != 200:
        return PodView(pod, {}, None, str(body.get("error") or f"HTTP {status}"))
    versions = {
        str(s["version"]): (s["state"], (s.get("status") or {}).get("error_message", ""))
        for s in body.get("model_version_status") or []
    }
    # the version that answers a request naming none: metadata reports it in model_spec
    status, body = _get(kube, namespace, pod, f"v1/models/{model}/metadata")
    default = str(body["model_spec"]["version"]) if status == 200 else None
    return PodView(pod, versions, default)


def views(kube: Kube, namespace: str, model: str) -> list[PodView]:
    """:class:`PodView` of every ready pod."""
    return [view(kube, namespace, pod, model) for pod in ready_pods(kube, namespace, model)]


def all_serve(found: list[PodView], version: str) -> bool:
    """At least one ready pod, and every ready pod has ``version`` AVAILABLE."""
    return bool(found) and all(v.versions.get(version, ("",))[0] == "AVAILABLE" for v in found)


def all_default(found: list[PodView], version: str) -> bool:
    """Every ready pod routes unversioned requests to ``version``."""
    return bool(found) and all(v.default == version for v in found) and all_serve(found, version)


def all_dropped(found: list[PodView], version: str) -> bool:
    """No ready pod serves ``version`` any more."""
    return all(v.versions.get(version, ("END",))[0] == "END" for v in found)


def failure(found: list[PodView], version: str) -> str:
    """The first pod's load error for ``version`` ("" when none failed)."""
    for v in found:
        state, message = v.versions.get(version, ("", ""))
        if state == "END" and message:
            return f"pod {v.pod}: {message}"
    return ""


def describe(found: list[PodView], version: str) -> str:
    if not found:
        return "no ready pod yet"
    states = [v.versions.get(version, ("not loaded",))[0] for v in found]
    serving = sum(s == "AVAILABLE" for s in states)
    return f"{serving}/{len(found)} ready pods serve version {version}"
