"""Choosing the serving container for an export: Vertex's prebuilt TF image or cloudserve's.

The table of prebuilt images, with the dates Google retires them, lives in ``images.yaml``
beside this module. Vertex pulls ``containerSpec.imageUri`` only from Artifact Registry or
Container Registry, so every image chosen here is checked against that rule; the cloudserve
runtime image comes from the project's own Artifact Registry, as recorded by
``cloudserve image push --target gcp`` (:mod:`cloudserve.runtime_images`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from cloudserve import runtime_images
from cloudserve.records import ExportInfo, Finding

ImageKind = Literal["prebuilt", "cloudserve", "custom"]

#: Artifact Registry (LOCATION-docker.pkg.dev) and Container Registry (gcr.io, REGION.gcr.io)
_REGISTRY_HOST = re.compile(r"^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)$")


@cache
def table() -> dict[str, Any]:
    """The parsed ``images.yaml``."""
    return yaml.safe_load(resources.files(__package__).joinpath("images.yaml").read_text())


@dataclass(frozen=True)
class ServingImage:
    """The container a model version is served with, as Vertex's ``containerSpec`` needs it."""

    uri: str
    kind: ImageKind
    port: int | None = None  # None: the image's own default (prebuilt images)
    predict_route: str | None = None
    health_route: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def container_spec(self, deployment_timeout_s: int) -> dict[str, Any]:
        """The ``ModelContainerSpec`` body for ``models.upload``."""
        spec: dict[str, Any] = {
            "imageUri": self.uri,
            "deploymentTimeout": f"{deployment_timeout_s}s",
        }
        if self.port is not None:
            spec["ports"] = [{"containerPort": self.port}]
        if self.predict_route:
            spec["predictRoute"] = self.predict_route
        if self.health_route:
            spec["healthRoute"] = self.health_route
        if self.env:
            spec["env"] = [{"name": k, "value": v} for k, v in sorted(self.env.items())]
        return spec


@dataclass(frozen=True)
class Choice:
    """The image for an export (None when none can serve it) and the findings explaining it."""

    image: ServingImage | None
    findings: tuple[Finding, ...] = ()


def geo_for_region(region: str) -> str:
    """The Artifact Registry multi-region ("us", "europe", "asia") nearest ``region``."""
    data = table()
    return data["geo_by_region_prefix"].get(region.split("-", 1)[0], data["default_geo"])


def in_vertex_registry(uri: str) -> bool:
    """Does ``uri`` name an image in Artifact Registry or Container Registry?"""
    host, slash, _ = uri.partition("/")
    return bool(slash) and bool(_REGISTRY_HOST.match(host))


def runtime_registry(region: str, project: str) -> str:
    """Where ``cloudserve image push --target gcp`` puts the runtime image for this target."""
    return f"{region}-docker.pkg.dev/{project}"


def prebuilt_uri(tf_minor: tuple[int, int] | None, region: str, *, gpu: bool) -> str | None:
    """Vertex's prebuilt TF serving image URI for an export's TF version (retired or not);
    None when Google never published one."""
    prebuilt = table()["prebuilt"]
    if tf_minor is None or tf_minor[0] != 2 or tf_minor[1] not in prebuilt["versions"]:
        return None
    return prebuilt["uri"].format(
        geo=geo_for_region(region),
        processor="gpu" if gpu else "cpu",
        major=tf_minor[0],
        minor=tf_minor[1],
    )


def availability_end(tf_minor: tuple[int, int]) -> date | None:
    """The day Vertex stops serving the prebuilt image for ``tf_minor``; None if none exists."""
    entry = table()["prebuilt"]["versions"].get(tf_minor[1]) if tf_minor[0] == 2 else None
    return date.fromisoformat(entry["end_of_availability"]) if entry else None


def tf_serving_image(uri: str, kind: ImageKind, model: str, port: int) -> ServingImage:
    """An image that speaks TF Serving's REST API for ``model`` (cloudserve runtime, custom)."""
    return ServingImage(
        uri=uri,
        kind=kind,
        port=port,
        predict_route=f"/v1/models/{model}:predict",
        health_route=f"/v1/models/{model}",
        env={"MODEL_NAME": model},
    )


def _finding(severity: str, message: str, fix: str = "", source: str = "") -> Finding:
    return Finding(
        "gcp.image",
        severity,  # type: ignore[arg-type]
        message,
        fix=fix,
        source=source or table()["prebuilt"]["source"],
    )


