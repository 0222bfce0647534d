"""Legacy AI Platform Prediction (``ml`` v1): refused, with its terms mapped onto Vertex AI.

Legacy AI Platform Prediction was deprecated on 2023-07-26 and shut down on 2025-01-31; all its
models and versions were deleted (https://cloud.google.com/ai-platform/prediction/docs/deprecations).
A config that still asks for it gets a :class:`~cloudserve.errors.NotSupported` error whose hint
says what each ``ml`` v1 term became on Vertex AI.
"""

from __future__ import annotations

from cloudserve.errors import NotSupported

VERTEX_API_NAMES = frozenset({"aiplatform-v1", "aiplatform", "vertex", "vertex-ai"})
LEGACY_API_NAMES = frozenset(
    {"ml-v1", "ml", "ml.v1", "ml/v1", "ai-platform", "aiplatform-legacy", "cmle"}
)

SHUTDOWN_SOURCE = "https://cloud.google.com/ai-platform/prediction/docs/deprecations"

#: how each legacy concept is expressed on Vertex AI (and by this adapter)
TERM_MAP: tuple[tuple[str, str], ...] = (
    ("model (ml.projects.models)", "Vertex model (models.upload creates it)"),
    (
        "version (models.versions.create)",
        "Vertex model version (models.upload with parentModel), alias v<N>",
    ),
    (
        "versions.setDefault",
        "the 'default' version alias plus 100% of the endpoint's trafficSplit",
    ),
    ("deploymentUri", "artifactUri (the SavedModel directory itself)"),
    ("runtimeVersion / framework", "a prebuilt TF serving image, or the cloudserve runtime image"),
    (
        "machineType, autoScaling, acceleratorConfig",
        "the endpoint's deployedModel.dedicatedResources (machine_type, min/max_replicas, "
        "accelerator_type/count)",
    ),
    ("ml.projects.predict", "endpoints.predict on https://{region}-aiplatform.googleapis.com"),
)


def migration_hint() -> str:
    """One line mapping every ml v1 term onto its Vertex AI counterpart."""
    pairs = "; ".join(f"{old} -> {new}" for old, new in TERM_MAP)
    return f"use target gcp (Vertex AI, api: aiplatform-v1): {pairs}"


def refuse_legacy_api(api: str) -> None:
    """Accept a Vertex AI API name; refuse ``ml`` v1 (NotSupported) and unknown names.

    Raises:
        NotSupported: ``api`` names legacy AI Platform, which no longer exists.
        ValueError: ``api`` names no Google API this target knows (pydantic reports it).
    """
    key = api.strip().lower()
    if key in LEGACY_API_NAMES:
        raise NotSupported(
            "Legacy AI Platform Prediction (ml v1) was shut down on 2025-01-31; its models and "
            f"versions no longer exist ({SHUTDOWN_SOURCE})",
            hint=migration_hint(),
            provider="gcp",
        )
    if key not in VERTEX_API_NAMES:
        raise ValueError(f"api must be aiplatform-v1 (Vertex AI), got {api!r}")
