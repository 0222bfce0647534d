"""Azure ML preflight rules: settings and names checked against documented limits.

Each rule returns findings and touches nothing (no network). Limits come from this package's
``limits.yaml`` so every finding names its source.
"""

from __future__ import annotations

import json
import math
import re

from cloudserve import limits, preflight, runtime_images
from cloudserve.records import DeploySpec, ExportInfo, Finding
from cloudserve_adapters.azure.config import AzureConfig, ProbeConfig

TARGET = "azure"
TRAFFIC_SOURCE = (
    "https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints"
)
PROBE_SOURCE = "https://learn.microsoft.com/azure/machine-learning/reference-yaml-deployment-managed-online#probesettings"
IMAGE_SOURCE = "https://learn.microsoft.com/azure/machine-learning/how-to-deploy-custom-container"
#: a liveness window shorter than this is likely to kill a container still loading its model
SLOW_START_S = 120


def _limit(key: str):
    return limits.limit(TARGET, key)


def _src(key: str) -> str:
    return limits.source(TARGET, key)


def deployment_name(version: str) -> str:
    """The deployment that serves cloudserve version ``version``: ``v<N>``, the number padded
    to two digits (``v01``, ``v12``, ``v123``) because Azure names have at least 3 characters.
    """
    return f"v{version.zfill(2)}" if version.isdigit() else f"v{version}"


def version_of(deployment: str) -> str:
    """The cloudserve version a deployment name serves (inverse of :func:`deployment_name`)."""
    number = deployment.removeprefix("v")
    return str(int(number)) if number.isdigit() else number


def is_gpu(instance_type: str) -> bool:
    """Whether the SKU is a GPU SKU (NC, ND, NV families)."""
    family = instance_type.removeprefix("Standard_")
    return any(family.startswith(f) for f in _limit("gpu_families"))


def serving_image(config: AzureConfig, export: ExportInfo) -> str | None:
    """The serving image reference: ``config.image``, else the runtime image pushed to the
    configured ACR with the export's TF version, else the newest push whose TF is at least as
    new (a newer runtime loads an older export). None when no such image was pushed."""
    if config.image:
        return config.image
    if not config.acr:
        return None
    registry = f"{config.acr}.azurecr.io"
    variant = "gpu" if is_gpu(config.instance_type) else "cpu"
    pushed = runtime_images.find_serving(registry, variant=variant, tf_minor=export.tf_minor)
    return pushed.reference if pushed else None


def _name_finding(rule: str, what: str, name: str, fix: str) -> list[Finding]:
    low, high = _limit("name_min_chars"), _limit("name_max_chars")
    if low <= len(name) <= high and re.match(_limit("name_pattern"), name) and "--" not in name:
        return []
    return [
        Finding(
            rule,
            "error",
            f"{what} '{name}' is not a valid Azure ML name ({low}-{high} characters, a letter "
            "first, then letters, digits and single '-', not ending in '-')",
            fix=fix,
            source=_src("name_max_chars"),
        )
    ]


def check_names(spec: DeploySpec, config: AzureConfig) -> list[Finding]:
    """Endpoint and deployment names: 3-32 characters, letters first."""
    endpoint = config.endpoint_for(spec.model)
    return _name_finding(
        "azure.endpoint_name",
        "endpoint name" + ("" if config.endpoint_name else " (the model name)"),
        endpoint,
        "set targets.azure.endpoint_name, e.g. 'my-model-prod' (unique in the region)",
    ) + _name_finding(
        "azure.deployment_name",
        "deployment name",
        deployment_name(spec.version),
        "use a shorter version number",
    )


def check_instances(config: AzureConfig) -> list[Finding]:
    """The SKU is on the managed online endpoint list; 1 <= instance_count <= 50."""
    findings: list[Finding] = []
    known = _limit("sku_vcpus")
    if config.instance_type not in known:
        close = [s for s in known if s.lower() == config.instance_type.lower()]
        findings.append(
            Finding(
                "azure.instance_type",
                "error",
                f"instance type '{config.instance_type}' is not a managed online endpoint SKU",
                fix=f"did you mean {close[0]}?"
                if close
                else "choose one of the SKU list, e.g. Standard_DS3_v2 or Standard_F4s_v2",
                source=_src("sku_vcpus"),
            )
        )
    ceiling = _limit("instances_per_deployment")
    if not 1 <= config.instance_count <= ceiling:
        findings.append(
            Finding(
                "azure.instance_count",
                "error",
                f"instance_count is {config.instance_count}; a managed deployment runs "
                f"1-{ceiling} instances",
                fix=f"set targets.azure.instance_count between 1 and {ceiling} (managed online "
                "endpoints do not scale to zero)",
                source=_src("instances_per_deployment"),
            )
        )
    return findings


def quota_needed(config: AzureConfig) -> int | None:
    """vCPUs of quota one deployment needs, with Azure's 20 % upgrade reservation."""
    vcpus = _limit("sku_vcpus").get(config.instance_type)
    if vcpus is None or config.instance_count < 1:
        return None
    reserved = math.ceil(config.instance_count * _limit("quota_reservation_factor") - 1e-9)
    return reserved * vcpus


