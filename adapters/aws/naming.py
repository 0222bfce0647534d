"""Names of the SageMaker resources and S3 objects cloudserve creates for a model version.

One SageMaker Model and one EndpointConfig per version, both named ``<model>-v<version>``;
one endpoint per model (``endpoint_name`` or the model name) whose production variants are
named ``v<version>``. A switch that needs other variants than one version's own config (a
traffic split, or a fleet sized like the one it replaces) runs a composed config named
``<model>-e<digest>``. Finding a model's versions is a name match, so no local
state is needed between CLI runs.
"""

from __future__ import annotations

import re

TAG_MODEL = "cloudserve:model"
TAG_VERSION = "cloudserve:version"
TAG_DIGEST = "cloudserve:sha256"
TAG_HISTORY = "cloudserve:default-history"
DIGEST_METADATA = "cloudserve-sha256"
COMPOSED_DIGEST_CHARS = 10  # S3 user metadata key (x-amz-meta-cloudserve-sha256)


def resource_name(model: str, version: str) -> str:
    """The SageMaker Model and EndpointConfig name of one version."""
    return f"{model}-v{version}"


def variant_name(version: str) -> str:
    """The production variant name serving ``version``."""
    return f"v{version}"


def version_of_variant(variant: str) -> str | None:
    """The version a production variant named ``variant`` serves, or None if not ``v<N>``."""
    match = re.fullmatch(r"v(\d+)", variant)
    return match.group(1) if match else None


def composed_config_name(model: str, variants_digest: str) -> str:
    """The name of an EndpointConfig cloudserve composes for a switch (several weighted
    variants, or a variant sized to the fleet it replaces): ``<model>-e<digest>``."""
    return f"{model}-e{variants_digest[:COMPOSED_DIGEST_CHARS]}"


def is_composed_config(model: str, name: str) -> bool:
    """True for ``<model>-e<digest>`` names (see :func:`composed_config_name`)."""
    return (
        re.fullmatch(re.escape(model) + rf"-e[0-9a-f]{{{COMPOSED_DIGEST_CHARS}}}", name) is not None
    )


def version_of(model: str, name: str) -> str | None:
    """The version a resource named ``name`` belongs to, or None if it is not ``model``'s."""
    match = re.fullmatch(re.escape(model) + r"-v(\d+)", name)
    return match.group(1) if match else None


def object_key(prefix: str, model: str, version: str, sha256: str) -> str:
    """The S3 key of a version's model.tar.gz; the content digest is part of the key."""
    head = prefix.strip("/")
    key = f"{model}/v{version}/model-{sha256[:16]}.tar.gz"
    return f"{head}/{key}" if head else key


def version_sort_key(version: str) -> tuple[int, str]:
    """Numeric versions in numeric order ("10" after "9")."""
    return (int(version), version) if version.isdigit() else (-1, version)