def _prebuilt(
    export: ExportInfo, region: str, gpu: bool, today: date
) -> tuple[ServingImage | None, list[Finding]]:
    """The prebuilt image if Vertex still serves it, with a warning when it retires soon."""
    tf = export.tf_version or "unknown"
    minor = export.tf_minor
    uri = prebuilt_uri(minor, region, gpu=gpu)
    end = availability_end(minor) if minor else None
    if uri is None or minor is None or end is None:
        return None, [_finding("info", f"Vertex has no prebuilt TF image for TF {tf}")]
    if today >= end:
        retired = f"Vertex's prebuilt TF {minor[0]}.{minor[1]} image was retired on {end}"
        return None, [_finding("info", retired)]
    findings = []
    if today + timedelta(days=table()["prebuilt"]["retiring_warning_days"]) >= end:
        findings.append(
            _finding(
                "warning",
                f"Vertex retires the prebuilt TF {minor[0]}.{minor[1]} image on {end}; versions "
                "served by it stop deploying then",
                fix="re-export with a newer TF and serve it with the cloudserve runtime image",
            )
        )
    return ServingImage(uri=uri, kind="prebuilt"), findings


def _runtime(
    export: ExportInfo, model: str, *, region: str, project: str, gpu: bool, port: int
) -> tuple[ServingImage | None, list[Finding]]:
    """The cloudserve runtime image pushed to this project's Artifact Registry, if any: one
    with the export's TF version, else the newest push whose TF is at least as new."""
    variant = "gpu" if gpu else "cpu"
    minor = export.tf_minor
    tf_version = f"{minor[0]}.{minor[1]}" if minor else None
    registry = runtime_registry(region, project)
    pushed = runtime_images.find_serving(registry, variant=variant, tf_minor=minor)
    if pushed is None:
        return None, [
            _finding(
                "error",
                f"no cloudserve runtime image ({variant}, TF {tf_version or 'any'}) was pushed "
                f"to {registry}/ and Vertex has no prebuilt image for this export",
                fix=runtime_images.push_command("gcp", variant=variant, tf_version=tf_version),
                source=table()["registry_source"],
            )
        ]
    return tf_serving_image(pushed.reference, "cloudserve", model, port), [
        _finding("info", f"serving with the cloudserve runtime image {pushed.reference}")
    ]


def choose(
    image: str,
    export: ExportInfo,
    model: str,
    *,
    region: str,
    project: str,
    gpu: bool,
    port: int,
    today: date | None = None,
) -> Choice:
    """The serving image for ``export`` given the config's ``image`` setting. No network.

    ``auto`` prefers a prebuilt image Vertex still serves (by the dates in ``images.yaml``)
    and falls back to the runtime image pushed to ``REGION-docker.pkg.dev/PROJECT``;
    ``prebuilt`` requires a prebuilt image; ``cloudserve`` requires the pushed runtime image;
    anything else is a custom image URI, which must be in Artifact or Container Registry.
    When no image fits, ``image`` is None and an ``error`` finding says what to do.
    """
    today = today or date.today()
    findings: list[Finding] = []
    if image in ("auto", "prebuilt"):
        chosen, notes = _prebuilt(export, region, gpu, today)
        findings += notes
        if chosen is not None:
            return Choice(chosen, tuple(findings))
        if image == "prebuilt":
            message = "; ".join(f.message for f in notes)
            return Choice(
                None,
                (
                    _finding(
                        "error",
                        f"image: prebuilt, but {message}",
                        fix="set targets.gcp.image: auto to serve with the cloudserve runtime "
                        "image, or re-export with a TF version Vertex still serves",
                    ),
                ),
            )
    if image in ("auto", "cloudserve"):
        chosen, notes = _runtime(export, model, region=region, project=project, gpu=gpu, port=port)
        return Choice(chosen, tuple(findings + notes))
    if not in_vertex_registry(image):
        return Choice(
            None,
            (
                _finding(
                    "error",
                    f"image {image} is not in Artifact Registry (LOCATION-docker.pkg.dev) or "
                    "Container Registry (gcr.io): Vertex cannot pull it",
                    fix=f"push it to {runtime_registry(region, project)}/REPOSITORY and set "
                    "targets.gcp.image to that URI",
                    source=table()["registry_source"],
                ),
            ),
        )
    return Choice(tf_serving_image(image, "custom", model, port))
