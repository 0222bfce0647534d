"""A stand-in Kubernetes cluster for the kubernetes adapter's tests: kmock + a fake controller.

No API server can run on these machines, so the cluster is three parts in one asyncio loop
on a background thread:

* **API server**: kmock's ``KubernetesEmulator`` (its bundled resource discovery, stateful
  create/get/list/patch/delete), made stricter and more real by :class:`StrictApiServer`:
  every object created or patched is validated, as merged, against the Kubernetes 1.37 OpenAPI
  schema with ``kubernetes-validate`` in strict mode (an unknown or misspelt field is a 422,
  as with ``kubectl --validate=strict``); only ``application/merge-patch+json`` patches are
  accepted (kmock's merge is RFC 7386); ``metadata.generation`` goes up when ``spec``
  changes and ``uid``/``resourceVersion``/``creationTimestamp`` are set, as the real API
  server does. kmock does not filter lists by label selector; the adapter re-checks labels.
* **Controller + kubelet** (:class:`FakeController`): for each Deployment it keeps
  ``spec.replicas`` pods of the current template and writes the Deployment's status
  (observedGeneration, updated/ready/available replicas, Progressing/Available conditions)
  the way the deployment controller does. What happens to a template's pods is chosen per
  image with :meth:`FakeController.behave`: ``"run"`` (default), ``"ImagePullBackOff"`` /
  ``"CrashLoopBackOff"`` (pods stuck with that waiting reason; old pods keep serving;
  Progressing turns ``ProgressDeadlineExceeded`` after ``deadline_s``), ``"hang"`` (never
  observed: the rollout times out). A running template is served by ONE real runtime
  process (``python -m cloudserve_runtime``) started with the container's own args and env
  (paths under ``/etc/cloudserve`` and ``/var/cache/cloudserve`` mapped to temporary
  directories the fake kubelet keeps in sync with the mounted ConfigMap); a pod is Ready when
  that process answers the container's readinessProbe path.
* **Namespaces**: kmock cannot route the cluster-scoped ``/api/v1/namespaces/<name>``, so the
  stand-in answers it from :attr:`FakeCluster.namespaces`.
* **Proxies and logs**: ``pods/<pod>:<port>/proxy/...`` and ``services/<svc>:<port>/proxy/...``
  are forwarded to the runtime process of the pod's Deployment; ``pods/<pod>/log`` returns
  that process's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import kmock
import kubernetes_validate
from kmock._internal import dicts as kmock_dicts
from kmock._internal.k8s import KubernetesEmulator, KubernetesError, KubernetesScaffold

from tests.support import free_port

K8S_VERSION = "1.37"
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
PODS = kmock.resource("", "v1", "pods")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
_PROXY = re.compile(
    r"^/api/v1/namespaces/([^/]+)/(pods|services)/([^/:]+)(?::([^/]+))?/proxy/(.*)$"
)
_NAMESPACE = re.compile(r"^/api/v1/namespaces/([^/]+)$")
_LOG = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StrictApiServer(KubernetesEmulator):
    """kmock's emulator plus schema validation and the metadata the real API server keeps."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        self.rejected: list[str] = []
        self.counter = 0

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if request.subresource is not None:  # proxy, log, status: no object is written
            return await KubernetesScaffold._handle(self, request)
        try:
            if request.action == kmock.action.CREATE:
                self._on_create(request)
            elif request.action == kmock.action.UPDATE:
                self._on_patch(request)
        except KubernetesError as e:
            return await self._render_error(e)
        return await super()._handle(request)

    def _stamp(self, meta: dict[str, Any]) -> None:
        self.counter += 1
        meta["resourceVersion"] = str(self.counter)

    def _validate(self, obj: dict[str, Any]) -> None:
        body = copy.deepcopy(obj)
        body.pop("status", None)
        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            self.rejected.append(f"{obj.get('kind')}: {e.message}")
            raise KubernetesError(status=422, reason="Invalid", message=str(e.message)) from e

    def _on_create(self, request: Any) -> None:
        obj = request.data
        if not isinstance(obj, dict):
            raise KubernetesError(status=400, reason="BadRequest", message="body is not an object")
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", request.namespace)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        self._stamp(meta)
        self._validate(obj)

    def _on_patch(self, request: Any) -> None:
        kind = request.headers.get("Content-Type", "").split(";")[0]
        if kind != "application/merge-patch+json":
            raise KubernetesError(
                status=415,
                reason="UnsupportedMediaType",
                message=f"this stand-in applies merge patches only, got {kind}",
            )
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # the emulator answers 404
        current = self.objects[key].raw
        patch = request.data
        merged = kmock_dicts.patch_dict(copy.deepcopy(current), copy.deepcopy(patch))
        meta = patch.setdefault("metadata", {})
        if merged.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self._stamp(meta)
        self._validate(merged)


