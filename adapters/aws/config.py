"""Typed settings of the ``aws`` target (``targets.aws`` in cloudserve.yaml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cloudserve.adapter import AdapterConfig


class ServerlessSettings(BaseModel):
    """A serverless endpoint instead of real-time instances (CPU only, one variant)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int = Field(
        2048, description="Memory per serverless worker: 1024, 2048, 3072, 4096, 5120 or 6144 MB."
    )
    max_concurrency: int = Field(
        5, description="Concurrent invocations the endpoint may serve at once (1-200)."
    )
    provisioned_concurrency: int | None = Field(
        None, description="Pre-warmed workers (1-200, at most max_concurrency); None for none."
    )


class AwsTimeouts(BaseModel):
    """How long cloudserve waits for SageMaker, and how often it asks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_initial_s: float = Field(
        5.0, description="First delay between DescribeEndpoint polls, in seconds."
    )
    poll_max_s: float = Field(
        30.0, description="Longest delay between polls; delays double up to this."
    )
    read_timeout_s: float = Field(
        70.0,
        description="Socket read timeout of predict calls; SageMaker allows a model 60 s.",
    )


class AwsConfig(AdapterConfig):
    """Settings of the SageMaker target. Every field has a default except where noted."""

    region: str = Field("us-east-1", description="AWS region of the bucket and the endpoint.")
    bucket: str | None = Field(
        None, description="S3 bucket the model.tar.gz is uploaded to (required to deploy)."
    )
    prefix: str = Field(
        "cloudserve", description="Key prefix in the bucket: <prefix>/<model>/v<version>/..."
    )
    create_bucket: bool = Field(
        False, description="Create the bucket when it does not exist (otherwise: an error)."
    )
    role_arn: str | None = Field(
        None,
        description="IAM execution role SageMaker assumes to pull the image and the model "
        "(required to deploy): arn:aws:iam::<account>:role/<name>.",
    )
    image: str | None = Field(
        None,
        description="Serving image URI. Default: the AWS TensorFlow Serving inference image "
        "for the export's TF version and the region.",
    )
    code_dir: Path | None = Field(
        None,
        description="Directory shipped as code/ in model.tar.gz (inference.py, "
        "requirements.txt) for the TF Serving container's pre/post-processing.",
    )
    instance_type: str = Field(
        "ml.m5.large", description="Real-time instance type (ignored when serverless is set)."
    )
    instance_count: int = Field(1, description="Initial instance count of a real-time variant.")
    min_instances: int = Field(
        1, description="Autoscaling minimum instances (used when max_instances is set)."
    )
    max_instances: int | None = Field(
        None,
        description="Autoscaling maximum instances; set it to register Application Auto "
        "Scaling for the serving variant. None: no autoscaling.",
    )
    target_invocations_per_instance: float = Field(
        70.0,
        description="Autoscaling target: SageMakerVariantInvocationsPerInstance per minute.",
    )
    serverless: ServerlessSettings | None = Field(
        None, description="Serve from a serverless endpoint; None for real-time instances."
    )
    timeouts: AwsTimeouts = Field(
        default_factory=AwsTimeouts, description="Polling and read timeouts."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags put on every SageMaker resource created."
    )
    endpoint_name: str | None = Field(None, description="Endpoint name; default: the model name.")
    model_registry_group: str | None = Field(
        None,
        description="Also register each version as a model package in this SageMaker "
        "model package group (created when missing).",
    )