def check_quota(config: AzureConfig) -> list[Finding]:
    """instances x 1.2 x vCPUs must fit the vCPU quota (when the config states it)."""
    needed = quota_needed(config)
    if needed is None:
        return []
    what = (
        f"{config.instance_count} x {config.instance_type} needs {needed} vCPUs of quota "
        "(Azure reserves 20 % extra for upgrades)"
    )
    if config.vcpu_quota is None:
        return [
            Finding(
                "azure.quota",
                "info",
                what + "; set targets.azure.vcpu_quota to have it checked",
                source=_src("quota_reservation_factor"),
            )
        ]
    if needed <= config.vcpu_quota:
        return []
    return [
        Finding(
            "azure.quota",
            "error",
            f"{what}, but the quota is {config.vcpu_quota}: Azure would fail with OutOfQuota",
            fix="request more quota for the VM family in the region, or lower instance_count "
            "or pick a smaller SKU",
            source=_src("quota_reservation_factor"),
        )
    ]


def _check_probe(name: str, probe: ProbeConfig) -> list[Finding]:
    findings: list[Finding] = []
    if probe.timeout_s > probe.period_s:
        findings.append(
            Finding(
                f"azure.probe.{name}",
                "error",
                f"{name} probe timeout ({probe.timeout_s} s) is longer than its period "
                f"({probe.period_s} s)",
                fix=f"set targets.azure.{name}_probe.timeout_s <= period_s",
                source=PROBE_SOURCE,
            )
        )
    window = probe.initial_delay_s + probe.period_s * probe.failure_threshold
    if window < SLOW_START_S:
        findings.append(
            Finding(
                f"azure.probe.{name}",
                "warning",
                f"the {name} probe gives the container {window} s to start; a slow model load "
                "fails the deployment (ResourceNotReady)",
                fix=f"raise targets.azure.{name}_probe.initial_delay_s or failure_threshold",
                source=PROBE_SOURCE,
            )
        )
    return findings


def check_probes(config: AzureConfig) -> list[Finding]:
    """Probe settings that can never pass, or that kill a slow-loading container."""
    return _check_probe("liveness", config.liveness_probe) + _check_probe(
        "readiness", config.readiness_probe
    )


def check_request(config: AzureConfig) -> list[Finding]:
    """request_timeout_ms is at most 180000."""
    ceiling = _limit("request_timeout_max_ms")
    if config.request.request_timeout_ms <= ceiling:
        return []
    return [
        Finding(
            "azure.request_timeout",
            "error",
            f"request_timeout_ms {config.request.request_timeout_ms} exceeds Azure's {ceiling}",
            fix=f"set targets.azure.request.request_timeout_ms to {ceiling} or less",
            source=_src("request_timeout_max_ms"),
        )
    ]


def check_image(export: ExportInfo, config: AzureConfig) -> list[Finding]:
    """A serving image Azure can pull: the runtime image pushed to the workspace's ACR."""
    image = serving_image(config, export)
    if image is None:
        minor = export.tf_minor
        command = runtime_images.push_command(
            TARGET,
            variant="gpu" if is_gpu(config.instance_type) else "cpu",
            tf_version=f"{minor[0]}.{minor[1]}" if minor else None,
        )
        where = f"{config.acr}.azurecr.io" if config.acr else "an Azure Container Registry"
        return [
            Finding(
                "azure.image",
                "error",
                f"no cloudserve runtime image was pushed to {where}; Azure ML has no prebuilt "
                "TF Serving image",
                fix=("" if config.acr else "set targets.azure.acr to your registry name, then: ")
                + command,
                source=IMAGE_SOURCE,
            )
        ]
    host = image.split("/", 1)[0]
    if host.endswith(".azurecr.io") or host == "mcr.microsoft.com":
        return []
    return [
        Finding(
            "azure.image.registry",
            "warning",
            f"{image} is not in an Azure Container Registry; the deployment can pull it only "
            "if it is public (UNVERIFIED)",
            fix="push the image to the workspace's ACR: " + runtime_images.push_command(TARGET),
            source=IMAGE_SOURCE,
        )
    ]


def check_payload(size: int, config: AzureConfig) -> list[Finding]:
    """A scoring body must fit the request limit and cross 5 MB/s within the timeout."""
    cap = _limit("predict_payload_bytes")
    by_bandwidth = int(
        _limit("endpoint_bandwidth_bytes_per_s") * config.request.request_timeout_ms / 1000
    )
    ceiling = min(cap, by_bandwidth)
    if size <= ceiling:
        return []
    key = "predict_payload_bytes" if cap <= by_bandwidth else "endpoint_bandwidth_bytes_per_s"
    return [
        Finding(
            "azure.predict.payload",
            "error",
            f"the request body is {size} bytes; with request_timeout_ms "
            f"{config.request.request_timeout_ms} the endpoint accepts up to {ceiling}",
            fix="send fewer instances per request, or raise request_timeout_ms (max 180000)",
            source=_src(key),
        )
    ]


def body_size(body: dict) -> int:
    """Bytes of a JSON body as it is sent."""
    return len(json.dumps(body, separators=(",", ":")).encode("utf-8"))


def run(spec: DeploySpec, export: ExportInfo, config: AzureConfig) -> list[Finding]:
    """Every Azure rule for deploying ``export`` as ``spec`` under ``config``."""
    return (
        check_names(spec, config)
        + check_instances(config)
        + check_quota(config)
        + check_probes(config)
        + check_request(config)
        + preflight.check_traffic(spec, rule="azure.traffic", source=TRAFFIC_SOURCE)
        + check_image(export, config)
    )
