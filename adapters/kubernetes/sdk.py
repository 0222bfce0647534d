"""The Kubernetes seam: the official ``kubernetes`` client, imported lazily, and its REST layer.

:class:`KubeClients` is the one place the adapter gets its clients from: the API server
(through a kubeconfig context, or a given URL for tests) and the model store's SDK (S3 through
the aws adapter's client factory, GCS through the gcp adapter's). :class:`Kube` sends requests
through the client's own ``ApiClient`` (its auth, TLS and proxy handling) and returns plain
dicts, so objects are handled exactly as they appear in manifests.

API errors are translated at this boundary: 404 -> None / NotFound, 401/403 ->
CredentialsError, anything else -> ProviderError carrying the API server's message.
"""

from __future__ import annotations

import importlib
import json
import urllib.parse
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from cloudserve.errors import CredentialsError, MissingDependency, NotFound, ProviderError

PROVIDER = "kubernetes"
MERGE_PATCH = "application/merge-patch+json"


def require(module: str = "kubernetes") -> ModuleType:
    """Import ``module`` (from the ``kubernetes`` package) or raise MissingDependency."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency("kubernetes", "kubernetes", provider=PROVIDER) from e


@dataclass(frozen=True)
class Kind:
    """Where the API keeps one kind of object."""

    kind: str
    prefix: str  # "/api/v1" or "/apis/<group>/<version>"
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        base = f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{urllib.parse.quote(name, safe=':')}" if name else base


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("ConfigMap", "/api/v1", "configmaps"),
        Kind("Service", "/api/v1", "services"),
        Kind("Pod", "/api/v1", "pods"),
        Kind("Deployment", "/apis/apps/v1", "deployments"),
        Kind("HorizontalPodAutoscaler", "/apis/autoscaling/v2", "horizontalpodautoscalers"),
        Kind("PodDisruptionBudget", "/apis/policy/v1", "poddisruptionbudgets"),
    )
}


class Kube:
    """Plain-dict access to the API server through one ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any, *, request_timeout: float = 30.0):
        self.api_client = api_client
        self.request_timeout = request_timeout

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; returns ``(status, parsed JSON or bytes when raw)``.

        Raises:
            CredentialsError: 401/403 from the API server.
            ProviderError: the API server cannot be reached.
        """
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            _, url, headers, _, _ = self.api_client.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params=headers,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout or self.request_timeout,
            )
            data = response.read()
        except Exception as e:  # urllib3 connection errors, TLS errors
            if type(e).__name__ == "ApiException":
                status = getattr(e, "status", 0) or 0
                data = getattr(e, "body", b"") or b""
                data = data.encode() if isinstance(data, str) else data
                return self._finish(method, path, status, data, raw)
            raise ProviderError(
                f"cannot reach the Kubernetes API server at {self.host}: {e}",
                hint="check the kubeconfig context and that the cluster is reachable",
                provider=PROVIDER,
            ) from e
        return self._finish(method, path, response.status, data, raw)

    def _finish(self, method: str, path: str, status: int, data: bytes, raw: bool):
        if status in (401, 403):
            raise CredentialsError(
                f"the Kubernetes API server refused {method} {path} ({status}): {_message(data)}",
                hint="check the kubeconfig user and its RBAC permissions in the namespace",
                provider=PROVIDER,
            )
        if raw:
            return status, data
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def _checked(self, method: str, path: str, doing: str, **kw: Any) -> Any:
        status, data = self.request(method, path, **kw)
        if status == 404:
            raise NotFound(f"{doing}: not found", provider=PROVIDER)
        if status >= 300:
            raise ProviderError(
                f"{doing}: the API server answered {status}: {_message(data)}",
                http_status=status,
                provider=PROVIDER,
            )
        return data

    # ------------------------------------------------------------------ objects

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        status, data = self.request("GET", KINDS[kind].path(namespace, name))
        if status == 404:
            return None
        if status >= 300:
            raise ProviderError(
                f"reading {kind} {namespace}/{name}: {status}: {_message(data)}",
                http_status=status,
                provider=PROVIDER,
            )
        return data

    def namespace_exists(self, namespace: str) -> bool:
        """True when the namespace exists (read-only)."""
        status, data = self.request("GET", f"/api/v1/namespaces/{namespace}")
        if status == 404:
            return False
        if status >= 300:
            raise ProviderError(
                f"reading namespace {namespace}: {status}: {_message(data)}",
                http_status=status,
                provider=PROVIDER,
            )
        return True

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = KINDS[obj["kind"]].path(meta["namespace"])
        return self._checked("POST", path, f"creating {obj['kind']} {meta['name']}", body=obj)

    def merge_patch(self, kind: str, namespace: str, name: str, patch: dict) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) and return the object."""
        return self._checked(
            "PATCH",
            KINDS[kind].path(namespace, name),
            f"updating {kind} {namespace}/{name}",
            body=patch,
            content_type=MERGE_PATCH,
        )

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete (foreground propagation); False when it was already gone."""
        status, data = self.request(
            "DELETE",
            KINDS[kind].path(namespace, name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"},
        )
        if status == 404:
            return False
        if status >= 300:
            raise ProviderError(
                f"deleting {kind} {namespace}/{name}: {status}: {_message(data)}",
                http_status=status,
                provider=PROVIDER,
            )
        return True

    def list(self, kind: str, namespace: str, label_selector: dict[str, str]) -> list[dict]:
        """Objects of ``kind`` whose labels include ``label_selector``.

        The selector is sent to the API server and checked again here.
        """
        text = ",".join(f"{k}={v}" for k, v in sorted(label_selector.items()))
        data = self._checked(
            "GET",
            KINDS[kind].path(namespace),
            f"listing {kind}s",
            query={"labelSelector": text},
        )
        items = (data or {}).get("items") or []
        return [
            item
            for item in items
            if label_selector.items() <= ((item.get("metadata") or {}).get("labels") or {}).items()
        ]

    def pod_log(self, namespace: str, pod: str, container: str, lines: int) -> str:
        status, data = self.request(
            "GET",
            f"{KINDS['Pod'].path(namespace, pod)}/log",
            query={"container": container, "tailLines": lines},
            raw=True,
        )
        return data.decode("utf-8", "replace") if status == 200 else ""

    # ------------------------------------------------------------------ proxies

    def proxy(
        self,
        kind: str,
        namespace: str,
        name: str,
        port: str | int,
        path: str,
        *,
        method: str = "GET",
        body: Any = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """A request to a pod's or Service's port through the API server's proxy."""
        target = f"{KINDS[kind].path(namespace, f'{name}:{port}')}/proxy/{path.lstrip('/')}"
        return self.request(method, target, body=body, raw=True, timeout=timeout)