@dataclass
class _Runtime:
    process: subprocess.Popen
    rest_port: int
    root: Path
    log: Path


@dataclass
class FakeController:
    """Drives Deployments' pods and status; runs one runtime process per running template."""

    api: StrictApiServer
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    deadline_s: float = 3.0
    behaviours: dict[str, str] = field(default_factory=dict)  # image -> mode
    runtimes: dict[tuple[str, str, str], _Runtime] = field(default_factory=dict)
    stuck_since: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def behave(self, image: str, mode: str) -> None:
        """What pods of ``image`` do: run, ImagePullBackOff, CrashLoopBackOff or hang."""
        self.behaviours[image] = mode

    # ------------------------------------------------------------------ reconcile

    def step(self) -> None:
        live = set()
        for (resource, ns, name), obj in list(self.api.objects.items()):
            if resource != DEPLOYMENTS or obj.deleted:
                continue
            live.add((ns, name))
            self._reconcile(ns, name, obj.raw)
        for key in [k for k in self.runtimes if (k[0], k[1]) not in live]:
            self._stop(key)
        for (resource, ns, _name), obj in list(self.api.objects.items()):
            if resource == PODS and not obj.deleted:
                owner = obj.raw["metadata"]["labels"].get("app.kubernetes.io/instance")
                if (ns, owner) not in live:
                    obj.delete()
        for (resource, ns, name), obj in list(self.api.objects.items()):
            if resource == CONFIGMAPS and not obj.deleted:
                self._sync_volume(ns, name, obj.raw)

    def _pods(self, ns: str, name: str) -> list[Any]:
        return [
            obj
            for (resource, pns, _), obj in self.api.objects.items()
            if resource == PODS
            and pns == ns
            and not obj.deleted
            and obj.raw["metadata"]["labels"].get("app.kubernetes.io/instance") == name
        ]

    def _reconcile(self, ns: str, name: str, deployment: dict[str, Any]) -> None:
        spec = deployment["spec"]
        template = spec["template"]
        container = template["spec"]["containers"][0]
        mode = self.behaviours.get(container["image"], "run")
        generation = deployment["metadata"].get("generation", 1)
        if mode == "hang":
            return
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        replicas = spec.get("replicas", 1)
        key = (ns, name, digest)
        pods = self._pods(ns, name)
        new = [p for p in pods if p.raw["metadata"]["labels"]["pod-template-hash"] == digest]
        old = [p for p in pods if p not in new]
        ready_new = False
        if mode == "run":
            runtime = self.runtimes.get(key)
            if runtime is not None and runtime.process.poll() is not None:
                self._stop(key)  # the container died (e.g. its port was taken): kubelet restarts it
                runtime = None
            runtime = runtime or self._start(key, ns, name, container)
            ready_new = self._probe(runtime, container)
        for index in range(len(new), replicas):
            pod_name = f"{name}-{digest}-{index}"
            self.api.objects[PODS, ns, pod_name] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "uid": str(uuid.uuid4()),
                    "labels": {**template["metadata"]["labels"], "pod-template-hash": digest},
                },
                "spec": copy.deepcopy(template["spec"]),
                "status": {},
            }
        new = [
            p
            for p in self._pods(ns, name)
            if p.raw["metadata"]["labels"]["pod-template-hash"] == digest
        ]
        for pod in new[replicas:]:
            pod.delete()
        new = new[:replicas]
        for pod in new:
            pod.patch({"status": self._pod_status(mode, ready_new)})
        if mode == "run" and ready_new:
            for pod in old:
                pod.delete()
            old = []
        ready = (len(new) if ready_new else 0) + len(old)
        conditions = [
            {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
            }
        ]
        if mode != "run":
            since = self.stuck_since.setdefault(key, time.monotonic())
            stalled = time.monotonic() - since > self.deadline_s
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "False" if stalled else "True",
                    "reason": "ProgressDeadlineExceeded" if stalled else "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{name}-{digest}" has timed out progressing.'
                    if stalled
                    else f'ReplicaSet "{name}-{digest}" is progressing.',
                }
            )
        else:
            done = ready_new
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{name}-{digest}" '
                    + ("has successfully progressed." if done else "is progressing."),
                }
            )
        status = {
            "observedGeneration": generation,
            "replicas": len(new) + len(old),
            "updatedReplicas": len(new),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions,
        }
        if deployment.get("status") != status:
            self.api.objects[DEPLOYMENTS, ns, name].patch({"status": None})
            self.api.objects[DEPLOYMENTS, ns, name].patch({"status": status})

    @staticmethod
    def _pod_status(mode: str, ready: bool) -> dict[str, Any]:
        if mode == "run":
            state = {"running": {"startedAt": _now()}}
        elif mode == "CrashLoopBackOff":
            state = {
                "waiting": {"reason": mode, "message": "back-off 10s restarting failed container"}
            }
        else:
            state = {"waiting": {"reason": mode, "message": "Back-off pulling image"}}
        ok = mode == "run" and ready
        return {
            "phase": "Running" if mode == "run" else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ok else "False"}],
            "containerStatuses": [
                {"name": "runtime", "ready": ok, "restartCount": 0, "state": state}
            ],
        }

    # ------------------------------------------------------------------ kubelet

    def _volume_dir(self, ns: str, configmap: str) -> Path:
        return self.workdir / "volumes" / ns / configmap

    def _sync_volume(self, ns: str, name: str, configmap: dict[str, Any]) -> None:
        """Like the kubelet: the mounted files follow the ConfigMap (atomic per file here)."""
        directory = self._volume_dir(ns, name)
        directory.mkdir(parents=True, exist_ok=True)
        for key, text in (configmap.get("data") or {}).items():
            path = directory / key
            if not path.exists() or path.read_text() != text:
                tmp = directory / f".{key}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)

    def _start(self, key: tuple[str, str, str], ns: str, name: str, container: dict) -> _Runtime:
        root = self.workdir / "pods" / f"{ns}-{name}-{key[2]}"
        cache = root / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        config_map = next(
            v["configMap"]["name"] for v in self._template_volumes(ns, name) if "configMap" in v
        )
        volume = self._volume_dir(ns, config_map)
        cm = self.api.objects[CONFIGMAPS, ns, config_map].raw
        self._sync_volume(ns, config_map, cm)
        rest, grpc = free_port(), free_port()
        args = []
        for arg in container["args"]:
            arg = arg.replace("/etc/cloudserve", str(volume))
            arg = re.sub(r"^--port=\d+$", f"--port={grpc}", arg)
            arg = re.sub(r"^--rest_api_port=\d+$", f"--rest_api_port={rest}", arg)
            args.append(arg)
        env = {**os.environ, **self.extra_env}
        for item in container.get("env", []):
            env[item["name"]] = item["value"].replace("/var/cache/cloudserve", str(cache))
        log = root / "runtime.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudserve_runtime", "--host=127.0.0.1", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        handle.close()
        runtime = _Runtime(process, rest, root, log)
        self.runtimes[key] = runtime
        return runtime

    def _template_volumes(self, ns: str, name: str) -> list[dict]:
        return self.api.objects[DEPLOYMENTS, ns, name].raw["spec"]["template"]["spec"]["volumes"]

    def _probe(self, runtime: _Runtime, container: dict) -> bool:
        path = container["readinessProbe"]["httpGet"]["path"]
        try:
            return (
                httpx.get(f"http://127.0.0.1:{runtime.rest_port}{path}", timeout=1).status_code
                == 200
            )
        except httpx.HTTPError:
            return False

    def _stop(self, key: tuple[str, str, str]) -> None:
        runtime = self.runtimes.pop(key)
        if runtime.process.poll() is None:
            os.killpg(runtime.process.pid, signal.SIGTERM)
            try:
                runtime.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(runtime.process.pid, signal.SIGKILL)
                runtime.process.wait()
        shutil.rmtree(runtime.root, ignore_errors=True)

    def stop_all(self) -> None:
        for key in list(self.runtimes):
            self._stop(key)

    def runtime_for(self, ns: str, instance: str) -> _Runtime | None:
        """The running runtime of the Deployment ``instance`` (the newest template's)."""
        found = [r for (rns, name, _), r in self.runtimes.items() if (rns, name) == (ns, instance)]
        return found[-1] if found else None


