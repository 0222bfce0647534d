"""The kubernetes target's own preflight rules. Local files only: no API call, no upload.

* names: the model name and version the runtime accepts;
* the kubeconfig: the file exists, the context exists in it, and its namespace agrees;
* replicas and autoscaler bounds that keep the model available during drains and rollouts;
* the pod's memory request against the export's memory estimate;
* the image: pinned by digest, or a recorded push to look up.
"""

from __future__ import annotations

from typing import Any

from cloudserve import runtime_images
from cloudserve.limits import limit, source
from cloudserve.preflight import estimate_memory_mb
from cloudserve.records import DeploySpec, ExportInfo, Finding
from cloudserve_adapters.kubernetes.config import KubernetesConfig
from cloudserve_adapters.local.repository import model_name_problem, version_problem

NAME = "kubernetes"


def check_names(spec: DeploySpec) -> list[Finding]:
    findings = []
    if problem := model_name_problem(spec.model):
        findings.append(Finding("kubernetes.model_name", "error", problem, fix="rename the model"))
    if problem := version_problem(spec.version):
        findings.append(
            Finding("kubernetes.version", "error", problem, fix="deploy with --version N, N ≥ 1")
        )
    return findings


def check_kubeconfig(config: KubernetesConfig, clients: Any) -> list[Finding]:
    """The context exists in the kubeconfig (skipped when the client targets a URL)."""
    if getattr(clients, "host", None):
        return []
    try:
        from kubernetes import config as kube_config
    except ImportError:
        return [
            Finding(
                "kubernetes.sdk",
                "error",
                "the kubernetes Python client is not installed",
                fix="pip install 'cloudserve[kubernetes]'",
            )
        ]
    path = config.kubeconfig or None
    try:
        contexts, current = kube_config.list_kube_config_contexts(
            config_file=str(path) if path else None
        )
    except Exception as e:  # ConfigException: no file, no contexts, bad YAML
        return [
            Finding(
                "kubernetes.kubeconfig",
                "error",
                f"cannot read the kubeconfig ({e})",
                fix="set targets.kubernetes.kubeconfig or $KUBECONFIG to a valid kubeconfig",
            )
        ]
    names = [c["name"] for c in contexts]
    wanted = config.context or (current or {}).get("name")
    chosen = next((c for c in contexts if c["name"] == wanted), None)
    if chosen is None:
        return [
            Finding(
                "kubernetes.context",
                "error",
                f"kubeconfig context {wanted!r} does not exist (contexts: {', '.join(names)})",
                fix="set targets.kubernetes.context to one of them (kubectl config get-contexts)",
            )
        ]
    namespace = (chosen.get("context") or {}).get("namespace")
    if namespace and namespace != config.namespace:
        return [
            Finding(
                "kubernetes.namespace",
                "warning",
                f"context {wanted!r} defaults to namespace {namespace!r} but the model goes to "
                f"{config.namespace!r}",
                fix="set targets.kubernetes.namespace if that is not intended",
            )
        ]
    return []


def check_scaling(config: KubernetesConfig) -> list[Finding]:
    findings = []
    floor = config.min_replicas if config.autoscaling else config.replicas
    if floor < 2:
        findings.append(
            Finding(
                "kubernetes.replicas",
                "warning",
                f"{floor} replica: a node drain or a crash takes the model offline",
                fix="set min_replicas (or replicas) to 2 or more",
            )
        )
    if config.max_unavailable >= floor:
        findings.append(
            Finding(
                "kubernetes.disruption_budget",
                "error",
                f"max_unavailable {config.max_unavailable} lets a drain evict all {floor} pods",
                fix=f"set max_unavailable below {floor}, or raise the replicas",
            )
        )
    bound = limit(NAME, "hpa_max_replicas_warn")
    if config.autoscaling and config.max_replicas > bound:
        findings.append(
            Finding(
                "kubernetes.max_replicas",
                "warning",
                f"max_replicas {config.max_replicas} is above {bound}: is that intended?",
                fix="lower max_replicas",
                source=source(NAME, "hpa_max_replicas_warn"),
            )
        )
    return findings


def check_memory(config: KubernetesConfig, export: ExportInfo) -> list[Finding]:
    """An explicit memory setting below the export's estimate gets OOM-killed while loading."""
    if config.memory_mb is None or not export.path.is_dir():
        return []
    estimate = estimate_memory_mb(export)
    if config.memory_mb < estimate:
        return [
            Finding(
                "kubernetes.memory",
                "error",
                f"memory_mb {config.memory_mb} is below the export's estimate of {estimate} MiB: "
                "pods would be OOM-killed while loading",
                fix=f"set memory_mb to at least {estimate}, or leave it unset to use the estimate",
            )
        ]
    return []


def check_image(config: KubernetesConfig, export: ExportInfo) -> list[Finding]:
    tf = ".".join(map(str, export.tf_minor)) if export.tf_minor else None
    # kubernetes has no registry of its own: the push names the one the cluster pulls from
    push = runtime_images.push_command(NAME, variant=config.variant, tf_version=tf).replace(
        f"--target {NAME}", f"--registry {config.registry or 'HOST[:PORT]/PATH'}"
    )
    fix = (
        f"run `{push}` and set targets.kubernetes.registry, or set targets.kubernetes.image "
        "to repo@sha256:<digest>"
    )
    if config.image:
        if "@sha256:" in config.image:
            return []
        return [
            Finding(
                "kubernetes.image_pinned",
                "error",
                f"image {config.image!r} is not pinned by digest: pods could run different builds",
                fix="use repo@sha256:<digest>",
            )
        ]
    if config.registry and runtime_images.find(
        config.registry, variant=config.variant, tf_version=tf
    ):
        return []
    where = f" under {config.registry}" if config.registry else ""
    return [
        Finding(
            "kubernetes.image",
            "error",
            f"no {config.variant} runtime image pushed{where} for TensorFlow {tf or '(any)'}",
            fix=fix,
        )
    ]


def run(
    config: KubernetesConfig, clients: Any, spec: DeploySpec, export: ExportInfo
) -> list[Finding]:
    """Every rule above."""
    return [
        *check_names(spec),
        *check_kubeconfig(config, clients),
        *check_scaling(config),
        *check_memory(config, export),
        *check_image(config, export),
    ]
