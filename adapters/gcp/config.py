"""Typed settings of the ``gcp`` target (``targets.gcp`` in cloudserve.yaml).

Validation here is about the *shape* of each value (types, the 256 KiB chunk rule, the retired
``ml`` v1 API). Rules that weigh settings against the export and Vertex's documented limits
(accelerator per machine family, replicas, timeouts, names) are preflight findings
(:mod:`cloudserve_adapters.gcp.preflight`), so they are reported all at once with their sources.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from cloudserve.adapter import AdapterConfig
from cloudserve_adapters.gcp.legacy import refuse_legacy_api

#: Cloud Storage resumable uploads take chunks in multiples of 256 KiB (clouds.md A4)
CHUNK_QUANTUM = 256 * 1024


class GcpConfig(AdapterConfig):
    """Where and how a model is served on Vertex AI."""

    project: str = Field(description="Google Cloud project id that owns the model and endpoint.")
    region: str = Field(
        default="us-central1",
        description="Vertex AI region, e.g. us-central1; calls go to "
        "https://{region}-aiplatform.googleapis.com.",
    )
    bucket: str = Field(description="Cloud Storage bucket the export is uploaded to.")
    prefix: str = Field(
        default="cloudserve",
        description="Object prefix in the bucket; exports land at "
        "gs://bucket/prefix/<model>/<version>/.",
    )
    api: str = Field(
        default="aiplatform-v1",
        description="The Google API used. Only Vertex AI (aiplatform-v1) exists: legacy AI "
        "Platform (ml-v1) was shut down on 2025-01-31 and is refused with a migration hint.",
    )
    image: str = Field(
        default="auto",
        description="Serving container: 'auto' (Vertex's prebuilt TF image for the export's "
        "TF version while Google still serves it, else the cloudserve runtime image pushed to "
        "REGION-docker.pkg.dev/PROJECT by 'cloudserve image push --target gcp'), 'prebuilt' "
        "(require a prebuilt image), 'cloudserve' (require the pushed runtime image), or an "
        "image URI in Artifact Registry or Container Registry served with TF Serving's REST "
        "routes on container_port.",
    )
    container_port: int = Field(
        default=8501,
        ge=1,
        le=65535,
        description="HTTP port of the cloudserve runtime or custom image (TF Serving's REST port).",
    )
    machine_type: str = Field(
        default="n1-standard-2", description="Compute Engine machine type of each replica."
    )
    accelerator_type: str | None = Field(
        default=None, description="GPU type, e.g. NVIDIA_TESLA_T4; None for CPU only."
    )
    accelerator_count: int = Field(
        default=0, ge=0, description="GPUs per replica (needs accelerator_type)."
    )
    min_replicas: int = Field(default=1, description="Minimum replicas (Vertex requires >= 1).")
    max_replicas: int | None = Field(
        default=None, description="Maximum replicas; None means the same as min_replicas."
    )
    autoscaling_cpu_target: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Target CPU utilisation (%) for autoscaling; None keeps Vertex's 60.",
    )
    endpoint_id: str | None = Field(
        default=None,
        description="Endpoint id (the last segment of its resource name); default: the model "
        "name. The endpoint is created on first deploy and found again by this id.",
    )
    endpoint_display_name: str | None = Field(
        default=None, description="Display name of a new endpoint; default: the model name."
    )
    keep_previous: int = Field(
        default=1,
        ge=0,
        description="How many previous default versions stay deployed (with no traffic) for "
        "an instant rollback; older versions without traffic are undeployed.",
    )
    deployment_timeout_s: int = Field(
        default=1800,
        ge=1,
        description="containerSpec.deploymentTimeout: how long Vertex waits for the model "
        "server to become healthy (Vertex allows at most 2 h).",
    )
    poll_initial_s: float = Field(
        default=2.0, gt=0, description="First wait between polls of a long-running operation."
    )
    poll_max_s: float = Field(
        default=20.0, gt=0, description="Longest wait between polls (the backoff's ceiling)."
    )
    delete_timeout_s: float = Field(
        default=1800.0, gt=0, description="How long delete waits for undeploys and deletions."
    )
    http_timeout_s: float = Field(
        default=120.0, gt=0, description="Socket timeout of each Vertex API request."
    )
    preview_endpoints: bool = Field(
        default=True,
        description="Also deploy each version that does not get all the traffic (a candidate, "
        "a canary) with one replica to its own endpoint '<endpoint_id>-v<version>', so "
        "'predict --version' reaches it (a shared Vertex endpoint cannot route a request to "
        "one deployed model). Removed when the version becomes the default. Costs one replica "
        "per such version while it exists.",
    )
    api_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Resends of a Vertex read or idempotent update after a connection error, "
        "5xx or 429 (randomised exponential backoff). Uploads, deploys, deletes and predict "
        "are never resent.",
    )
    upload_chunk_size: int = Field(
        default=32 * CHUNK_QUANTUM,
        description="Resumable upload chunk size in bytes; a multiple of 256 KiB (262144).",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels added to the model versions and the endpoint cloudserve creates.",
    )
    service_account: str | None = Field(
        default=None, description="Service account the deployed model runs as (optional)."
    )
    api_endpoint: str | None = Field(
        default=None,
        description="Override of the Vertex API root, e.g. a private endpoint or a test fake; "
        "default https://{region}-aiplatform.googleapis.com.",
    )

    @field_validator("api")
    @classmethod
    def _vertex_only(cls, value: str) -> str:
        refuse_legacy_api(value)
        return value

    @field_validator("upload_chunk_size")
    @classmethod
    def _chunk_multiple(cls, value: int) -> int:
        if value <= 0 or value % CHUNK_QUANTUM:
            raise ValueError(
                f"upload_chunk_size must be a positive multiple of 256 KiB ({CHUNK_QUANTUM}), "
                f"got {value}"
            )
        return value

    @property
    def max_replica_count(self) -> int:
        """The effective maximum replica count (``max_replicas`` or ``min_replicas``)."""
        return self.max_replicas if self.max_replicas is not None else self.min_replicas

    def vertex_endpoint(self) -> str:
        """The Vertex API root this config calls (the override, else the regional endpoint)."""
        return self.api_endpoint or f"https://{self.region}-aiplatform.googleapis.com"
