"""Typed settings of the ``local`` target (``targets.local`` in cloudserve.yaml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from cloudserve.adapter import AdapterConfig


class BatchingParameters(AdapterConfig):
    """TF Serving's ``BatchingParameters`` (spec §5); unset fields keep the runtime's defaults."""

    max_batch_size: int | None = Field(
        None, ge=1, description="largest batch in rows; a bigger single request gets 400"
    )
    batch_timeout_micros: int | None = Field(
        None,
        ge=0,
        description="how long an open batch waits to fill (0: run as soon as a thread is free)",
    )
    max_enqueued_batches: int | None = Field(
        None, ge=1, description="queue bound; a full queue answers 503"
    )
    num_batch_threads: int | None = Field(
        None, ge=1, description="batches processed at once (default: number of CPUs)"
    )
    allowed_batch_sizes: list[int] = Field(
        default_factory=list,
        description="increasing batch sizes to pad up to; the last must equal max_batch_size",
    )
    pad_variable_length_inputs: bool = Field(
        False, description="pad tensors whose non-batch dimensions differ across requests"
    )

    @model_validator(mode="after")
    def _check_allowed_sizes(self) -> BatchingParameters:
        sizes = self.allowed_batch_sizes
        if sizes and sizes != sorted(set(sizes)):
            raise ValueError("allowed_batch_sizes must be strictly increasing")
        if sizes and sizes[-1] != self.max_batch_size:
            raise ValueError("the last of allowed_batch_sizes must equal max_batch_size")
        return self

    def to_text_proto(self) -> str:
        """The text of the runtime's ``--batching_parameters_file``."""
        lines = [
            f"{name} {{ value: {value} }}"
            for name in (
                "max_batch_size",
                "batch_timeout_micros",
                "max_enqueued_batches",
                "num_batch_threads",
            )
            if (value := getattr(self, name)) is not None
        ]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        if self.pad_variable_length_inputs:
            lines.append("pad_variable_length_inputs: true")
        return "".join(line + "\n" for line in lines)


class LocalConfig(AdapterConfig):
    """Settings of the local target: cloudserve's runtime as a background process."""

    repository: Path = Field(
        Path(".cloudserve"),
        description="model repository root (TF Serving layout under models/), with the "
        "runtime's config, state, pid file and log",
    )
    host: str = Field("127.0.0.1", description="address the runtime binds to and is reached on")
    grpc_port: int = Field(
        0, ge=0, le=65535, description="runtime gRPC port; 0 picks a free one at first start"
    )
    rest_port: int = Field(
        0, ge=0, le=65535, description="runtime REST port; 0 picks a free one at first start"
    )
    enable_batching: bool = Field(True, description="batch concurrent requests in the runtime")
    batching: BatchingParameters | None = Field(
        None, description="batching parameters (needs enable_batching); unset: runtime defaults"
    )
    load_retries: int = Field(
        0,
        ge=0,
        description="times the runtime retries a failed version load, a minute apart "
        "(0: a broken export fails its deploy at once)",
    )
    startup_timeout_s: float = Field(
        120.0, gt=0, description="how long to wait for the runtime to answer /readyz after start"
    )
    unload_timeout_s: float = Field(
        60.0, gt=0, description="how long delete waits for the runtime to unload a version"
    )

    @model_validator(mode="after")
    def _check_ports(self) -> LocalConfig:
        if self.grpc_port and self.grpc_port == self.rest_port:
            raise ValueError("grpc_port and rest_port must differ")
        if self.batching is not None and not self.enable_batching:
            raise ValueError("batching parameters are set but enable_batching is false")
        return self
