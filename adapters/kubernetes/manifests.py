"""The Kubernetes objects of one model, built as plain dicts (what ``kubectl apply`` reads).

One model is one set of objects, all named :func:`resource_name` and labelled
``app.kubernetes.io/instance=<name>``:

* ConfigMap: ``models.config`` (the runtime's text ``ModelServerConfig``: the versions, the
  ``default`` label, the base path in the model store), ``batching.config``, and cloudserve's
  bookkeeping in annotations (each version's content digest and creation time, earlier
  defaults for rollback). Pods mount it; the kubelet refreshes the files in place and the
  runtime re-reads them every ``poll_interval_s``, so a new version or default needs no restart.
* Deployment of the runtime image (pinned by digest), probes on ``/readyz`` and ``/healthz``,
  requests/limits from the export's memory estimate, ``nvidia.com/gpu`` for the GPU variant.
* Service (REST 8501, gRPC 8500), autoscaling/v2 HorizontalPodAutoscaler, policy/v1
  PodDisruptionBudget.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cloudserve_adapters.kubernetes.config import KubernetesConfig
from cloudserve_adapters.local.model_config import ModelEntry, ServedModels

REST_PORT = 8501
GRPC_PORT = 8500
CONFIG_DIR = "/etc/cloudserve"
MODEL_CONFIG_KEY = "models.config"
BATCHING_KEY = "batching.config"
CACHE_DIR = "/var/cache/cloudserve"
CONTAINER = "runtime"
MANAGED_BY = "cloudserve"
#: ConfigMap annotations holding cloudserve's bookkeeping (JSON)
VERSIONS_ANNOTATION = "cloudserve.dev/versions"
HISTORY_ANNOTATION = "cloudserve.dev/default-history"
MODEL_LABEL = "cloudserve.dev/model"
INSTANCE_LABEL = "app.kubernetes.io/instance"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_PREFIX = "cloudserve-"
_MAX_NAME = 52  # leaves room for the ReplicaSet and pod suffixes within 63 characters


def resource_name(model: str) -> str:
    """The DNS-1123 name of the model's objects: ``cloudserve-<model>``.

    A model name that is not a lowercase DNS label (``My_Model``) is lowered, its other
    characters become ``-``, and a short hash of the original keeps names distinct.
    """
    base = _NAME_PREFIX + model
    if _DNS_LABEL.match(base) and len(base) <= _MAX_NAME:
        return base
    cleaned = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-") or "model"
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{_NAME_PREFIX}{cleaned[: _MAX_NAME - len(_NAME_PREFIX) - 9]}-{digest}"


def selector(model: str) -> dict[str, str]:
    """The labels that select the model's pods."""
    return {"app.kubernetes.io/name": "cloudserve-runtime", INSTANCE_LABEL: resource_name(model)}


def labels(model: str) -> dict[str, str]:
    """Labels on every object of the model (the model name only where it is a valid value)."""
    result = {**selector(model), "app.kubernetes.io/managed-by": MANAGED_BY}
    if len(model) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", model):
        result[MODEL_LABEL] = model
    return result


@dataclass(frozen=True)
class ModelState:
    """What the ConfigMap records about one model.

    Attributes:
        versions: version -> {"digest": ..., "created": ...} for every served version.
        default: the version the ``default`` label points at, or None.
        history: earlier defaults, oldest first (for rollback).
    """

    versions: dict[str, dict[str, str]]
    default: str | None
    history: tuple[str, ...] = ()

    def numbers(self) -> list[int]:
        return sorted(int(v) for v in self.versions)


def base_path(config: KubernetesConfig, model: str) -> str:
    """The model's base path in the store: ``<scheme>://<bucket>/<prefix>/<model>``."""
    parts = [p for p in (config.store_prefix, model) if p]
    return f"{config.store_scheme}://{config.store_bucket}/{'/'.join(parts)}"


def model_config_text(config: KubernetesConfig, model: str, state: ModelState) -> str:
    """The runtime's model config for ``state`` (the local target's writer, one model)."""
    default = int(state.default) if state.default is not None else None
    entry = ModelEntry(model, base_path(config, model), tuple(state.numbers()), default)
    text = ServedModels((entry,)).to_text()
    return text.replace("(target local)", "(target kubernetes)", 1)


def config_map(config: KubernetesConfig, model: str, state: ModelState) -> dict[str, Any]:
    """The ConfigMap holding the runtime's model config and cloudserve's bookkeeping."""
    data = {MODEL_CONFIG_KEY: model_config_text(config, model, state)}
    if config.enable_batching:
        data[BATCHING_KEY] = config.batching.to_text_proto() if config.batching else ""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": resource_name(model),
            "namespace": config.namespace,
            "labels": labels(model),
            "annotations": {
                VERSIONS_ANNOTATION: json.dumps(state.versions, sort_keys=True),
                HISTORY_ANNOTATION: json.dumps(list(state.history)),
            },
        },
        "data": data,
    }