def _message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or data)
    if isinstance(data, bytes):
        try:
            return _message(json.loads(data))
        except ValueError:
            return data.decode("utf-8", "replace")[:300]
    return str(data)


class KubeClients:
    """Builds (once) the API client and the model store's client.

    Args:
        kubeconfig: kubeconfig file; None: ``$KUBECONFIG`` or ``~/.kube/config``.
        context: kubeconfig context; None: the current context.
        host: talk to this API server URL without a kubeconfig (tests, in-cluster proxies).
        aws: an aws adapter ``AwsClients`` for an s3:// model store (default: built from
            the target's region and ``s3_endpoint_url``).
        gcp: a gcp adapter ``GcpClients`` for a gs:// model store.
    """

    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        host: str | None = None,
        aws: Any | None = None,
        gcp: Any | None = None,
    ):
        self.kubeconfig = kubeconfig
        self.context = context
        self.host = host
        self.aws = aws
        self.gcp = gcp

    @cached_property
    def kube(self) -> Kube:
        client = require("kubernetes.client")
        if self.host:
            configuration = client.Configuration()
            configuration.host = self.host
            return Kube(client.ApiClient(configuration))
        config = require("kubernetes.config")
        try:
            api_client = config.new_client_from_config(
                config_file=str(self.kubeconfig) if self.kubeconfig else None,
                context=self.context,
            )
        except Exception as e:  # ConfigException, missing file
            raise CredentialsError(
                f"cannot load the kubeconfig context {self.context or '(current)'}: {e}",
                hint="check targets.kubernetes.kubeconfig/context (kubectl config get-contexts)",
                provider=PROVIDER,
            ) from e
        return Kube(api_client)
