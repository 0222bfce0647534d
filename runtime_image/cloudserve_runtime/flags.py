"""Command-line flags with TF Serving's names and meanings (spec §7).

Both ``--flag=value`` and ``--flag value`` work; booleans accept ``--flag``, ``--flag=true`` and
``--flag=false``. When neither ``--model_base_path`` nor ``--model_config_file`` is given, the
``MODEL_NAME``/``MODEL_BASE_PATH`` environment variables are used the way TF Serving's Docker
image uses them: the base path is ``${MODEL_BASE_PATH:-/models}/<model name>``.

cloudserve extensions for the cloud hosting contracts (:mod:`cloudserve_runtime.hosting` sets them
from SageMaker's and Vertex AI's environment): ``--saved_model_uri``, ``--rest_api_health_route``,
``--rest_api_predict_route`` and ``--batching_parameters``. Access control and resource limits
(``--ssl_config_file``, ``--auth_token_file``, ``--bind_address``, ``--rest_api_max_*``, the
``--rest_api_*_timeout_in_ms`` flags, ``--grpc_max_tensor_bytes``,
``--reload_config_timeout_in_ms``) feed :mod:`cloudserve_runtime.access` and
:class:`cloudserve_runtime.limits.ServerLimits`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloudserve_runtime import limits

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


class FlagError(Exception):
    """A bad command line; the message is one line for stderr."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlagError(message)


def build_arg_parser(prog: str = "cloudserve_runtime") -> argparse.ArgumentParser:
    """Returns the parser for the server flags (errors raise :class:`FlagError`)."""
    parser = _Parser(
        prog=prog, allow_abbrev=False,
        description="TensorFlow-Serving-compatible batching model server (REST and gRPC).",
    )

    def flag(name: str, kind: type, default: object, text: str) -> None:
        if kind is bool:
            parser.add_argument(
                f"--{name}", type=_bool, nargs="?", const=True, default=default, metavar="BOOL",
                help=text,
            )
        else:
            parser.add_argument(f"--{name}", type=kind, default=default, help=text)

    flag("port", int, 8500, "gRPC port (0 disables gRPC)")
    flag("rest_api_port", int, 8501, "REST port (0 disables REST); must differ from --port")
    parser.add_argument(
        "--bind_address", "--host", dest="host", default="0.0.0.0",
        help="address both servers bind to (0.0.0.0: every interface; 127.0.0.1: this machine)",
    )
    flag("rest_api_timeout_in_ms", int, 30000, "REST model-run timeout; exceeding it gives 504")
    flag("rest_api_enable_cors_support", bool, False, "add CORS headers to REST responses")
    flag("rest_api_max_body_bytes", int, DEFAULT_MAX_BODY_BYTES,
         "largest REST request body; bigger ones get 413")
    flag("rest_api_health_route", str, "", "extra REST path answering like /readyz")
    flag("rest_api_predict_route", str, "",
         "extra REST path for predict requests to the served model, like /invocations")
    flag("model_name", str, None, "model name (default: $MODEL_NAME or 'default')")
    flag("model_base_path", str, None, "directory of numeric version dirs")
    flag("model_config_file", str, "", "text-format ModelServerConfig (overrides model flags)")
    flag("saved_model_uri", str, "",
         "one SavedModel dir (local or gs://) served as version 1 of --model_name; a dir of "
         "version dirs is served as is (instead of --model_base_path)")
    flag("model_config_file_poll_wait_seconds", float, 0.0,
         "re-read --model_config_file this often (0: read once)")
    flag("file_system_poll_wait_seconds", float, 1.0, "poll model base paths this often (0: once)")
    flag("enable_batching", bool, False, "batch concurrent requests server-side")
    flag("batching_parameters_file", str, "", "text-format BatchingParameters")
    flag("batching_parameters", str, "",
         "text-format BatchingParameters inline (instead of --batching_parameters_file)")
    flag("monitoring_config_file", str, "", "text-format MonitoringConfig (Prometheus)")
    flag("allow_version_labels_for_unavailable_models", bool, False,
         "allow new labels to point at versions not loaded yet")
    flag("tensorflow_intra_op_parallelism", int, 0, "intra-op threads per session (0: auto)")
    flag("tensorflow_inter_op_parallelism", int, 0, "inter-op threads per session (0: auto)")
    flag("max_num_load_retries", int, 5, "retries of a failed version load")
    flag("load_retry_interval_micros", int, 60_000_000, "pause between load retries")
    flag("grpc_max_threads", int, 0, "gRPC worker threads (0: 4 x #CPUs, at least 64)")
    # Access control and resource limits (cloudserve_runtime.limits; runtime_image/README.md).
    flag("ssl_config_file", str, "",
         "text-format SSLConfig (server_key, server_cert, custom_ca, client_verify): TLS for "
         "gRPC and REST")
    flag("auth_token_file", str, "",
         "file holding a bearer token every REST (Authorization: Bearer) and gRPC "
         "(authorization metadata) request must carry; health routes stay open")
    flag("rest_api_max_header_count", int, limits.DEFAULT_MAX_HEADER_COUNT,
         "most request header lines; more get 431")
    flag("rest_api_max_header_bytes", int, limits.DEFAULT_MAX_HEADER_BYTES,
         "most bytes of request line plus headers; more get 431")
    flag("rest_api_header_timeout_in_ms", int, limits.DEFAULT_HEADER_TIMEOUT_MS,
         "a request's headers must arrive within this; else 408")
    flag("rest_api_body_timeout_in_ms", int, limits.DEFAULT_BODY_TIMEOUT_MS,
         "a request's body must arrive within this after its headers; else 408")
    flag("rest_api_idle_timeout_in_ms", int, limits.DEFAULT_IDLE_TIMEOUT_MS,
         "close keep-alive connections idle this long")
    flag("rest_api_max_connections", int, 0,
         "most open REST connections, more get 503 (0: open-files limit - 256)")
    flag("rest_api_max_pipelined_requests", int, limits.DEFAULT_MAX_PIPELINED,
         "requests queued per connection before the server stops reading it")
    flag("grpc_max_tensor_bytes", int, limits.DEFAULT_MAX_TENSOR_BYTES,
         "largest tensor a gRPC request may expand to from a shape with fewer values")
    flag("reload_config_timeout_in_ms", int, limits.DEFAULT_RELOAD_TIMEOUT_MS,
         "longest HandleReloadConfigRequest waits for the models to load")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    return parser