def state_of(config_map_obj: dict[str, Any] | None) -> ModelState | None:
    """The :class:`ModelState` a live ConfigMap records; None when there is none."""
    if not config_map_obj:
        return None
    annotations = (config_map_obj.get("metadata") or {}).get("annotations") or {}
    versions = json.loads(annotations.get(VERSIONS_ANNOTATION) or "{}")
    history = tuple(json.loads(annotations.get(HISTORY_ANNOTATION) or "[]"))
    text = (config_map_obj.get("data") or {}).get(MODEL_CONFIG_KEY, "")
    served = ServedModels.from_text(text).models if text else ()
    default = served[0].default if served else None
    return ModelState(versions, str(default) if default is not None else None, history)


def runtime_args(config: KubernetesConfig) -> list[str]:
    """The runtime's command line in the pod."""
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_config_file={CONFIG_DIR}/{MODEL_CONFIG_KEY}",
        f"--model_config_file_poll_wait_seconds={config.poll_interval_s}",
        f"--file_system_poll_wait_seconds={config.poll_interval_s}",
        # a pod started by the autoscaler reads a config whose default is not loaded yet
        "--allow_version_labels_for_unavailable_models=true",
    ]
    if config.enable_batching:
        args += [
            "--enable_batching=true",
            f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_KEY}",
        ]
    return args


def container_env(config: KubernetesConfig) -> list[dict[str, str]]:
    """Environment of the runtime container: where the model-store mirror lives, S3 settings."""
    env = [{"name": "CLOUDSERVE_MODEL_CACHE", "value": CACHE_DIR}]
    if config.store_scheme == "s3":
        env.append({"name": "AWS_REGION", "value": config.aws_region})
        if config.s3_endpoint_url:
            env.append({"name": "AWS_ENDPOINT_URL_S3", "value": config.s3_endpoint_url})
    return env


def resources(config: KubernetesConfig, memory_mb: int) -> dict[str, dict[str, str]]:
    """Requests and limits: memory request = limit (no overcommit of model memory)."""
    requests = {"cpu": config.cpu_request, "memory": f"{memory_mb}Mi"}
    limits = {"memory": f"{memory_mb}Mi"}
    if config.cpu_limit:
        limits["cpu"] = config.cpu_limit
    if config.variant == "gpu":
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(config.gpus)
    return {"requests": requests, "limits": limits}


def container(config: KubernetesConfig, image: str, memory_mb: int) -> dict[str, Any]:
    """The runtime container of the pod template."""
    spec: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": runtime_args(config),
        "env": container_env(config),
        "ports": [
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "resources": resources(config, memory_mb),
        "volumeMounts": [
            {"name": "model-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "model-cache", "mountPath": CACHE_DIR},
        ],
    }
    if config.storage_secret:
        spec["envFrom"] = [{"secretRef": {"name": config.storage_secret}}]
    return spec


def deployment(config: KubernetesConfig, model: str, image: str, memory_mb: int) -> dict[str, Any]:
    """The Deployment of the runtime. ``spec.replicas`` is left to the HPA when it scales."""
    name = resource_name(model)
    pod_spec: dict[str, Any] = {
        "containers": [container(config, image, memory_mb)],
        "volumes": [
            {"name": "model-config", "configMap": {"name": name}},
            {"name": "model-cache", "emptyDir": {}},
        ],
        "securityContext": {"runAsNonRoot": True},
        "terminationGracePeriodSeconds": 30,
    }
    if config.service_account:
        pod_spec["serviceAccountName"] = config.service_account
    if config.variant == "gpu":
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(model)},
        "progressDeadlineSeconds": config.progress_deadline_s,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {"metadata": {"labels": labels(model)}, "spec": pod_spec},
    }
    spec["replicas"] = config.min_replicas if config.autoscaling else config.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels(model)},
        "spec": spec,
    }


def service(config: KubernetesConfig, model: str) -> dict[str, Any]:
    """The Service in front of the pods: REST and gRPC."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": resource_name(model),
            "namespace": config.namespace,
            "labels": labels(model),
        },
        "spec": {
            "type": config.service_type,
            "selector": selector(model),
            "ports": [
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            ],
        },
    }


def autoscaler(config: KubernetesConfig, model: str) -> dict[str, Any]:
    """The autoscaling/v2 HorizontalPodAutoscaler on average CPU utilisation."""
    name = resource_name(model)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels(model)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": config.min_replicas,
            "maxReplicas": config.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": config.cpu_target_percent,
                        },
                    },
                }
            ],
        },
    }


def disruption_budget(config: KubernetesConfig, model: str) -> dict[str, Any]:
    """The policy/v1 PodDisruptionBudget: node drains take at most ``max_unavailable`` pods."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": resource_name(model),
            "namespace": config.namespace,
            "labels": labels(model),
        },
        "spec": {
            "maxUnavailable": config.max_unavailable,
            "selector": {"matchLabels": selector(model)},
        },
    }


def workload(
    config: KubernetesConfig, model: str, image: str, memory_mb: int
) -> list[dict[str, Any]]:
    """Every object but the ConfigMap, in apply order."""
    objects = [
        deployment(config, model, image, memory_mb),
        service(config, model),
        disruption_budget(config, model),
    ]
    if config.autoscaling:
        objects.append(autoscaler(config, model))
    return objects
