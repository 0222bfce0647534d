"""Typed settings of the ``kubernetes`` target (``targets.kubernetes`` in cloudserve.yaml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cloudserve.adapter import AdapterConfig
from cloudserve_adapters.local.config import BatchingParameters

#: a DNS-1123 label, what Kubernetes accepts as a namespace name
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class KubernetesConfig(AdapterConfig):
    """Where and how the runtime runs on the cluster.

    The cluster is reached through a kubeconfig (``kubeconfig`` or ``$KUBECONFIG`` or
    ``~/.kube/config``) and one of its contexts. Versions live in ``model_store`` (an S3 or
    GCS prefix the pods can read); the pods' runtime mirrors new versions from it without a
    restart.
    """

    kubeconfig: Path | None = Field(
        None, description="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"
    )
    context: str | None = Field(None, description="kubeconfig context (default: the current)")
    namespace: str = Field("default", description="namespace of every resource of the model")
    model_store: str = Field(
        ...,
        pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.\-_]{1,62}(/.*)?$",
        description="s3://bucket/prefix or gs://bucket/prefix: versions are uploaded to "
        "<prefix>/<model>/<version>/ and the pods read them from there",
    )
    aws_region: str = Field("us-east-1", description="region of an s3:// model store")
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO, a VPC endpoint); given to the pods as "
        "AWS_ENDPOINT_URL_S3 and used for uploads",
    )
    image: str | None = Field(
        None,
        description="runtime image pinned by digest (repo@sha256:...); default: the image "
        "`cloudserve image push --registry <registry>` recorded for `registry`",
    )
    registry: str | None = Field(
        None, description="registry the runtime image was pushed to (looked up when no image)"
    )
    variant: Literal["cpu", "gpu"] = Field("cpu", description="runtime image variant")
    gpus: int = Field(1, ge=1, description="nvidia.com/gpu per pod (gpu variant only)")
    replicas: int = Field(2, ge=1, description="replicas when autoscaling is off")
    autoscaling: bool = Field(True, description="create a HorizontalPodAutoscaler")
    min_replicas: int = Field(2, ge=1, description="HPA minReplicas")
    max_replicas: int = Field(5, ge=1, description="HPA maxReplicas")
    cpu_target_percent: int = Field(
        70, ge=1, le=100, description="HPA target average CPU utilisation (of the request)"
    )
    cpu_request: str = Field("500m", description="CPU request of one pod")
    cpu_limit: str | None = Field(None, description="CPU limit of one pod (default: none)")
    memory_mb: int | None = Field(
        None,
        ge=64,
        description="memory request and limit of one pod in MiB (default: the export's "
        "memory estimate)",
    )
    max_unavailable: int = Field(
        1, ge=0, description="PodDisruptionBudget maxUnavailable (voluntary disruptions)"
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Service type"
    )
    service_account: str | None = Field(
        None, description="pods' service account (e.g. one bound to an IAM role for S3/GCS)"
    )
    storage_secret: str | None = Field(
        None, description="Secret whose keys become the pods' environment (bucket credentials)"
    )
    enable_batching: bool = Field(True, description="batch concurrent requests in the runtime")
    batching: BatchingParameters | None = Field(None, description="batching parameters")
    poll_interval_s: int = Field(
        5, ge=1, description="how often the runtime re-reads its config and the model store"
    )
    progress_deadline_s: int = Field(
        600, ge=30, description="Deployment progressDeadlineSeconds: a stalled rollout's limit"
    )
    predict_url: str | None = Field(
        None,
        description="base URL of the model Service as this machine reaches it (Ingress, "
        "LoadBalancer); default: through the API server's service proxy",
    )

    manifests_dir: Path | None = Field(
        None,
        description="write every manifest as YAML here whenever deploy plans (with --dry-run "
        "nothing is applied: the GitOps way)",
    )

    @model_validator(mode="after")
    def _check(self) -> KubernetesConfig:
        if not NAMESPACE_PATTERN.match(self.namespace) or len(self.namespace) > 63:
            raise ValueError(f"namespace {self.namespace!r} is not a DNS-1123 label")
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.batching is not None and not self.enable_batching:
            raise ValueError("batching parameters are set but enable_batching is false")
        return self

    @property
    def store_scheme(self) -> str:
        """``s3`` or ``gs``."""
        return self.model_store.split("://", 1)[0]

    @property
    def store_bucket(self) -> str:
        return self.model_store.split("://", 1)[1].split("/", 1)[0]

    @property
    def store_prefix(self) -> str:
        """The prefix inside the bucket, without slashes at either end ("" for none)."""
        rest = self.model_store.split("://", 1)[1]
        return rest.split("/", 1)[1].strip("/") if "/" in rest else ""
