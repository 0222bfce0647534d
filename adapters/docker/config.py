"""Typed settings of the ``docker`` target (``targets.docker`` in cloudserve.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cloudserve.adapter import AdapterConfig
from cloudserve_adapters.local.config import BatchingParameters


class DockerConfig(AdapterConfig):
    """Settings of the docker target: a runtime container per model, models on a bind mount."""

    repository: Path = Field(
        Path(".cloudserve/docker"),
        description="host directory of the model repositories (one per model, TF Serving "
        "layout), bind-mounted read-only into the containers at the same path; with a remote "
        "DOCKER_HOST it must be the same path on the Docker host",
    )
    docker_host: str | None = Field(
        None, description="Docker engine URL (unix:///..., tcp://...); default: DOCKER_HOST"
    )
    image: str | None = Field(
        None,
        description="runtime image; default: the local cloudserve-runtime:tf<X.Y>-<cpu|gpu> "
        "built by `cloudserve image build` for the export's TF version (or the newest newer)",
    )
    network: str = Field(
        "bridge",
        description="container network: bridge publishes the ports on `host`; host shares "
        "the host's network (the runtime listens on free host ports)",
    )
    host: str = Field("127.0.0.1", description="address the published ports bind to")
    grpc_port: int = Field(0, ge=0, le=65535, description="published gRPC port; 0 picks one")
    rest_port: int = Field(0, ge=0, le=65535, description="published REST port; 0 picks one")
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = Field(
        "unless-stopped", description="Docker restart policy of the runtime containers"
    )
    memory_mb: int | None = Field(
        None,
        ge=256,
        description="container memory limit; default: memory_factor x the export's estimate",
    )
    memory_factor: float = Field(
        2.0,
        ge=1.0,
        description="default limit = this x the estimated memory of one version (room for the "
        "old and new version during a switch)",
    )
    gpus: int | Literal["all"] | None = Field(
        None, description="GPUs for the container (docker run --gpus); needs the NVIDIA toolkit"
    )
    enable_batching: bool = Field(True, description="batch concurrent requests in the runtime")
    batching: BatchingParameters | None = Field(
        None, description="batching parameters (needs enable_batching); unset: runtime defaults"
    )
    load_retries: int = Field(0, ge=0, description="times the runtime retries a failed load")
    startup_timeout_s: float = Field(
        180.0, gt=0, description="how long to wait for a new container to answer /readyz"
    )
    unload_timeout_s: float = Field(
        60.0, gt=0, description="how long delete waits for the runtime to unload a version"
    )
    stop_timeout_s: int = Field(
        40, ge=1, description="docker stop grace period (the runtime drains for up to 30 s)"
    )

    @model_validator(mode="after")
    def _check(self) -> DockerConfig:
        if self.grpc_port and self.grpc_port == self.rest_port:
            raise ValueError("grpc_port and rest_port must differ")
        if self.batching is not None and not self.enable_batching:
            raise ValueError("batching parameters are set but enable_batching is false")
        return self
