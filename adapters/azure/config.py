"""Typed settings of the ``azure`` target (``targets.azure`` in cloudserve.yaml).

Validation here is about the *shape* of each value. Rules that weigh settings against Azure's
documented limits (SKU list, quota with the 20 % reservation, names, probes, request timeout)
are preflight findings (:mod:`cloudserve_adapters.azure.preflight`), reported all at once with
their sources.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloudserve.adapter import AdapterConfig


class ProbeConfig(BaseModel):
    """One probe of the serving container (Azure's ``ProbeSettings``; defaults are Azure's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_delay_s: int = Field(default=10, ge=0, description="Seconds before the first probe.")
    period_s: int = Field(default=10, ge=1, description="Seconds between probes.")
    timeout_s: int = Field(default=2, ge=1, description="Seconds one probe may take.")
    success_threshold: int = Field(default=1, ge=1, description="Successes to count as up.")
    failure_threshold: int = Field(default=30, ge=1, description="Failures to count as down.")


class RequestConfig(BaseModel):
    """Per-request settings of a deployment (Azure's ``OnlineRequestSettings``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_timeout_ms: int = Field(
        default=5000, ge=1, description="Scoring timeout in ms (Azure's default 5000; max 180000)."
    )
    max_concurrent_requests_per_instance: int = Field(
        default=1,
        ge=1,
        description="Requests one instance serves at once; Azure answers 429 beyond "
        "2 x this x instance_count in flight.",
    )


class AzureConfig(AdapterConfig):
    """Where and how a model is served on Azure Machine Learning."""

    subscription_id: str = Field(description="Azure subscription id (a GUID).")
    resource_group: str = Field(description="Resource group of the Azure ML workspace.")
    workspace: str = Field(description="Azure ML workspace name.")
    endpoint_name: str | None = Field(
        default=None,
        description="Managed online endpoint name (3-32 characters, unique in the region); "
        "default: the model name.",
    )
    instance_type: str = Field(
        default="Standard_DS3_v2",
        description="VM SKU of each serving instance (from Azure's managed online endpoint SKU "
        "list).",
    )
    instance_count: int = Field(default=1, description="Instances per deployment (1-50).")
    vcpu_quota: int | None = Field(
        default=None,
        description="Your vCPU quota for the SKU's family in the region (Azure ML studio > "
        "Quota). When set, preflight checks instances x 1.2 x vCPUs fits it (Azure reserves "
        "20 % extra for upgrades).",
    )
    acr: str | None = Field(
        default=None,
        description="Azure Container Registry name (<name>.azurecr.io) that holds the "
        "cloudserve runtime image pushed with 'cloudserve image push --target azure'.",
    )
    image: str | None = Field(
        default=None,
        description="Full serving image reference (overrides the pushed runtime image); must "
        "serve TF Serving's REST routes on container_port.",
    )
    container_port: int = Field(
        default=8501, ge=1, le=65535, description="REST port of the serving container."
    )
    request: RequestConfig = Field(
        default_factory=RequestConfig,
        description="Scoring request settings of each deployment (timeout, concurrency).",
    )
    liveness_probe: ProbeConfig = Field(
        default_factory=ProbeConfig,
        description="Liveness probe of the serving container (GET /v1/models/<model>); raise "
        "initial_delay_s for models that load slowly.",
    )
    readiness_probe: ProbeConfig = Field(
        default_factory=ProbeConfig,
        description="Readiness probe (same route); traffic reaches an instance once it passes.",
    )
    keep_previous: int = Field(
        default=1,
        ge=0,
        description="How many previous default versions keep their deployment (with no "
        "traffic) for an instant rollback; other deployments without traffic are deleted.",
    )
    datastore: str = Field(
        default="workspaceblobstore",
        description="Workspace datastore (Azure Blob) the export is uploaded to.",
    )
    prefix: str = Field(
        default="cloudserve",
        description="Blob prefix in the datastore's container; exports land at "
        "<prefix>/<model>/<version>/<model>/<version>/ (the TF Serving layout).",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags added to the endpoint and model versions."
    )
    poll_initial_s: float = Field(
        default=5.0, gt=0, description="First wait between polls of a long-running operation."
    )
    poll_max_s: float = Field(default=30.0, gt=0, description="Longest wait between polls.")
    delete_timeout_s: float = Field(
        default=1800.0, gt=0, description="How long delete waits for deployments to go."
    )
    http_timeout_s: float = Field(
        default=120.0, gt=0, description="Socket timeout of each request (ARM, blob, scoring)."
    )

    def endpoint_for(self, model: str) -> str:
        """The managed online endpoint that serves ``model``."""
        return self.endpoint_name or model
