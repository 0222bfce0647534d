"""Vertex AI preflight rules: settings and names checked against documented limits.

Each rule returns findings and touches nothing (no network). Limits come from
``adapters/gcp/limits.yaml`` so every finding can name its source.
"""

from __future__ import annotations

import re
from datetime import date

from cloudserve import limits, preflight
from cloudserve.records import DeploySpec, ExportInfo, Finding
from cloudserve_adapters.gcp import images
from cloudserve_adapters.gcp.config import GcpConfig
from cloudserve_adapters.gcp.vertex import version_alias

TARGET = "gcp"
TRAFFIC_SOURCE = (
    "googleapis/googleapis:google/cloud/aiplatform/v1/endpoint.proto (Endpoint.traffic_split)"
)


def _limit(key: str):
    return limits.limit(TARGET, key)


def _src(key: str) -> str:
    return limits.source(TARGET, key)


def check_region(config: GcpConfig) -> list[Finding]:
    """Vertex calls go to a regional endpoint, so the region must look like one."""
    if re.match(_limit("region_pattern"), config.region):
        return []
    return [
        Finding(
            "gcp.region",
            "error",
            f"region '{config.region}' is not a Vertex AI region (like us-central1)",
            fix="set targets.gcp.region to a region such as us-central1 or europe-west4",
            source=_src("region_pattern"),
        )
    ]


def check_names(spec: DeploySpec, config: GcpConfig) -> list[Finding]:
    """Model id, endpoint id, display name, version alias and label value formats."""
    findings: list[Finding] = []
    if not re.match(_limit("model_id_pattern"), spec.model):
        findings.append(
            Finding(
                "gcp.model_id",
                "error",
                f"model name '{spec.model}' is not a valid Vertex model id",
                fix="use up to 63 of a-z 0-9 _ -, starting with a letter",
                source=_src("model_id_pattern"),
            )
        )
    endpoint_id = config.endpoint_id or spec.model
    if not re.match(_limit("endpoint_id_pattern"), endpoint_id):
        findings.append(
            Finding(
                "gcp.endpoint_id",
                "error",
                f"endpoint id '{endpoint_id}' is not valid"
                + ("" if config.endpoint_id else " (it defaults to the model name)"),
                fix="set targets.gcp.endpoint_id: a letter then up to 62 of a-z 0-9 - "
                "(not ending in -), or up to 9 digits without a leading zero",
                source=_src("endpoint_id_pattern"),
            )
        )
    display = config.endpoint_display_name or spec.model
    if len(display) > _limit("display_name_max_chars"):
        findings.append(
            Finding(
                "gcp.display_name",
                "error",
                f"display name is {len(display)} characters long",
                fix=f"keep it to {_limit('display_name_max_chars')} characters",
                source=_src("display_name_max_chars"),
            )
        )
    if not re.match(_limit("version_alias_pattern"), version_alias(spec.version)):
        findings.append(
            Finding(
                "gcp.version_alias",
                "error",
                f"version '{spec.version}' cannot be a Vertex version alias "
                f"'{version_alias(spec.version)}'",
                fix="use a version of lowercase letters, digits and dashes, ending in a letter "
                "or digit (e.g. 3 or 2024-06-01)",
                source=_src("version_alias_pattern"),
            )
        )
    return findings + check_labels(config)


def check_labels(config: GcpConfig) -> list[Finding]:
    """User labels must be valid Vertex labels (and may not use the cloudserve- keys)."""
    bad = [
        k
        for k, v in config.labels.items()
        if not (k and k[0].isalpha() and re.match(_limit("label_pattern"), k))
        or not re.match(_limit("label_pattern"), v)
        or k.startswith("cloudserve-")
    ]
    if not bad:
        return []
    return [
        Finding(
            "gcp.labels",
            "error",
            f"invalid labels: {', '.join(sorted(bad))}",
            fix="keys start with a letter; keys and values are up to 63 of a-z 0-9 _ -; "
            "keys starting with cloudserve- are reserved",
            source=_src("label_pattern"),
        )
    ]


