"""Resource limits of the REST and gRPC servers, in one place (built from the flags).

The HTTP server (:mod:`cloudserve_runtime.httpserver`) consults a :class:`ServerLimits` for
header size/count (431), header/body/idle timeouts (408), the connection cap (503) and the
pipelining queue (reading pauses while responses wait); the gRPC service consults it for the
largest tensor a request may decode to. Error texts that echo request content cut each echoed
fragment at :data:`MAX_ECHO_CHARS` characters (:func:`cloudserve_runtime.json_core.debug_string`).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudserve_runtime.flags import ServerOptions

DEFAULT_MAX_HEADER_COUNT = 100
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_MS = 30_000
DEFAULT_BODY_TIMEOUT_MS = 60_000
DEFAULT_IDLE_TIMEOUT_MS = 5_000
DEFAULT_MAX_PIPELINED = 16
DEFAULT_MAX_TENSOR_BYTES = 64 * 1024 * 1024
DEFAULT_RELOAD_TIMEOUT_MS = 120_000
MAX_ECHO_CHARS = 1024
"""Longest fragment of a request that an error text repeats back."""
TRUNCATED = "...TRUNCATED"
"""Ends an echoed request fragment or error text that was cut (TF Serving's marker)."""
_FD_RESERVE = 256
"""File descriptors kept free of REST connections (model files, gRPC, logs)."""


def auto_max_connections() -> int:
    """The connection cap when none is configured: the soft open-files limit minus a reserve
    of 256, at least 64."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(64, soft - _FD_RESERVE)


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus ``...TRUNCATED`` when longer (for request
    content repeated in an error text)."""
    return text if len(text) <= limit else text[:limit] + TRUNCATED


@dataclass(frozen=True)
class ServerLimits:
    """Limits one server process enforces (see the module docstring and runtime_image/README.md).

    Attributes:
        max_header_count: request header lines per request; more get 431.
        max_header_bytes: bytes of request line plus headers; more get 431.
        header_timeout_s: a request's head must arrive within this; else 408 and close.
        body_timeout_s: a request's body must arrive within this after its head; else 408.
        idle_timeout_s: a keep-alive connection with no request open is closed after this.
        max_connections: open REST connections; further ones get 503 and are closed.
        max_pipelined: parsed requests queued behind the one being answered; at this many
            (or while the client does not read its responses) the server stops reading.
        max_tensor_bytes: the largest tensor a gRPC request may decode to when its values do
            not all travel in the request (a shape with fewer values); INVALID_ARGUMENT.
        reload_timeout_s: longest HandleReloadConfigRequest waits for the models to load.
    """

    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_MS / 1000
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_MS / 1000
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_MS / 1000
    max_connections: int = 0
    max_pipelined: int = DEFAULT_MAX_PIPELINED
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES
    reload_timeout_s: float = DEFAULT_RELOAD_TIMEOUT_MS / 1000

    def __post_init__(self) -> None:
        if self.max_connections <= 0:
            object.__setattr__(self, "max_connections", auto_max_connections())

    @classmethod
    def from_options(cls, options: ServerOptions) -> ServerLimits:
        """Builds the limits from :class:`cloudserve_runtime.flags.ServerOptions`."""
        return cls(
            max_header_count=options.rest_api_max_header_count,
            max_header_bytes=options.rest_api_max_header_bytes,
            header_timeout_s=options.rest_api_header_timeout_in_ms / 1000,
            body_timeout_s=options.rest_api_body_timeout_in_ms / 1000,
            idle_timeout_s=options.rest_api_idle_timeout_in_ms / 1000,
            max_connections=options.rest_api_max_connections,
            max_pipelined=options.rest_api_max_pipelined_requests,
            max_tensor_bytes=options.grpc_max_tensor_bytes,
            reload_timeout_s=options.reload_config_timeout_in_ms / 1000,
        )


_ITEM_BYTES = {
    1: 4,
    2: 8,
    3: 4,
    4: 1,
    5: 2,
    6: 1,
    8: 8,
    9: 8,
    10: 1,
    11: 1,
    12: 1,
    13: 4,
    14: 2,
    15: 2,
    16: 2,
    17: 2,
    18: 16,
    19: 2,
    22: 4,
    23: 8,
}
"""Bytes per element by ``tensorflow.DataType`` number; others (strings, resources) count 8."""
_VALUE_FIELDS = (
    "half_val",
    "float_val",
    "double_val",
    "int_val",
    "string_val",
    "scomplex_val",
    "int64_val",
    "bool_val",
    "dcomplex_val",
    "resource_handle_val",
    "variant_val",
    "uint32_val",
    "uint64_val",
    "float8_val",
)


def check_tensor_proto(alias: str, proto: Any, max_bytes: int) -> None:
    """Rejects a request ``TensorProto`` that would expand past ``max_bytes`` when decoded.

    A tensor whose values all travel in the request (``tensor_content`` of the full size, or
    one typed value per element) is accepted at any size: its memory is already proportional
    to the message. One that declares a larger shape than the values it carries (TensorFlow
    fills the rest) may decode to at most ``max_bytes``. Nothing is allocated here.

    Raises:
        ServingError: INVALID_ARGUMENT naming the input, its shape and the limit.
    """
    from cloudserve_runtime.errors import invalid_argument

    elements = 1
    for dim in proto.tensor_shape.dim:
        if dim.size < 0:
            return  # not a valid request shape: the decoder reports it
        elements *= dim.size
    declared = elements * _ITEM_BYTES.get(proto.dtype, 8)
    if declared <= max_bytes:
        return
    if proto.tensor_content:
        if len(proto.tensor_content) >= declared:
            return
    else:
        carried = 0
        for name in _VALUE_FIELDS:
            if proto.DESCRIPTOR.fields_by_name.get(name) is not None:
                carried += len(getattr(proto, name))
        if carried >= elements:
            return
    shape = ",".join(str(dim.size) for dim in proto.tensor_shape.dim)[:MAX_ECHO_CHARS]
    raise invalid_argument(
        f"Input tensor {alias[:MAX_ECHO_CHARS]} with shape [{shape}] would take {declared} bytes "
        f"but carries fewer values than its shape; such tensors may take at most {max_bytes} "
        "bytes (--grpc_max_tensor_bytes)"
    )
