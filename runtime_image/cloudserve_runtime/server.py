"""The model server process: flags -> model manager -> gRPC + REST servers -> graceful stop.

Start-up follows TF Serving: every configured model must have a version AVAILABLE before the
ports open; a model whose versions all fail to load stops start-up with
``Failed to start server. Error: …`` and exit status 1. SIGTERM/SIGINT stop both servers from
accepting, let in-flight requests finish, unload the models and exit 0. SIGHUP re-reads
``--model_config_file``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Sequence

from cloudserve_runtime import access
from cloudserve_runtime.flags import FlagError, ServerOptions, build_arg_parser, parse_flags
from cloudserve_runtime.hosting import HostingError, hosting_argv, stage_saved_model
from cloudserve_runtime.limits import ServerLimits

__all__ = ["ModelServer", "StartupError", "build_arg_parser", "main"]

log = logging.getLogger("cloudserve_runtime.server")

GRACE_PERIOD_S = 30.0
_MAX_MESSAGE = 2**31 - 1


class StartupError(Exception):
    """The server cannot start (bad config file, model failed to load, port in use)."""


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"Could not read {what} {path}: {exc}") from None


def _bind_rest_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"Could not bind the REST port {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class ModelServer:
    """One server instance built from :class:`ServerOptions`.

    Call :meth:`start` (blocks until models are available and ports are bound), then
    :meth:`serve` (blocks until SIGTERM/SIGINT or :meth:`request_stop`).
    """

    def __init__(self, options: ServerOptions) -> None:
        from cloudserve_runtime import batching
        from cloudserve_runtime.metrics import Metrics
        from cloudserve_runtime.monitoring_config import prometheus_path

        self.options = options
        self.limits = ServerLimits.from_options(options)
        # Files that need no TensorFlow are checked first, so their errors come fast.
        self._ssl: access.SslConfig | None = None
        self._rest_ssl_context: ssl.SSLContext | None = None
        self._auth: access.BearerAuth | None = None
        try:
            if options.ssl_config_file:
                self._ssl = access.read_ssl_config(options.ssl_config_file)
                self._rest_ssl_context = access.rest_ssl_context(self._ssl)
            if options.auth_token_file:
                self._auth = access.BearerAuth(access.read_token_file(options.auth_token_file))
        except access.AccessError as exc:
            raise StartupError(str(exc)) from None
        self._prometheus_path = None
        if options.monitoring_config_file:
            text = _read_text(options.monitoring_config_file, "monitoring config file")
            try:
                self._prometheus_path = prometheus_path(text)
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        params = None
        if options.enable_batching:
            try:
                text = options.batching_parameters or (
                    _read_text(options.batching_parameters_file, "batching parameters file")
                    if options.batching_parameters_file else ""
                )
                params = batching.parse_batching_parameters(text)
                params.validate()
            except ValueError as exc:
                raise StartupError(f"Bad batching parameters: {exc}") from None
        # Staged before TensorFlow is imported: a download error comes fast, as one line.
        self._staging_dir: str | None = None
        base_path = "" if options.model_config_file else self._base_path()

        from cloudserve_runtime.errors import ServingError
        from cloudserve_runtime.inference import InferenceRunner
        from cloudserve_runtime.model_config import read_config_file, single_model_config
        from cloudserve_runtime.models import ModelManager
        from cloudserve_runtime.servable import SavedModelServable

        try:
            if options.model_config_file:
                self._config = read_config_file(options.model_config_file)
            else:
                self._config = single_model_config(options.model_name, base_path)
        except ServingError as exc:
            raise StartupError(exc.message) from None
        self.metrics = Metrics()
        self._scheduler = None
        if params is not None:
            self._scheduler = batching.BatchScheduler(params, on_batch=self.metrics.record_batch)
            self.metrics.set_queue_depth_source(self._scheduler.queue_depth)
        cpus = os.cpu_count() or 1
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(4, 2 * cpus), thread_name_prefix="model-run"
        )
        self.runner = InferenceRunner(self._scheduler, self._executor)
        self.manager = ModelManager(
            functools.partial(
                SavedModelServable,
                intra_op_threads=options.tensorflow_intra_op_parallelism,
                inter_op_threads=options.tensorflow_inter_op_parallelism,
            ),
            file_system_poll_wait_s=options.file_system_poll_wait_seconds,
            allow_version_labels_for_unavailable_models=(
                options.allow_version_labels_for_unavailable_models
            ),
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_s=options.load_retry_interval_micros / 1e6,
            on_unload=lambda _name, _version, servable: self.runner.drop_servable(servable),
        )
        self._grpc_server = None
        self._rest_socket: socket.socket | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def _base_path(self) -> str:
        """The model's base path; a ``--saved_model_uri`` is staged into a temporary directory."""
        options = self.options
        if not options.saved_model_uri:
            return os.path.abspath(options.model_base_path)
        self._staging_dir = tempfile.mkdtemp(prefix="cloudserve-model-")
        try:
            return stage_saved_model(
                options.saved_model_uri, options.model_name, self._staging_dir
            )
        except HostingError as exc:
            shutil.rmtree(self._staging_dir, ignore_errors=True)
            raise StartupError(str(exc)) from None

    def start(self) -> None:
        """Loads the models, then binds the gRPC and REST ports (blocks).

        Raises:
            StartupError: a model did not become available, or a port could not be bound.
        """
        from cloudserve_runtime.errors import ServingError

        options = self.options
        try:
            self.manager.start(self._config)
            if options.model_config_file:
                self.manager.watch_config_file(
                    options.model_config_file, options.model_config_file_poll_wait_seconds
                )
            self.manager.wait_until_available(self.manager.model_names())
        except ServingError as exc:
            raise StartupError(f"{exc.code}: {exc.message}") from None
        # The loaded models are long-lived: keep them out of the collector's full passes, whose
        # pauses (hundreds of ms) would otherwise stall the event loop.
        gc.collect()
        gc.freeze()
        if options.port:
            self._grpc_server = self._build_grpc_server()
        if options.rest_api_port:
            self._rest_socket = _bind_rest_socket(options.host, options.rest_api_port)
        if self._grpc_server is not None:
            self._grpc_server.start()
            log.info("Running gRPC ModelServer at %s:%d ...", options.host, options.port)
        if self._rest_socket is not None:
            log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, options.rest_api_port)

    def _build_grpc_server(self):  # -> grpc.Server
        import grpc

        from cloudserve_runtime.grpc_service import add_services

        # A Predict waiting for its batch holds a worker thread, so fewer threads than a batch's
        # rows cap the batch (8 threads: 2.0k req/s on the bench MLP; 64: 2.45k).
        workers = self.options.grpc_max_threads or max(4 * (os.cpu_count() or 1), 64)
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=[access.grpc_interceptor(self._auth)] if self._auth else None,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        add_services(server, self.manager, self.runner, self.metrics, self.limits)
        address = f"{self.options.host}:{self.options.port}"
        try:
            if self._ssl is not None:
                bound = server.add_secure_port(address, access.grpc_credentials(self._ssl))
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            server.stop(None)
            raise StartupError(f"Could not bind the gRPC port {address}: address in use?")
        return server

    def serve(self) -> None:
        """Serves until SIGTERM/SIGINT (main thread) or :meth:`request_stop`, then shuts down."""
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve())
        self._shutdown()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self.request_stop)
            if self.options.model_config_file:
                self._loop.add_signal_handler(signal.SIGHUP, self._reload_from_file)
        if self._stopping.is_set():
            return
        if self._rest_socket is None:
            await self._stop_event.wait()
            return
        from cloudserve_runtime.httpserver import HttpServer

        app = self._build_rest_app()
        guarded = app
        if self._auth is not None:
            open_paths = ["/healthz", "/readyz", "/ping"]
            if self.options.rest_api_health_route:
                open_paths.append(self.options.rest_api_health_route)
            guarded = self._auth.wrap_asgi(app, open_paths)
        http = HttpServer(
            guarded, fast_routes=app, limits=self.limits,
            ssl_context=self._rest_ssl_context,
            authorize=self._auth.accepts_headers if self._auth is not None else None,
        )
        await http.start([self._rest_socket])
        await self._stop_event.wait()
        await http.shutdown(GRACE_PERIOD_S)

    def _build_rest_app(self):  # -> RestApp
        from cloudserve_runtime.rest import RestApp, RestSettings

        return RestApp(
            self.manager, self.runner, self.metrics,
            RestSettings(
                timeout_s=self.options.rest_api_timeout_in_ms / 1000.0,
                enable_cors=self.options.rest_api_enable_cors_support,
                max_body_bytes=self.options.rest_api_max_body_bytes,
                prometheus_path=self._prometheus_path,
                health_route=self.options.rest_api_health_route or None,
                predict_route=self.options.rest_api_predict_route or None,
            ),
        )

    def _reload_from_file(self) -> None:
        from cloudserve_runtime.errors import ServingError

        try:
            self.manager.reload_from_file()
            log.info("Reloaded %s on SIGHUP", self.options.model_config_file)
        except ServingError as exc:
            log.error("SIGHUP reload failed: %s: %s", exc.code, exc.message)

    def request_stop(self) -> None:
        """Stops accepting requests; :meth:`serve` returns once in-flight ones finished.

        Safe to call from any thread, more than once.
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("Shutting down: no new requests; finishing in-flight ones")
        if self._grpc_server is not None:
            self._grpc_stopped = self._grpc_server.stop(GRACE_PERIOD_S)
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._stop_serving)

    def _stop_serving(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    def _shutdown(self) -> None:
        stopped = getattr(self, "_grpc_stopped", None)
        if self._grpc_server is not None:
            if stopped is None:
                stopped = self._grpc_server.stop(GRACE_PERIOD_S)
            stopped.wait(GRACE_PERIOD_S + 1)
        self.close()

    def close(self) -> None:
        """Unloads the models and stops the worker threads (after serving ended)."""
        if self._grpc_server is not None:
            self._grpc_server.stop(None).wait()
        self.manager.close()
        if self._scheduler is not None:
            self._scheduler.close()
        self._executor.shutdown(wait=True)
        if self._rest_socket is not None:
            self._rest_socket.close()
        if self._staging_dir is not None:
            shutil.rmtree(self._staging_dir, ignore_errors=True)


def _print_versions() -> None:
    from importlib import metadata

    def version_of(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "unknown"

    print(f"TensorFlow ModelServer: cloudserve-runtime {version_of('cloudserve')}")
    print(f"TensorFlow Library: {version_of('tensorflow')}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the server with TF Serving-style flags; returns the process exit status.

    The SageMaker ``serve`` argument and Vertex AI's ``AIP_*`` variables are applied first
    (:func:`cloudserve_runtime.hosting.hosting_argv`).

    Args:
        argv: flags without the program name (default: ``sys.argv[1:]``).

    Returns:
        0 after a signal-triggered graceful stop (or ``--version``), 2 for bad flags or hosting
        variables, 1 when start-up fails.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parse_flags(hosting_argv(argv, os.environ))
    except (FlagError, HostingError) as exc:
        print(f"cloudserve_runtime: error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if options.version:
        _print_versions()
        return 0
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = ModelServer(options)
    except StartupError as exc:
        print(f"Failed to start server. Error: {exc}", file=sys.stderr)
        return 1
    try:
        server.start()
    except StartupError as exc:
        print(f"Failed to start server. Error: {exc}", file=sys.stderr)
        server.close()
        return 1
    server.serve()
    return 0