@dataclass(frozen=True)
class ServerOptions:
    """Validated server settings (see :func:`parse_flags`)."""

    port: int
    rest_api_port: int
    host: str
    rest_api_timeout_in_ms: int
    rest_api_enable_cors_support: bool
    rest_api_max_body_bytes: int
    rest_api_health_route: str
    rest_api_predict_route: str
    model_name: str
    model_base_path: str
    model_config_file: str
    saved_model_uri: str
    model_config_file_poll_wait_seconds: float
    file_system_poll_wait_seconds: float
    enable_batching: bool
    batching_parameters_file: str
    batching_parameters: str
    monitoring_config_file: str
    allow_version_labels_for_unavailable_models: bool
    tensorflow_intra_op_parallelism: int
    tensorflow_inter_op_parallelism: int
    max_num_load_retries: int
    load_retry_interval_micros: int
    grpc_max_threads: int
    ssl_config_file: str
    auth_token_file: str
    rest_api_max_header_count: int
    rest_api_max_header_bytes: int
    rest_api_header_timeout_in_ms: int
    rest_api_body_timeout_in_ms: int
    rest_api_idle_timeout_in_ms: int
    rest_api_max_connections: int
    rest_api_max_pipelined_requests: int
    grpc_max_tensor_bytes: int
    reload_config_timeout_in_ms: int
    version: bool


def parse_flags(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> ServerOptions:
    """Parses and validates ``argv`` (without the program name).

    Raises:
        FlagError: unknown flag, bad value, or an inconsistent combination.
    """
    environ = os.environ if environ is None else environ
    args = build_arg_parser().parse_args(list(argv))
    values = vars(args)
    if args.model_name is None:
        values["model_name"] = environ.get("MODEL_NAME") or "default"
    if args.saved_model_uri and (args.model_base_path is not None or args.model_config_file):
        raise FlagError("--saved_model_uri excludes --model_base_path and --model_config_file")
    if args.model_base_path is None:
        from_env = environ.get("MODEL_BASE_PATH") or environ.get("MODEL_NAME")
        if from_env and not args.saved_model_uri and not args.model_config_file:
            root = environ.get("MODEL_BASE_PATH") or "/models"
            values["model_base_path"] = os.path.join(root, values["model_name"])
        else:
            values["model_base_path"] = ""
    options = ServerOptions(**values)
    if options.version:
        return options
    _validate(options)
    return options


def _validate(options: ServerOptions) -> None:
    if not (options.model_base_path or options.model_config_file or options.saved_model_uri):
        raise FlagError(
            "Both --model_base_path and --model_config_file are empty; set one of them "
            "(or MODEL_NAME/MODEL_BASE_PATH in the environment)"
        )
    for name in ("port", "rest_api_port"):
        value = getattr(options, name)
        if not 0 <= value <= 65535:
            raise FlagError(f"--{name}={value} is not a valid port")
    if options.port == 0 and options.rest_api_port == 0:
        raise FlagError("Both --port and --rest_api_port are 0; nothing to serve on")
    if options.rest_api_port and options.rest_api_port == options.port:
        raise FlagError(
            f"--rest_api_port={options.rest_api_port} must differ from --port={options.port}"
        )
    if options.batching_parameters_file and not options.enable_batching:
        raise FlagError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if options.batching_parameters and not options.enable_batching:
        raise FlagError("--batching_parameters is set without --enable_batching")
    if options.batching_parameters and options.batching_parameters_file:
        raise FlagError("--batching_parameters and --batching_parameters_file are exclusive")
    for name in ("rest_api_health_route", "rest_api_predict_route"):
        route = getattr(options, name)
        if route and not route.startswith("/"):
            raise FlagError(f"--{name}={route} must start with /")
    for name in ("rest_api_timeout_in_ms", "rest_api_max_body_bytes", "rest_api_max_header_count",
                 "rest_api_max_header_bytes", "rest_api_header_timeout_in_ms",
                 "rest_api_body_timeout_in_ms", "rest_api_idle_timeout_in_ms",
                 "rest_api_max_pipelined_requests", "grpc_max_tensor_bytes",
                 "reload_config_timeout_in_ms"):
        if getattr(options, name) <= 0:
            raise FlagError(f"--{name} must be positive")
    for name in ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
                 "max_num_load_retries", "load_retry_interval_micros", "grpc_max_threads",
                 "rest_api_max_connections"):
        if getattr(options, name) < 0:
            raise FlagError(f"--{name} must not be negative")
