"""A stateful loopback fake of the Vertex AI ``aiplatform`` v1 REST methods cloudserve uses.

There is no Vertex emulator, so this is a small HTTP server (``http.server`` in a thread) that
keeps models with versions and aliases, endpoints with deployed models and a trafficSplit, and
long-running operations. Every request is first checked against the discovery document
shipped in google-api-python-client (:mod:`vertex_discovery`): a wrong path, verb, query
parameter or body field is a 400/404/405, as a misspelt field would be on the real API.

Behaviour modelled on the method descriptions (clouds.md A2, aiplatform.v1.json), including
the rules the discovery document states only in prose:

* ``models.upload`` creates a model (``modelId``; its first version gets the ``default`` alias)
  or, with ``parentModel``, a new version; version ids count up and are never reused.
  ``containerSpec.imageUri`` "must identify an image in Artifact Registry or Container
  Registry" (``*-docker.pkg.dev``, ``gcr.io``, ``*.gcr.io``): anything else is a 400.
* Version aliases: ``[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]`` on upload, the last character may be
  ``-`` in ``mergeVersionAliases`` (the prose of each field), at most 128 characters.
* Labels: the labels of the upload that created the model are the *model's* labels; every
  upload's labels are that *version's*. "Both the model labels and the version labels are
  merged when a model is returned" (UpdateModelRequest): which side wins on a shared key is
  not documented, so the fake lets the model's label win. Code that identifies a version by
  a label it set on that version therefore sees the first version's value.
* ``mergeVersionAliases`` needs ``M@version``, moves an alias between versions, and ``-alias``
  removes one (never ``default``).
* ``deployModel``/``undeployModel``/endpoint ``patch``: trafficSplit values sum to 100 (or the map
  is empty), key "0" is the model being deployed, an empty split leaves traffic alone, and a
  deployed model that still carries traffic cannot be undeployed.
* deleting a deployed version, the only version, the default version, a model with deployed
  versions, or an endpoint with deployed models is refused.
* ``mutateDeployedModel`` changes only the fields its request documents (replica counts,
  autoscaling specs, container logging) named in ``updateMask``; the deployed model keeps
  its machine.
* ``entries.list`` of Cloud Logging (``logging`` v2, validated against its own discovery
  document) answers from log entries the test added with :meth:`FakeVertex.add_log`; the
  filter may be ``path="value"`` terms joined by ``AND``.
* ``predict`` picks a deployed model by the trafficSplit (deterministically, 100 slots in
  turn) and answers with the model the test harness loaded for that deployed model's
  ``artifactUri`` (``load_model``): the tests load the real SavedModel from the storage
  emulator, so an answer proves which uploaded artifact served it.

Latency knob: ``operation_polls`` — each new operation answers ``done: false`` to that many
GETs before it completes (its effect is applied when it completes). ``fail_next(method_id,
message)`` makes the next such operation finish with an error instead.
``fail_requests(method, times, status)`` answers the next ``times`` requests of a method with
a transport-level error status (503 by default) before touching any state, as a flaky
front end would; every request that arrived, failed or not, is in ``attempts``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.adapters.fakes.vertex_discovery import Discovery, Invalid, load_document

Predictor = Callable[[list[Any]], list[Any]]
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
MERGE_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]$")
IMAGE_HOST = re.compile(r"^(?:[a-z0-9-]+-docker\.pkg\.dev|gcr\.io|[a-z0-9-]+\.gcr\.io)$")
MUTABLE = {
    "dedicatedResources.minReplicaCount",
    "dedicatedResources.maxReplicaCount",
    "dedicatedResources.requiredReplicaCount",
    "dedicatedResources.autoscalingMetricSpecs",
    "disableContainerLogging",
}
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Operation:
    name: str
    method: str
    polls_left: int
    apply: Callable[[], dict[str, Any]]
    done: bool = False
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def finish(self, failure: str | None) -> None:
        self.done = True
        if failure is not None:
            self.error = {"code": 9, "message": failure}
            return
        try:
            self.response = self.apply()
        except Invalid as e:
            self.error = {"code": 9, "message": e.message}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "done": self.done, "metadata": {}}
        if self.error is not None:
            out["error"] = self.error
        elif self.done:
            out["response"] = self.response or {}
        return out


@dataclass
class FakeVertex:
    """The fake's state; serve it with :meth:`start`. All access holds ``lock``."""

    load_model: Callable[[str], Predictor]
    operation_polls: int = 0
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    next_version: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictors: dict[str, Predictor] = field(default_factory=dict)  # deployedModelId -> model
    operations: dict[str, Operation] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    model_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    transport_failures: dict[str, list[int]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.discovery = Discovery(load_document())
        self.logging = Discovery(load_document("logging", "v2"))
        self._ids = itertools.count(1)
        self._route = itertools.count()
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ server

    def start(self) -> str:
        """Serve on 127.0.0.1 (a free port) in a daemon thread; returns the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                status, payload = fake.handle(self.command, self.path, self._body())
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def fail_next(self, method: str, message: str) -> None:
        """Make the next operation of ``method`` (e.g. "deployModel") end with ``message``."""
        self.failures[method] = message

    def fail_requests(self, method: str, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` requests of ``method`` (short name) with ``status``."""
        self.transport_failures[method] = [status] * times

    def add_log(
        self, endpoint_id: str, deployed_model_id: str, text: str, *, timestamp: str
    ) -> None:
        """Add a serving-container log line as Vertex writes it to Cloud Logging."""
        project, region = "test-project", "us-central1"
        with self.lock:
            self.logs.append(
                {
                    "logName": f"projects/{project}/logs/"
                    "aiplatform.googleapis.com%2Fprediction_container",
                    "resource": {
                        "type": "aiplatform.googleapis.com/Endpoint",
                        "labels": {
                            "endpoint_id": endpoint_id,
                            "location": region,
                            "resource_container": project,
                        },
                    },
                    "labels": {"deployed_model_id": deployed_model_id},
                    "textPayload": text,
                    "timestamp": timestamp,
                    "insertId": str(len(self.logs)),
                }
            )

    def methods_called(self) -> list[str]:
        """The short method names of every valid request so far, in order."""
        return [m for m, _ in self.calls]

    def bodies(self, method: str) -> list[dict[str, Any]]:
        """The request bodies sent to ``method`` (short name, e.g. "deployModel")."""
        return [b or {} for m, b in self.calls if m == method]

    # ------------------------------------------------------------------ dispatch

    def handle(self, verb: str, raw_path: str, body: Any) -> tuple[int, dict[str, Any]]:
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        discovery = self.logging if url.path.startswith("/v2/") else self.discovery
        try:
            method = discovery.match(verb, url.path, query)
            short = method.id.rsplit(".", 1)[-1]
            with self.lock:
                self.attempts.append(short)
                failing = self.transport_failures.get(short)
                if failing:
                    status = failing.pop(0)
                    raise Invalid(status, f"the service is unavailable ({status}); try again")
            discovery.validate_body(method, body)
            handler = getattr(
                self, "_" + method.id.split("locations.", 1)[-1].replace(".", "_"), None
            )
            if handler is None:
                raise Invalid(501, f"the fake does not implement {method.id}")
            name = unquote(url.path).split("/v1/", 1)[-1].split(":", 1)[0]
            with self.lock:
                self.calls.append((short, body))
                return 200, handler(name, {k: v[0] for k, v in query.items()}, body or {})
        except Invalid as e:
            status = {
                400: "INVALID_ARGUMENT",
                404: "NOT_FOUND",
                409: "ALREADY_EXISTS",
                503: "UNAVAILABLE",
            }.get(e.status, "FAILED_PRECONDITION")
            return e.status, {"error": {"code": e.status, "message": e.message, "status": status}}

    def _operation(self, parent: str, method: str, apply: Callable[[], dict]) -> dict[str, Any]:
        op = Operation(
            f"{parent}/operations/{next(self._ids)}", method, self.operation_polls, apply
        )
        self.operations[op.name] = op
        if op.polls_left <= 0:
            op.finish(self.failures.pop(method, None))
        return op.body()

    # ------------------------------------------------------------------ operations

    def _get_operation(self, name: str) -> dict[str, Any]:
        op = self.operations.get(name)
        if op is None:
            raise Invalid(404, f"operation {name} not found")
        if not op.done:
            op.polls_left -= 1
            if op.polls_left <= 0:
                op.finish(self.failures.pop(op.method, None))
        return op.body()

    def _operations_get(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        return self._get_operation(name)

    _models_operations_get = _endpoints_operations_get = _operations_get

    # ------------------------------------------------------------------ models

    @staticmethod
    def _split_model(name: str) -> tuple[str, str, str | None]:
        base, _, ref = name.partition("@")
        parent, _, model_id = base.partition("/models/")
        return parent, model_id, ref or None

    def _resolve(self, name: str) -> tuple[str, str, dict[str, Any]]:
        _, model_id, ref = self._split_model(name)
        versions = self.models.get(model_id)
        if versions is None:
            raise Invalid(404, f"Model {name} not found")
        ref = ref or "default"
        for vid, body in versions.items():
            if ref == vid or ref in body["versionAliases"]:
                return model_id, vid, body
        raise Invalid(404, f"Model {name} not found")

    def _models_upload(self, path: str, query: dict, body: dict) -> dict[str, Any]:
        parent = path.rsplit("/models", 1)[0]
        model = dict(body["model"])
        if "displayName" not in model or "containerSpec" not in model:
            raise Invalid(400, "model.displayName and model.containerSpec are required")
        image = model["containerSpec"].get("imageUri", "")
        if not image:
            raise Invalid(400, "containerSpec.imageUri is required")
        host, slash, _ = image.partition("/")
        if not slash or not IMAGE_HOST.match(host):
            raise Invalid(
                400,
                f"containerSpec.imageUri {image!r} must identify an image in Artifact Registry "
                "or Container Registry",
            )
        aliases = model.get("versionAliases", [])
        if bad := [a for a in aliases if not ALIAS.match(a)]:
            raise Invalid(
                400, f"invalid version aliases {bad}: the format is [a-z][a-zA-Z0-9-]*[a-z0-9]"
            )
        if "parentModel" in body:
            _, model_id, _ = self._split_model(body["parentModel"])
            if model_id not in self.models:
                raise Invalid(404, f"parent model {body['parentModel']} not found")
        else:
            model_id = body.get("modelId") or str(next(self._ids))
            if model_id in self.models:
                raise Invalid(409, f"Model {parent}/models/{model_id} already exists")
            self.models[model_id] = {}
            self.next_version[model_id] = 1
            self.model_labels[model_id] = dict(model.get("labels", {}))
        name = f"{parent}/models/{model_id}"

        def apply() -> dict[str, Any]:
            versions = self.models[model_id]
            vid = str(self.next_version[model_id])
            self.next_version[model_id] += 1
            own = list(aliases)
            if not versions:
                own.append("default")
            for other in versions.values():
                other["versionAliases"] = [a for a in other["versionAliases"] if a not in own]
            stamp = _now()
            versions[vid] = {
                **model,
                "name": name,
                "versionId": vid,
                "versionAliases": own,
                "createTime": stamp,
                "versionCreateTime": stamp,
                "versionUpdateTime": stamp,
            }
            return {
                "@type": TYPE_PREFIX + "UploadModelResponse",
                "model": name,
                "modelVersionId": vid,
            }

        return self._operation(name, "upload", apply)

    def _returned(self, model_id: str, version: dict[str, Any]) -> dict[str, Any]:
        """A version as the API returns it: model and version labels merged (model wins)."""
        labels = {**version.get("labels", {}), **self.model_labels.get(model_id, {})}
        return {**version, "labels": labels} if labels else dict(version)

    def _models_get(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        model_id, _, version = self._resolve(name)
        return self._returned(model_id, version)

    def _models_listVersions(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        _, model_id, _ = self._split_model(name)
        if model_id not in self.models:
            raise Invalid(404, f"Model {name} not found")
        return {"models": [self._returned(model_id, v) for v in self.models[model_id].values()]}

    def _models_mergeVersionAliases(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        if "@" not in name:
            raise Invalid(400, "name must include a version: models/M@version")
        model_id, vid, target = self._resolve(name)
        for alias in body.get("versionAliases", []):
            if alias == "-default":
                raise Invalid(400, "the default alias cannot be removed, only moved")
            if not MERGE_ALIAS.match(alias.removeprefix("-")):
                raise Invalid(
                    400, f"invalid alias {alias!r}: at most 128 characters of [a-z][a-zA-Z0-9-]*"
                )
            if alias.startswith("-"):
                if alias[1:] in target["versionAliases"]:
                    target["versionAliases"].remove(alias[1:])
                continue
            for other in self.models[model_id].values():
                if alias in other["versionAliases"]:
                    other["versionAliases"].remove(alias)
            target["versionAliases"].append(alias)
        target["versionUpdateTime"] = _now()
        return self._returned(model_id, target)

    def _deployed_versions(self, model_id: str) -> set[str]:
        return {
            d["modelVersionId"]
            for e in self.endpoints.values()
            for d in e["deployedModels"]
            if d["model"].rsplit("/", 1)[-1] == model_id
        }

    def _models_deleteVersion(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        if "@" not in name:
            raise Invalid(400, "name must include a version: models/M@version")
        model_id, vid, target = self._resolve(name)
        if vid in self._deployed_versions(model_id):
            raise Invalid(400, f"version {vid} is deployed; undeploy it first")
        if len(self.models[model_id]) == 1:
            raise Invalid(400, "cannot delete the only version; delete the model instead")
        if "default" in target["versionAliases"]:
            raise Invalid(400, "cannot delete the default version")

        def apply() -> dict[str, Any]:
            del self.models[model_id][vid]
            return {}

        return self._operation(name.split("/models/", 1)[0], "deleteVersion", apply)

    def _models_delete(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        _, model_id, _ = self._split_model(name)
        if model_id not in self.models:
            raise Invalid(404, f"Model {name} not found")
        if self._deployed_versions(model_id):
            raise Invalid(400, "the model has deployed versions; undeploy them first")

        def apply() -> dict[str, Any]:
            del self.models[model_id]
            self.model_labels.pop(model_id, None)
            return {}

        return self._operation(name, "delete", apply)

    # ------------------------------------------------------------------ endpoints

    def _endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(name.rsplit("/", 1)[-1])
        if endpoint is None:
            raise Invalid(404, f"Endpoint {name} not found")
        return endpoint

    def _endpoints_create(self, path: str, query: dict, body: dict) -> dict[str, Any]:
        parent = path.rsplit("/endpoints", 1)[0]
        if "displayName" not in body:
            raise Invalid(400, "endpoint.displayName is required")
        endpoint_id = query.get("endpointId") or str(next(self._ids))
        if not re.match(r"^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$", endpoint_id):
            raise Invalid(400, f"invalid endpointId {endpoint_id!r}")
        if endpoint_id in self.endpoints:
            raise Invalid(409, f"Endpoint {endpoint_id} already exists")
        name = f"{parent}/endpoints/{endpoint_id}"

        def apply() -> dict[str, Any]:
            self.endpoints[endpoint_id] = {
                **body,
                "name": name,
                "deployedModels": [],
                "trafficSplit": {},
                "createTime": _now(),
            }
            return {"@type": TYPE_PREFIX + "Endpoint", **self.endpoints[endpoint_id]}

        return self._operation(name, "create", apply)

    def _endpoints_get(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        return self._endpoint(name)

    def _endpoints_delete(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        if endpoint["deployedModels"]:
            raise Invalid(400, "the endpoint has deployed models; undeploy them first")

        def apply() -> dict[str, Any]:
            del self.endpoints[name.rsplit("/", 1)[-1]]
            return {}

        return self._operation(name, "delete", apply)

    @staticmethod
    def _check_split(split: dict[str, int], ids: set[str]) -> None:
        if unknown := set(split) - ids:
            raise Invalid(400, f"trafficSplit names unknown deployed models {sorted(unknown)}")
        if any(int(v) < 0 or int(v) > 100 for v in split.values()):
            raise Invalid(400, f"trafficSplit percentages must be 0-100, got {split}")
        if split and sum(int(v) for v in split.values()) != 100:
            raise Invalid(400, f"trafficSplit must sum to 100, got {sum(split.values())}")

    def _endpoints_patch(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        mask = [
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), f)
            for f in query.get("updateMask", "").split(",")
            if f
        ]
        if not mask:
            raise Invalid(400, "updateMask is required")
        if "trafficSplit" in mask:
            self._check_split(
                body.get("trafficSplit", {}), {d["id"] for d in endpoint["deployedModels"]}
            )
        for key in mask:
            if key not in ("trafficSplit", "labels", "displayName", "description"):
                raise Invalid(400, f"field {key} cannot be updated")
            endpoint[key] = body.get(key, {} if key in ("trafficSplit", "labels") else "")
        return endpoint

    def _endpoints_deployModel(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        deployed = dict(body["deployedModel"])
        model_id, vid, version = self._resolve(deployed.get("model", ""))
        resources = deployed.get("dedicatedResources")
        if not resources or "machineType" not in resources.get("machineSpec", {}):
            raise Invalid(400, "dedicatedResources.machineSpec.machineType is required")
        if resources.get("minReplicaCount", 0) < 1:
            raise Invalid(400, "dedicatedResources.minReplicaCount must be >= 1")
        if (
            resources.get("maxReplicaCount", resources["minReplicaCount"])
            < resources["minReplicaCount"]
        ):
            raise Invalid(400, "maxReplicaCount must be >= minReplicaCount")
        if resources["machineSpec"].get("acceleratorType") == "NVIDIA_TESLA_K80":
            raise Invalid(
                400,
                'Accelerator "NVIDIA_TESLA_K80" is not supported for machine '
                f'type "{resources["machineSpec"]["machineType"]}"',
            )
        split = body.get("trafficSplit", {})
        self._check_split(split, {d["id"] for d in endpoint["deployedModels"]} | {"0"})
        deployed_id = str(next(self._ids))

        def apply() -> dict[str, Any]:
            predictor = self.load_model(version["artifactUri"])
            record = {
                **deployed,
                "id": deployed_id,
                "model": deployed["model"].split("@", 1)[0],
                "modelVersionId": vid,
                "createTime": _now(),
            }
            endpoint["deployedModels"].append(record)
            self.predictors[deployed_id] = predictor
            if split:
                endpoint["trafficSplit"] = {
                    (deployed_id if k == "0" else k): v for k, v in split.items()
                }
            return {"@type": TYPE_PREFIX + "DeployModelResponse", "deployedModel": record}

        return self._operation(name, "deployModel", apply)

    def _endpoints_mutateDeployedModel(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        wanted = body.get("deployedModel", {})
        deployed = next(
            (d for d in endpoint["deployedModels"] if d["id"] == wanted.get("id")), None
        )
        if deployed is None:
            raise Invalid(404, f"deployed model {wanted.get('id')!r} not found in {name}")
        mask = [
            ".".join(
                re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in f.split(".")
            )
            for f in body.get("updateMask", "").split(",")
            if f
        ]
        if not mask:
            raise Invalid(400, "updateMask is required")
        if bad := [f for f in mask if f not in MUTABLE]:
            raise Invalid(400, f"fields {bad} of a deployed model cannot be mutated")
        resources = dict(deployed.get("dedicatedResources", {}))
        given = wanted.get("dedicatedResources", {})
        for path in mask:
            if path.startswith("dedicatedResources."):
                key = path.split(".", 1)[1]
                if key in given:
                    resources[key] = given[key]
                else:
                    resources.pop(key, None)
        if resources.get("minReplicaCount", 1) < 1:
            raise Invalid(400, "dedicatedResources.minReplicaCount must be >= 1")
        if (
            resources.get("maxReplicaCount", resources["minReplicaCount"])
            < resources["minReplicaCount"]
        ):
            raise Invalid(400, "maxReplicaCount must be >= minReplicaCount")

        def apply() -> dict[str, Any]:
            deployed["dedicatedResources"] = resources
            if "disableContainerLogging" in mask:
                deployed["disableContainerLogging"] = wanted.get("disableContainerLogging", False)
            return {"@type": TYPE_PREFIX + "MutateDeployedModelResponse", "deployedModel": deployed}

        return self._operation(name, "mutateDeployedModel", apply)

    def _endpoints_undeployModel(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        deployed_id = body.get("deployedModelId", "")
        if deployed_id not in {d["id"] for d in endpoint["deployedModels"]}:
            raise Invalid(404, f"deployed model {deployed_id} not found")
        split = body.get("trafficSplit")
        remaining = {d["id"] for d in endpoint["deployedModels"]} - {deployed_id}
        if split is not None:
            self._check_split(split, remaining)
        elif remaining and endpoint["trafficSplit"].get(deployed_id, 0) > 0:
            # undeploying the last deployed model always leaves the split empty (the doc)
            raise Invalid(400, f"deployed model {deployed_id} still receives traffic")

        def apply() -> dict[str, Any]:
            endpoint["deployedModels"] = [
                d for d in endpoint["deployedModels"] if d["id"] != deployed_id
            ]
            self.predictors.pop(deployed_id, None)
            if split is not None:
                endpoint["trafficSplit"] = split
            elif not endpoint["deployedModels"]:
                endpoint["trafficSplit"] = {}
            return {"@type": TYPE_PREFIX + "UndeployModelResponse"}

        return self._operation(name, "undeployModel", apply)

    def _endpoints_predict(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        split = endpoint["trafficSplit"]
        if not split:
            raise Invalid(400, "the endpoint has no traffic split: no model serves it")
        slot = next(self._route) % 100
        for deployed_id in sorted(split):
            slot -= split[deployed_id]
            if slot < 0:
                break
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == deployed_id)
        if "instances" not in body:
            raise Invalid(400, "instances is required")
        return {
            "predictions": self.predictors[deployed_id](body["instances"]),
            "deployedModelId": deployed_id,
            "model": deployed["model"],
            "modelVersionId": deployed["modelVersionId"],
            "modelDisplayName": deployed.get("displayName", ""),
        }

    # ------------------------------------------------------------------ Cloud Logging

    def _logging_entries_list(self, name: str, query: dict, body: dict) -> dict[str, Any]:
        terms = [t.strip() for t in body.get("filter", "").split(" AND ") if t.strip()]
        wanted: list[tuple[list[str], str]] = []
        for term in terms:
            match = re.fullmatch(r'([a-zA-Z_.]+)="([^"]*)"', term)
            if match is None:
                raise Invalid(400, f'the fake understands only path="value" terms: {term!r}')
            wanted.append((match.group(1).split("."), match.group(2)))

        def value(entry: dict[str, Any], path: list[str]) -> Any:
            node: Any = entry
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            return node

        found = [e for e in self.logs if all(value(e, p) == v for p, v in wanted)]
        order = body.get("orderBy", "timestamp asc")
        if order not in ("timestamp asc", "timestamp desc"):
            raise Invalid(400, f"orderBy is 'timestamp asc' or 'timestamp desc', not {order!r}")
        found.sort(key=lambda e: e["timestamp"], reverse=order == "timestamp desc")
        return {"entries": found[: int(body.get("pageSize", 50))]}