def check_machine(config: GcpConfig) -> list[Finding]:
    """Accelerator type is current and fits the machine family; count and type go together."""
    accelerator = config.accelerator_type
    if accelerator is None:
        if config.accelerator_count:
            return [
                Finding(
                    "gcp.accelerator",
                    "error",
                    f"accelerator_count is {config.accelerator_count} but no accelerator_type",
                    fix="set accelerator_type (e.g. NVIDIA_TESLA_T4) or accelerator_count: 0",
                    source=_src("accelerators_known"),
                )
            ]
        return []
    if accelerator in _limit("accelerators_removed"):
        return [
            Finding(
                "gcp.accelerator",
                "error",
                f"{accelerator} is retired on Vertex AI",
                fix="use NVIDIA_TESLA_T4 (n1-*) or NVIDIA_L4 (g2-*) instead",
                source=_src("accelerators_removed"),
            )
        ]
    if accelerator not in _limit("accelerators_known"):
        return [
            Finding(
                "gcp.accelerator",
                "error",
                f"unknown accelerator_type '{accelerator}'",
                fix="one of: " + ", ".join(_limit("accelerators_known")),
                source=_src("accelerators_known"),
            )
        ]
    findings: list[Finding] = []
    if config.accelerator_count < 1:
        findings.append(
            Finding(
                "gcp.accelerator",
                "error",
                f"accelerator_type {accelerator} with accelerator_count 0",
                fix="set accelerator_count to 1 or more",
                source=_src("accelerators_known"),
            )
        )
    by_family: dict[str, list[str]] = _limit("accelerators_by_machine_family")
    family = config.machine_type.split("-", 1)[0]
    allowed = [f for f, accs in by_family.items() if accelerator in accs]
    if allowed and family not in allowed:
        findings.append(
            Finding(
                "gcp.machine_accelerator",
                "error",
                f"{accelerator} does not attach to machine type {config.machine_type}",
                fix=f"use a {'/'.join(a + '-*' for a in allowed)} machine type for {accelerator}",
                source=_src("accelerators_by_machine_family"),
            )
        )
    return findings


def check_replicas(config: GcpConfig) -> list[Finding]:
    """minReplicaCount >= 1 and maxReplicaCount >= minReplicaCount."""
    findings: list[Finding] = []
    if config.min_replicas < _limit("min_replica_count"):
        findings.append(
            Finding(
                "gcp.replicas.min",
                "error",
                f"min_replicas is {config.min_replicas}; Vertex needs at least 1 replica",
                fix="set min_replicas to 1 or more (Vertex endpoints do not scale to zero)",
                source=_src("min_replica_count"),
            )
        )
    if config.max_replica_count < config.min_replicas:
        findings.append(
            Finding(
                "gcp.replicas.max",
                "error",
                f"max_replicas {config.max_replica_count} is below min_replicas "
                f"{config.min_replicas}",
                fix="set max_replicas >= min_replicas",
                source=_src("min_replica_count"),
            )
        )
    return findings


def check_image(
    spec: DeploySpec, export: ExportInfo, config: GcpConfig, *, today: date | None = None
) -> list[Finding]:
    """A serving image Vertex can pull exists for the export (:func:`images.choose`)."""
    return list(choose_image(spec, export, config, today=today).findings)


def choose_image(
    spec: DeploySpec, export: ExportInfo, config: GcpConfig, *, today: date | None = None
) -> images.Choice:
    """The serving image for deploying ``export`` under ``config``, with its findings."""
    return images.choose(
        config.image,
        export,
        spec.model,
        region=config.region,
        project=config.project,
        gpu=config.accelerator_count > 0,
        port=config.container_port,
        today=today,
    )


def check_timeouts(config: GcpConfig) -> list[Finding]:
    """containerSpec.deploymentTimeout is at most 2 hours."""
    ceiling = _limit("deployment_timeout_max_s")
    if config.deployment_timeout_s <= ceiling:
        return []
    return [
        Finding(
            "gcp.deployment_timeout",
            "error",
            f"deployment_timeout_s {config.deployment_timeout_s} exceeds Vertex's {ceiling} s",
            fix=f"set deployment_timeout_s to {ceiling} or less",
            source=_src("deployment_timeout_max_s"),
        )
    ]


def check_payload(size: int) -> list[Finding]:
    """A predict body must fit Vertex's public-endpoint request limit."""
    ceiling = _limit("predict_payload_bytes")
    if size <= ceiling:
        return []
    return [
        Finding(
            "gcp.predict.payload",
            "error",
            f"the request body is {size} bytes; Vertex public endpoints accept up to {ceiling}",
            fix="send fewer instances per request, or use batch prediction",
            source=_src("predict_payload_bytes"),
        )
    ]


def run(spec: DeploySpec, export: ExportInfo, config: GcpConfig) -> list[Finding]:
    """Every Vertex rule for deploying ``export`` as ``spec`` under ``config``."""
    return (
        check_region(config)
        + check_names(spec, config)
        + check_machine(config)
        + check_replicas(config)
        + check_image(spec, export, config)
        + check_timeouts(config)
        + preflight.check_traffic(spec, rule="gcp.traffic", source=TRAFFIC_SOURCE)
    )
