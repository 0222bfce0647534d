"""A stateful loopback fake of the Azure ML control plane (ARM) and endpoint scoring.

There is no Azure ML emulator, so this is a small HTTP server (``http.server`` in a thread)
keeping one workspace: its blob datastore (pointing at an Azurite account), registered model
versions, environment versions, managed online endpoints with deployments and traffic, and
long-running operations. azure-ai-ml's generated ARM client reaches it through its base URL
(``AZUREML_DEV_URL_MFE`` or an explicit endpoint).

As strict as the service where it matters to cloudserve:

* every request needs ``api-version`` and ``Authorization: Bearer <token>`` (401 otherwise,
  with ARM's error shape); every request body is validated against azure-ai-ml's generated
  REST models (:mod:`azureml_schema`): a misspelt, read-only or mistyped field is a 400;
* names follow Azure's rules (endpoints and deployments: 3-32 characters, a letter first);
  deployments need an existing endpoint, model version and environment; at most 20 per
  endpoint; traffic names only succeeded deployments and sums to 100 (or is empty); a
  deployment with traffic cannot be deleted;
* PUT/DELETE of endpoints and deployments answer 201/202 with ``Azure-AsyncOperation``,
  ``Location`` and ``Retry-After`` and finish through the operation's status; resources
  carry ``systemData`` timestamps;
* a deployment emulates the custom-container contract: the model version's folder is
  "mounted" at ``/var/azureml-app/azureml-models/<model>/<version>/<folder>``, so
  ``MODEL_BASE_PATH/MODEL_NAME`` must be that mount, and the liveness, readiness and scoring
  routes must be the TF Serving REST routes of ``MODEL_NAME``; otherwise the deployment fails
  with container logs saying why, as a real one would.

Scoring (``POST /score/<endpoint>``) needs the endpoint key, honours the
``azureml-model-deployment`` header, else picks a deployment by traffic (deterministically,
100 slots in turn), and answers with the predictor ``load_model(model_uri)`` returned for that
deployment's model: the tests load the real SavedModel from Azurite.

Knobs: ``operation_polls`` (InProgress answers before an operation finishes), ``retry_after``
(the Retry-After header), ``latency_s`` (a sleep before each answer), ``fail_next(kind,
message)`` (the next "deployment" or "endpoint" operation fails, with ``message`` in the
container log), ``token`` (the bearer token accepted).
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.adapters.fakes.azureml_schema import validate

Predictor = Callable[[list[Any]], list[Any]]
API_VERSION = "2025-12-01"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
MOUNT = "/var/azureml-app/azureml-models"
WS = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
)
OPS = r"^/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+/"
MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}


class Reject(Exception):
    """An error answer: HTTP status, ARM error code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _system_data(existing: dict[str, Any] | None = None) -> dict[str, Any]:
    now = _now()
    created = (existing or {}).get("systemData", {})
    return {
        "createdAt": created.get("createdAt", now),
        "createdBy": created.get("createdBy", "cloudserve-tests"),
        "createdByType": "User",
        "lastModifiedAt": now,
        "lastModifiedBy": "cloudserve-tests",
        "lastModifiedByType": "User",
    }


@dataclass
class Operation:
    id: str
    kind: str  # "endpoint" | "deployment"
    polls_left: int
    apply: Callable[[], None]
    fail: Callable[[str], None]
    status: str = "InProgress"
    error: dict[str, Any] | None = None

    def advance(self, failure: str | None) -> None:
        if self.status != "InProgress":
            return
        if self.polls_left > 0:
            self.polls_left -= 1
            return
        if failure is not None:
            self.fail(failure)
            self.status, self.error = "Failed", {"code": "DeploymentFailed", "message": failure}
            return
        try:
            self.apply()
        except Reject as e:
            self.fail(e.message)
            self.status, self.error = "Failed", {"code": e.code, "message": e.message}
            return
        self.status = "Succeeded"


