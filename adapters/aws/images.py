"""Which serving image a version runs: the AWS TF Serving image, or the user's own.

The table of AWS TensorFlow inference images lives in ``images.yaml`` beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from cloudserve import runtime_images

GPU_FAMILIES = ("ml.g", "ml.p")


@cache
def table() -> dict[str, Any]:
    """The image table (images.yaml)."""
    return yaml.safe_load(resources.files(__package__).joinpath("images.yaml").read_text())


def processor(instance_type: str | None) -> str:
    """The image flavour an instance type needs: "gpu" (g*/p* families), "neuron" (Inferentia
    and Trainium: no TF Serving image), "graviton" (arm64 families), else "cpu" (also for
    serverless, which has no instance type)."""
    if not instance_type:
        return "cpu"
    if instance_type.startswith(GPU_FAMILIES):
        return "gpu"
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    if family.startswith(tuple(table()["neuron_family_prefixes"])):
        return "neuron"
    if family in table()["graviton"]["families"]:
        return "graviton"
    return "cpu"


def _minor_key(minor: str) -> tuple[int, int]:
    major, _, rest = minor.partition(".")
    return int(major), int(rest)


@dataclass(frozen=True)
class ImageChoice:
    """The image resolved for an export, and how well it fits.

    ``exact`` is False when no image exists for the export's own TF minor and a newer
    one is used instead (TF Serving loads SavedModels written by older TF).
    """

    uri: str
    tf_version: str
    exact: bool


def runtime_image_hint() -> str:
    """The fix to offer when no AWS image serves the export's TF version."""
    return f"set image: {table()['runtime_image']} (cloudserve's runtime image, pushed to ECR)"


def pushed_runtime(
    tf_minor: tuple[int, int] | None, region: str, proc: str
) -> runtime_images.PushedImage | None:
    """The cloudserve runtime image ``cloudserve image push --target aws`` pushed to an ECR
    registry in ``region`` for this TF minor and processor (None when none was; the runtime
    image has no Graviton or Neuron build)."""
    if proc not in ("cpu", "gpu"):
        return None
    tf = f"{tf_minor[0]}.{tf_minor[1]}" if tf_minor else None
    return runtime_images.find(f"*.dkr.ecr.{region}.amazonaws.com", variant=proc, tf_version=tf)


def uri(region: str, full_version: str, proc: str) -> str:
    """The ECR URI of one AWS TensorFlow inference image (``proc``: "cpu", "gpu" or
    "graviton"; for "graviton" ``full_version`` is the whole tag from the Graviton table)."""
    data = table()
    account = data["accounts"].get(region, data["default_account"])
    suffix = next(
        (s for prefix, s in data["dns_suffixes"].items() if region.startswith(prefix)),
        "amazonaws.com",
    )
    if proc == "graviton":
        repository, tag = data["graviton"]["repository"], full_version
    else:
        repository, tag = data["repository"], f"{full_version}-{proc}"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"


def _versions(proc: str) -> dict[str, str]:
    data = table()
    return data["graviton"]["versions"] if proc == "graviton" else data["versions"]


def resolve(tf_minor: tuple[int, int] | None, region: str, proc: str) -> ImageChoice | None:
    """The AWS TF Serving image for an export written by TF ``tf_minor``.

    The image of the same minor when there is one, else the oldest newer image; the newest
    image when the TF version is unknown. None when the export is newer than every image,
    and for "neuron" (Inferentia/Trainium instances have no TF Serving image).
    """
    if proc == "neuron":
        return None
    versions = _versions(proc)
    ordered = sorted(versions, key=_minor_key)
    if tf_minor is None:
        minor = ordered[-1]
    else:
        candidates = [m for m in ordered if _minor_key(m) >= tf_minor]
        if not candidates:
            return None
        minor = candidates[0]
    full = versions[minor]
    return ImageChoice(
        uri=uri(region, full, proc),
        tf_version=full.split("-")[0],
        exact=tf_minor is not None and _minor_key(minor) == tf_minor,
    )


def newest(proc: str = "cpu") -> str:
    """The newest TF version an AWS image serves on ``proc``, e.g. "2.19.0"."""
    versions = _versions(proc)
    return versions[max(versions, key=_minor_key)].split("-")[0]