class FakeCluster:
    """The API server, controller and proxies on a background loop. ``url`` is the API URL."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None):
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.api = StrictApiServer()
        self.controller = FakeController(self.api, workdir, dict(extra_env or {}))
        self.url = ""
        self._ready = threading.Event()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="fake-k8s", daemon=True)
        self.errors: list[str] = []
        #: namespaces that exist (kmock cannot route cluster-scoped /api/v1/namespaces paths)
        self.namespaces: set[str] = {"default"}

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fake Kubernetes API server did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.controller.stop_all()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        (
            self.api[re.compile(r"^/api/v1/namespaces/[^/]+/(pods|services)/[^/]+/proxy/.*$")]
            << self._proxy
        )
        self.api["get", _LOG] << self._log
        self.api["get", _NAMESPACE] << self._namespace
        async with self.api, kmock.Server(self.api) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self.controller.step()
                except Exception as e:  # keep the controller alive; tests read .errors
                    self.errors.append(repr(e))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.1)

    def _runtime(self, ns: str, kind: str, name: str) -> _Runtime | None:
        if kind == "pods":
            key = (PODS, ns, name)
            if key not in self.api.objects or self.api.objects[key].deleted:
                return None
            pod = self.api.objects[key].raw
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            if not ready:
                return None
            name = pod["metadata"]["labels"]["app.kubernetes.io/instance"]
        return self.controller.runtime_for(ns, name)

    async def _proxy(self, request: Any) -> kmock.Response:
        match = _PROXY.match(request.url.path)
        assert match, request.url.path
        ns, kind, name, _port, path = match.groups()
        runtime = self._runtime(ns, kind, name)
        if runtime is None:
            message = f"no endpoints available for {kind[:-1]} {name!r}"
            body = json.dumps({"kind": "Status", "code": 503, "message": message})
            return kmock.Response(status=503, payload=body.encode())
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(
                str(request.method.value).upper(),
                f"http://127.0.0.1:{runtime.rest_port}/{path}",
                content=request.body or None,
                headers={"Content-Type": "application/json"},
            )
        return kmock.Response(
            status=answer.status_code,
            payload=answer.content,
            headers={"Content-Type": "application/json"},
        )

    async def _namespace(self, request: Any) -> kmock.Response:
        name = _NAMESPACE.match(request.url.path).group(1)
        if name not in self.namespaces:
            body = {
                "kind": "Status",
                "code": 404,
                "reason": "NotFound",
                "message": f'namespaces "{name}" not found',
            }
            return kmock.Response(status=404, payload=json.dumps(body).encode())
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "status": {"phase": "Active"},
        }
        return kmock.Response(status=200, payload=json.dumps(body).encode())

    async def _log(self, request: Any) -> kmock.Response:
        ns, pod = _LOG.match(request.url.path).groups()
        runtime = self._runtime(ns, "pods", pod)
        text = runtime.log.read_text(errors="replace") if runtime and runtime.log.exists() else ""
        tail = int(request.params.get("tailLines", "0") or 0)
        lines = text.splitlines()[-tail:] if tail else text.splitlines()
        return kmock.Response(status=200, payload="\n".join(lines).encode())