@dataclass
class FakeAzureML:
    """The fake's state; serve it with :meth:`start`. All access holds ``lock``."""

    load_model: Callable[[str], Predictor]
    storage_account: str
    storage_key: str
    container: str = "azureml-blobstore-test"
    location: str = "westeurope"
    token: str = "test-token"
    operation_polls: int = 0
    retry_after: int = 0
    latency_s: float = 0.0
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # "name:version"
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)  # "endpoint/deployment"
    predictors: dict[str, Predictor] = field(default_factory=dict)  # "endpoint/deployment"
    operations: dict[str, Operation] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body)
    answers: list[tuple[str, str, int, dict[str, str]]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._slots = itertools.count()
        self.server: ThreadingHTTPServer | None = None
        self.url = ""

    # ------------------------------------------------------------------ server

    def start(self) -> str:
        """Serve on 127.0.0.1 (a free port) in a daemon thread; returns the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, headers = fake.handle(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, kind: str, message: str) -> None:
        """Make the next ``kind`` ("deployment" or "endpoint") operation fail with ``message``."""
        self.failures[kind] = message

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str]]:
        """(method, path) of every request so far, filtered by verb and path substring."""
        return [
            (m, p) for m, p, _ in self.calls if (method is None or m == method) and contains in p
        ]

    def bodies(self, method: str, contains: str) -> list[Any]:
        """Bodies of the requests matching ``method`` and a path substring."""
        return [b for m, p, b in self.calls if m == method and contains in p]

    # ------------------------------------------------------------------ dispatch

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if self.latency_s:
            time.sleep(self.latency_s)
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"error": {"code": "BadRequest", "message": "body is not JSON"}}, {}
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.calls.append((method, parts.path, body))
            status, payload, out = self._answer(method, parts.path, query, lower, body)
            self.answers.append((method, parts.path, status, out))
            return status, payload, out

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        lower: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            if path.startswith("/score/"):
                return self._score(path.removeprefix("/score/"), lower, body)
            if query.get("api-version") != API_VERSION:
                raise Reject(400, "MissingApiVersionParameter", "api-version is required")
            if lower.get("authorization") != f"Bearer {self.token}":
                raise Reject(401, "InvalidAuthenticationToken", "The access token is invalid.")
            return self._route(method, path, query, body)
        except Reject as e:
            return e.status, {"error": {"code": e.code, "message": e.message}}, {}

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        op = re.match(
            OPS + r"(?P<kind>mfeOperationsStatus|mfeOperationResults)/(?P<id>[^/]+)$", path
        )
        if op:
            return self._operation(op["kind"], op["id"])
        ws = re.match(WS, path)
        if not ws:
            raise Reject(404, "NotFound", f"no route for {path}")
        rest = path[ws.end() :]
        routes: list[tuple[str, str, Callable[..., tuple[int, Any, dict[str, str]]]]] = [
            ("GET", r"$", lambda: (200, self._workspace(), {})),
            ("GET", r"/datastores/(?P<n>[^/]+)$", self._get_datastore),
            ("POST", r"/datastores/(?P<n>[^/]+)/listSecrets$", self._list_secrets),
            ("GET", r"/models/(?P<n>[^/]+)/versions$", self._list_versions),
            ("GET", r"/models/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$", self._get_version),
            ("PUT", r"/models/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$", self._put_version),
            ("DELETE", r"/models/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$", self._delete_version),
            ("DELETE", r"/models/(?P<n>[^/]+)$", self._delete_model),
            ("PUT", r"/environments/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$", self._put_environment),
            ("GET", r"/onlineEndpoints/(?P<e>[^/]+)$", self._get_endpoint),
            ("PUT", r"/onlineEndpoints/(?P<e>[^/]+)$", self._put_endpoint),
            ("DELETE", r"/onlineEndpoints/(?P<e>[^/]+)$", self._delete_endpoint),
            ("POST", r"/onlineEndpoints/(?P<e>[^/]+)/listKeys$", self._list_keys),
            ("GET", r"/onlineEndpoints/(?P<e>[^/]+)/deployments$", self._list_deployments),
            (
                "GET",
                r"/onlineEndpoints/(?P<e>[^/]+)/deployments/(?P<d>[^/]+)$",
                self._get_deployment,
            ),
            (
                "PUT",
                r"/onlineEndpoints/(?P<e>[^/]+)/deployments/(?P<d>[^/]+)$",
                self._put_deployment,
            ),
            (
                "DELETE",
                r"/onlineEndpoints/(?P<e>[^/]+)/deployments/(?P<d>[^/]+)$",
                self._delete_deployment,
            ),
            (
                "POST",
                r"/onlineEndpoints/(?P<e>[^/]+)/deployments/(?P<d>[^/]+)/getLogs$",
                self._get_logs,
            ),
        ]
        matched_path = False
        for verb, pattern, handler in routes:
            found = re.match(pattern, rest)
            if not found:
                continue
            matched_path = True
            if verb != method:
                continue
            args = found.groupdict()
            if "body" in inspect.signature(handler).parameters:
                args["body"] = body
            return handler(**args)
        if matched_path:
            raise Reject(405, "MethodNotAllowed", f"{method} is not allowed on {rest}")
        raise Reject(404, "NotFound", f"no route for {rest}")

    @staticmethod
    def _valid(model: str, body: Any) -> None:
        issues = validate(model, body)
        if issues:
            raise Reject(400, "UserError", "; ".join(issues))

    def _prefix(self) -> str:
        return (
            "/subscriptions/sub/resourceGroups/rg/providers/"
            "Microsoft.MachineLearningServices/workspaces/ws"
        )

    # ------------------------------------------------------------------ workspace, datastore

    def _workspace(self) -> dict[str, Any]:
        return {
            "name": "ws",
            "location": self.location,
            "properties": {"friendlyName": "ws"},
            "systemData": _system_data(),
        }

    def _get_datastore(self, n: str) -> tuple[int, Any, dict[str, str]]:
        if n != "workspaceblobstore":
            raise Reject(404, "UserError", f"datastore {n} not found")
        return (
            200,
            {
                "name": n,
                "properties": {
                    "datastoreType": "AzureBlob",
                    "accountName": self.storage_account,
                    "containerName": self.container,
                    "endpoint": "core.windows.net",
                    "protocol": "https",
                    "isDefault": True,
                    "credentials": {
                        "credentialsType": "AccountKey",
                        "secrets": {"secretsType": "AccountKey"},
                    },
                },
                "systemData": _system_data(),
            },
            {},
        )

    def _list_secrets(self, n: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if body is not None:
            self._valid("SecretExpiry", body)
        self._get_datastore(n)
        return 200, {"secretsType": "AccountKey", "key": self.storage_key}, {}

    # ------------------------------------------------------------------ models, environments

    def _list_versions(self, n: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": list(self.models.get(n, {}).values())}, {}

    def _get_version(self, n: str, v: str) -> tuple[int, Any, dict[str, str]]:
        found = self.models.get(n, {}).get(v)
        if found is None:
            raise Reject(404, "UserError", f"model {n}:{v} not found")
        return 200, found, {}

    def _put_version(self, n: str, v: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        self._valid("ModelVersion", body)
        props = body["properties"]
        if props.get("modelType") not in MODEL_TYPES:
            raise Reject(400, "UserError", f"modelType must be one of {sorted(MODEL_TYPES)}")
        if not str(props.get("modelUri", "")).startswith("azureml://"):
            raise Reject(400, "UserError", "modelUri must be an azureml:// datastore path")
        existing = self.models.get(n, {}).get(v)
        if existing is not None and existing["properties"]["modelUri"] != props["modelUri"]:
            raise Reject(409, "Conflict", f"model {n}:{v} exists with another modelUri")
        resource = {
            "id": f"{self._prefix()}/models/{n}/versions/{v}",
            "name": v,
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "properties": {**props, "flavors": {}, "provisioningState": "Succeeded"},
            "systemData": _system_data(existing),
        }
        self.models.setdefault(n, {})[v] = resource
        return (200 if existing else 201), resource, {}

    def _delete_version(self, n: str, v: str) -> tuple[int, Any, dict[str, str]]:
        if v not in self.models.get(n, {}):
            return 204, None, {}
        model_id = f"{self._prefix()}/models/{n}/versions/{v}"
        users = [
            f"{e}/{d}"
            for e, deps in self.deployments.items()
            for d, dep in deps.items()
            if dep["properties"]["model"] == model_id
        ]
        if users:
            raise Reject(409, "Conflict", f"model {n}:{v} is used by deployments {users}")
        del self.models[n][v]
        return 200, None, {}

    def _delete_model(self, n: str) -> tuple[int, Any, dict[str, str]]:
        if n not in self.models:
            return 204, None, {}
        if self.models[n]:
            raise Reject(409, "Conflict", f"model {n} still has versions")
        del self.models[n]
        return 200, None, {}

    def _put_environment(self, n: str, v: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        self._valid("EnvironmentVersion", body)
        props = body["properties"]
        if not props.get("image"):
            raise Reject(400, "UserError", "an environment needs an image")
        key = f"{n}:{v}"
        existing = self.environments.get(key)
        if existing is not None and existing["properties"]["image"] != props["image"]:
            raise Reject(409, "Conflict", f"environment {key} is immutable")
        self.environments[key] = {
            "id": f"{self._prefix()}/environments/{n}/versions/{v}",
            "name": v,
            "properties": {**props, "environmentType": "UserCreated"},
            "systemData": _system_data(existing),
        }
        return (200 if existing else 201), self.environments[key], {}

    # ------------------------------------------------------------------ operations

    def _start(
        self, kind: str, apply: Callable[[], None], fail: Callable[[str], None]
    ) -> dict[str, str]:
        op_id = f"op-{next(self._ids)}"
        self.operations[op_id] = Operation(op_id, kind, self.operation_polls, apply, fail)
        base = (
            f"{self.url}/subscriptions/sub/providers/Microsoft.MachineLearningServices/"
            f"locations/{self.location}"
        )
        return {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op_id}?api-version={API_VERSION}",
            "Location": f"{base}/mfeOperationResults/{op_id}?api-version={API_VERSION}",
            "Retry-After": str(self.retry_after),
        }

    def _operation(self, kind: str, op_id: str) -> tuple[int, Any, dict[str, str]]:
        operation = self.operations.get(op_id)
        if operation is None:
            raise Reject(404, "NotFound", f"operation {op_id} not found")
        failure = None
        if operation.status == "InProgress" and operation.polls_left == 0:
            failure = self.failures.pop(operation.kind, None)
        operation.advance(failure)
        if kind == "mfeOperationResults":
            if operation.status == "InProgress":
                return 202, None, {"Retry-After": str(self.retry_after)}
            if operation.status == "Failed":
                raise Reject(400, operation.error["code"], operation.error["message"])
            return 200, None, {}
        answer: dict[str, Any] = {"id": op_id, "name": op_id, "status": operation.status}
        if operation.error:
            answer["error"] = operation.error
        return 200, answer, {}

    # ------------------------------------------------------------------ endpoints

    def _endpoint(self, e: str) -> dict[str, Any]:
        found = self.endpoints.get(e)
        if found is None:
            raise Reject(404, "UserError", f"endpoint {e} not found")
        return found

    def _get_endpoint(self, e: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self._endpoint(e), {}

    def _check_traffic(self, e: str, traffic: dict[str, int]) -> None:
        deployments = self.deployments.get(e, {})
        for name, percent in traffic.items():
            state = deployments.get(name, {}).get("properties", {}).get("provisioningState")
            if state != "Succeeded":
                raise Reject(
                    400, "UserError", f"traffic names deployment {name}, which is not ready"
                )
            if not 0 <= percent <= 100:
                raise Reject(400, "UserError", f"traffic {percent} for {name} out of range")
        total = sum(traffic.values())
        if traffic and total != 100 and total != 0:
            raise Reject(400, "UserError", f"traffic must sum to 100, not {total}")

    def _put_endpoint(self, e: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        self._valid("OnlineEndpoint", body)
        if not NAME.match(e) or "--" in e:
            raise Reject(400, "UserError", f"invalid endpoint name {e}")
        if body["location"] != self.location:
            raise Reject(400, "UserError", f"location must be the workspace's ({self.location})")
        props = body["properties"]
        traffic = {k: int(v) for k, v in (props.get("traffic") or {}).items()}
        self._check_traffic(e, traffic)
        existing = self.endpoints.get(e)
        if existing is not None and existing["properties"]["authMode"] != props["authMode"]:
            raise Reject(400, "UserError", "authMode cannot change")
        resource = {
            "id": f"{self._prefix()}/onlineEndpoints/{e}",
            "name": e,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": self.location,
            "tags": body.get("tags") or {},
            "properties": {
                **props,
                "traffic": (existing or {}).get("properties", {}).get("traffic", {}),
                "scoringUri": f"{self.url}/score/{e}",
                "provisioningState": "Creating" if existing is None else "Updating",
            },
            "systemData": _system_data(existing),
        }
        if existing is None:
            self.endpoints[e] = resource
            self.deployments.setdefault(e, {})
            self.endpoints[e]["_keys"] = {"primaryKey": f"key-{e}-1", "secondaryKey": f"key-{e}-2"}

        def apply() -> None:
            self._check_traffic(e, traffic)
            final = {**resource, "properties": {**resource["properties"], "traffic": traffic}}
            final["properties"]["provisioningState"] = "Succeeded"
            final["_keys"] = self.endpoints[e]["_keys"]
            self.endpoints[e] = final

        def fail(_message: str) -> None:
            self.endpoints[e]["properties"]["provisioningState"] = "Failed"

        headers = self._start("endpoint", apply, fail)
        return (201 if existing is None else 200), self._public(resource), headers

    @staticmethod
    def _public(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _delete_endpoint(self, e: str) -> tuple[int, Any, dict[str, str]]:
        if e not in self.endpoints:
            return 204, None, {}
        self.endpoints[e]["properties"]["provisioningState"] = "Deleting"

        def apply() -> None:
            self.endpoints.pop(e, None)
            for d in self.deployments.pop(e, {}):
                self.predictors.pop(f"{e}/{d}", None)

        return 202, None, self._start("endpoint", apply, lambda _m: None)

    def _list_keys(self, e: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self._endpoint(e)["_keys"], {}

    # ------------------------------------------------------------------ deployments

    def _list_deployments(self, e: str) -> tuple[int, Any, dict[str, str]]:
        self._endpoint(e)
        return 200, {"value": list(self.deployments.get(e, {}).values())}, {}

    def _get_deployment(self, e: str, d: str) -> tuple[int, Any, dict[str, str]]:
        self._endpoint(e)
        found = self.deployments.get(e, {}).get(d)
        if found is None:
            raise Reject(404, "UserError", f"deployment {e}/{d} not found")
        return 200, found, {}

    def _put_deployment(self, e: str, d: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        self._valid("OnlineDeployment", body)
        self._endpoint(e)
        if not NAME.match(d) or "--" in d:
            raise Reject(400, "UserError", f"invalid deployment name {d}")
        existing = self.deployments[e].get(d)
        if existing is None and len(self.deployments[e]) >= 20:
            raise Reject(400, "UserError", "an endpoint has at most 20 deployments")
        props = body["properties"]
        capacity = (body.get("sku") or {}).get("capacity", 1)
        if not 1 <= capacity <= 50:
            raise Reject(400, "UserError", f"instance count {capacity} must be 1-50")
        model_match = re.match(
            WS + r"/models/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$", props.get("model") or ""
        )
        if not model_match or model_match["v"] not in self.models.get(model_match["n"], {}):
            raise Reject(400, "UserError", f"model {props.get('model')} not found")
        env_match = re.match(
            WS + r"/environments/(?P<n>[^/]+)/versions/(?P<v>[^/]+)$",
            props.get("environmentId") or "",
        )
        environment = (
            self.environments.get(f"{env_match['n']}:{env_match['v']}") if env_match else None
        )
        if environment is None:
            raise Reject(400, "UserError", f"environment {props.get('environmentId')} not found")
        if not props.get("instanceType"):
            raise Reject(400, "UserError", "instanceType is required")
        version = self.models[model_match["n"]][model_match["v"]]
        resource = {
            "id": f"{self._prefix()}/onlineEndpoints/{e}/deployments/{d}",
            "name": d,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "location": self.location,
            "tags": body.get("tags") or {},
            "sku": {"name": "Default", "capacity": capacity},
            "properties": {
                **props,
                "provisioningState": "Creating" if existing is None else "Updating",
            },
            "systemData": _system_data(existing),
        }
        self.deployments[e][d] = resource
        key = f"{e}/{d}"
        self.logs[key] = [f"{_now()} | pulling {environment['properties']['image']}"]

        def apply() -> None:
            self.logs[key] += self._container_start(
                model_match["n"], model_match["v"], version, environment, props
            )
            self.predictors[key] = self._load(key, version["properties"]["modelUri"])
            resource["properties"]["provisioningState"] = "Succeeded"

        def fail(message: str) -> None:
            self.logs[key].append(f"{_now()} | {message}")
            resource["properties"]["provisioningState"] = "Failed"

        return (201 if existing is None else 200), resource, self._start("deployment", apply, fail)

    def _container_start(
        self,
        model: str,
        version: str,
        registered: dict[str, Any],
        environment: dict[str, Any],
        props: dict[str, Any],
    ) -> list[str]:
        """Check what the serving container would find; raise Reject as its probes would."""
        folder = registered["properties"]["modelUri"].rstrip("/").rsplit("/", 1)[-1]
        mount = f"{props.get('modelMountPath') or f'{MOUNT}/{model}/{version}'}/{folder}"
        env = props.get("environmentVariables") or {}
        name = env.get("MODEL_NAME", "")
        base = f"{env.get('MODEL_BASE_PATH', '/models')}/{name}"
        if base != mount:
            raise Reject(
                400,
                "ResourceNotReady",
                f"No versions of servable {name} found under base path {base} "
                f"(the model is mounted at {mount}); liveness probe failed",
            )
        routes = environment["properties"].get("inferenceConfig") or {}
        expected = {
            "livenessRoute": f"/v1/models/{name}",
            "readinessRoute": f"/v1/models/{name}",
            "scoringRoute": f"/v1/models/{name}:predict",
        }
        for route, path in expected.items():
            given = routes.get(route) or {}
            if given.get("path") != path:
                raise Reject(
                    400,
                    "ResourceNotReady",
                    f"{route} {given.get('path')} is not served by the container "
                    f"(expected {path}); probe returned 404",
                )
        return [f"{_now()} | Successfully loaded servable version {{name: {name}}}"]

    def _load(self, key: str, model_uri: str) -> Predictor:
        try:
            return self.load_model(model_uri)
        except Exception as e:  # noqa: BLE001 - any load failure is the container's failure
            raise Reject(400, "ResourceNotReady", f"model failed to load: {e}") from e

    def _delete_deployment(self, e: str, d: str) -> tuple[int, Any, dict[str, str]]:
        if d not in self.deployments.get(e, {}):
            return 204, None, {}
        if int(self.endpoints[e]["properties"].get("traffic", {}).get(d, 0)):
            raise Reject(400, "UserError", f"deployment {d} receives traffic; route it away first")
        self.deployments[e][d]["properties"]["provisioningState"] = "Deleting"

        def apply() -> None:
            self.deployments.get(e, {}).pop(d, None)
            self.predictors.pop(f"{e}/{d}", None)

        return 202, None, self._start("deployment", apply, lambda _m: None)

    def _get_logs(self, e: str, d: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        self._valid("DeploymentLogsRequest", body)
        self._get_deployment(e, d)
        lines = self.logs.get(f"{e}/{d}", [])
        tail = body.get("tail")
        return 200, {"content": "\n".join(lines[-tail:] if tail else lines)}, {}

    # ------------------------------------------------------------------ scoring

    def _score(self, e: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        endpoint = self.endpoints.get(e)
        if endpoint is None:
            raise Reject(404, "NotFound", f"endpoint {e} not found")
        keys = endpoint["_keys"].values()
        if headers.get("authorization", "").removeprefix("Bearer ") not in keys:
            return 401, {"message": "key auth failed"}, {}
        traffic = {
            k: int(v) for k, v in endpoint["properties"].get("traffic", {}).items() if int(v)
        }
        chosen = headers.get("azureml-model-deployment")
        if chosen is None:
            if not traffic:
                return 404, {"message": "no deployment with positive weight"}, {}
            slot = next(self._slots) % 100
            for name, percent in sorted(traffic.items()):
                if slot < percent:
                    chosen = name
                    break
                slot -= percent
        predictor = self.predictors.get(f"{e}/{chosen}")
        if predictor is None:
            return 404, {"message": f"deployment {chosen} not found"}, {}
        # the container is TF Serving's REST API: row ("instances") or columnar ("inputs")
        # format; anything it answers with a non-200 reaches the caller as 424
        key, answer_key = ("instances", "predictions")
        if isinstance(body, dict) and "inputs" in body and "instances" not in body:
            key, answer_key = ("inputs", "outputs")
        try:
            if not isinstance(body, dict) or not isinstance(body.get(key), list):
                raise ValueError('Missing "instances" or "inputs" key')
            answer = predictor(body[key])
        except Exception as e:  # noqa: BLE001 - the container's 400 for any bad input
            headers = {
                "ms-azureml-model-error-statuscode": "400",
                "ms-azureml-model-error-reason": type(e).__name__,
            }
            return 424, {"error": str(e)[:200]}, headers
        return 200, {answer_key: answer}, {"azureml-model-deployment": str(chosen)}
