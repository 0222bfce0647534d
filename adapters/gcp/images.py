"""Choosing the serving container for an export: Vertex's prebuilt TF image or cloudserve's.

The table of prebuilt images lives in ``images.yaml`` beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from cloudserve.records import ExportInfo

ImageKind = Literal["prebuilt", "cloudserve", "custom"]


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


def geo_for_region(region: str) -> str:
    """The Artifact Registry multi-region ("us", "europe", "asia") nearest ``region``."""
    data = table()
    return data["geo_by_region_prefix"].get(region.split("-", 1)[0], data["default_geo"])


def prebuilt_uri(tf_minor: tuple[int, int] | None, region: str, *, gpu: bool) -> str | None:
    """Vertex's prebuilt TF serving image for an export's TF version; None when none exists."""
    prebuilt = table()["prebuilt"]
    if tf_minor is None or tf_minor[0] != 2 or tf_minor[1] not in prebuilt["tf2_minors"]:
        return None
    return prebuilt["uri"].format(
        geo=geo_for_region(region),
        processor="gpu" if gpu else "cpu",
        major=tf_minor[0],
        minor=tf_minor[1],
    )


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


def select(
    image: str, export: ExportInfo, model: str, *, region: str, gpu: bool, port: int
) -> ServingImage | None:
    """The serving image for ``export`` given the config's ``image`` setting.

    ``auto`` prefers the prebuilt image and falls back to the cloudserve runtime image;
    ``prebuilt`` returns None when the export's TF version has no prebuilt image;
    ``cloudserve`` is the runtime image; anything else is a custom image URI.
    """
    if image in ("auto", "prebuilt"):
        uri = prebuilt_uri(export.tf_minor, region, gpu=gpu)
        if uri is not None:
            return ServingImage(uri=uri, kind="prebuilt")
        if image == "prebuilt":
            return None
    if image in ("auto", "cloudserve"):
        runtime = table()["runtime"]["gpu" if gpu else "cpu"]
        return tf_serving_image(runtime, "cloudserve", model, port)
    return tf_serving_image(image, "custom", model, port)


def in_vertex_registry(uri: str) -> bool:
    """Does ``uri`` live in Artifact Registry or Container Registry (see images.yaml)?"""
    host = uri.split("/", 1)[0]
    return any(
        host == h or host.endswith("." + h) or host.endswith("-" + h)
        for h in table()["registry_hosts"]
    )
