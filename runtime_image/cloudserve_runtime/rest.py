"""The REST API as a raw ASGI app (spec §1): routing, predict/classify/regress, status, metadata.

Besides TF Serving's ``/v1/...`` routes it serves ``/healthz`` (200 while the process runs),
``/readyz`` (200 when every configured model has an AVAILABLE version, else 503) and, when the
monitoring config enables it, the Prometheus path. For the cloud hosting contracts it also serves
SageMaker's ``GET /ping`` (as ``/readyz``) and ``POST /invocations`` (a predict request to the
default version of the served model, or of the one named by
``X-Amzn-SageMaker-Custom-Attributes: tfs-model-name=<name>``), and the configured health and
predict routes (Vertex AI's ``AIP_HEALTH_ROUTE``/``AIP_PREDICT_ROUTE``) the same way. ``/v1/``
paths are matched first. Other paths get a 404 HTML page like TF Serving's HTTP server. Model
calls never run on the event loop.

``POST /v1/models/...:predict`` (and ``:classify``/``:regress``) requests with a Content-Length
body can also be served without the ASGI shim, through :meth:`RestApp.fast_route` (see
:class:`cloudserve_runtime.httpserver.FastRoutes`); the responses are the same.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cloudserve_runtime import methods, rest_codec
from cloudserve_runtime.errors import (
    ServingError,
    as_serving_error,
    http_status,
    invalid_argument,
    not_found,
)
from cloudserve_runtime.inference import InferenceRunner
from cloudserve_runtime.metrics import Metrics
from cloudserve_runtime.models import ModelManager

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_POST = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:"
    r"(classify|regress|predict)"
)
_GET = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?"
)
_V1 = re.compile(r"(?i)/v1/.*", re.DOTALL)
_ORIGIN = re.compile(r"https?://.*")
_INT64_MAX = 2**63 - 1
_FAST_CACHE_SIZE = 256
_VERBS = ("classify", "regress", "predict")
OFFLOAD_BYTES = 256 * 1024
"""Predict bodies of this size or more are decoded on a worker thread, not the event loop."""
OFFLOAD_VALUES = 16384
"""Predict outputs of this many values or more are encoded on a worker thread."""

_JSON = b"application/json"
_CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
_CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, GET"),
    (b"access-control-allow-headers", b"Content-Type"),
]
_NOT_FOUND_PAGE = (
    "<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n"
    "The requested URL {path} was not found on this server.\n</BODY></HTML>\n"
)


@dataclass(frozen=True)
class RestSettings:
    """REST behaviour switches.

    Attributes:
        timeout_s: model-run timeout (``--rest_api_timeout_in_ms``); exceeding it gives 504.
        enable_cors: add CORS headers to every response.
        max_body_bytes: larger bodies get 413.
        prometheus_path: path of the metrics page, or None when monitoring is off.
        health_route: another path answering like ``/readyz`` (Vertex AI's health route).
        predict_route: another path answering like ``/invocations`` (Vertex AI's predict route).
    """

    timeout_s: float = 30.0
    enable_cors: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    prometheus_path: str | None = None
    health_route: str | None = None
    predict_route: str | None = None


class _BodyTooLarge(Exception):
    pass


class RestApp:
    """ASGI application serving TF Serving's REST API."""

    def __init__(
        self, manager: ModelManager, runner: InferenceRunner, metrics: Metrics,
        settings: RestSettings,
    ) -> None:
        self._manager = manager
        self._runner = runner
        self._metrics = metrics
        self._settings = settings
        self._extra_headers = _CORS_HEADERS if settings.enable_cors else []
        self._routes: dict[str, Callable[[str, Scope, Receive, Send], Awaitable[None]]] = {
            "/readyz": self._readiness, "/ping": self._readiness, "/invocations": self._invoke,
        }
        if settings.health_route:
            self._routes[settings.health_route] = self._readiness
        if settings.predict_route:
            self._routes[settings.predict_route] = self._invoke
        self.fast_headers = b"content-type: application/json\r\n" + b"".join(
            b"%b: %b\r\n" % header for header in self._extra_headers
        )
        self._fast_cache: dict[bytes, Callable[[bytes], Awaitable[tuple[int, bytes]]] | None] = {}

    def fast_route(
        self, method: str, raw_path: bytes, content_length: int
    ) -> Callable[[bytes], Awaitable[tuple[int, bytes]]] | None:
        """The direct handler for a model call (``body -> (status, body)``), or None.

        Only ``POST`` to a well-formed ``/v1/models/...:<verb>`` path with a body within the
        size limit qualifies; everything else (errors included) goes through the ASGI path.
        Resolved paths are cached (up to ``_FAST_CACHE_SIZE`` of them).
        """
        if method != "POST" or content_length > self._settings.max_body_bytes:
            return None
        try:
            return self._fast_cache[raw_path]
        except KeyError:
            pass
        handler = None
        match = _POST.fullmatch(raw_path.decode("latin-1"))
        if match is not None and match.group(4) in _VERBS:
            try:
                target = self._target(match)
            except ServingError:
                target = None
            if target is not None:
                handler = functools.partial(
                    self._call, match.group(4), unquote(match.group(1)), target
                )
        if len(self._fast_cache) < _FAST_CACHE_SIZE:
            self._fast_cache[raw_path] = handler
        return handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path = scope.get("raw_path") or scope["path"].encode()
        path_text = path.decode("latin-1")
        if _V1.fullmatch(path_text):
            await self._v1(method, path_text, scope, receive, send)
        elif path_text == "/healthz":
            await self._respond(send, 200, b'{"status": "ok"}\n')
        elif path_text in self._routes:
            await self._routes[path_text](method, scope, receive, send)
        elif self._settings.prometheus_path and path_text.startswith(
            self._settings.prometheus_path
        ):
            await self._prometheus(path_text, send)
        else:
            page = _NOT_FOUND_PAGE.format(path=path_text).encode()
            await self._respond(send, 404, page, b"text/html")

    async def _readiness(self, _method: str, _scope: Scope, _receive: Receive, send: Send) -> None:
        ready = self._manager.is_ready()
        await self._respond(
            send, 200 if ready else 503,
            b'{"status": "ready"}\n' if ready else rest_codec.encode_error(
                "Not every configured model has an available version"
            ),
        )

    async def _invoke(self, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A predict request to the default version of the served (or header-named) model."""
        if method != "POST":
            body = rest_codec.encode_error(f"Method not allowed: {method} {scope['path']}")
            await self._respond(send, 405, body)
            return
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), _JSON)
        if content_type.split(b";")[0].strip().lower() != _JSON:
            unsupported = content_type.decode("latin-1")
            message = f"Unsupported content type {unsupported}: send application/json"
            await self._respond(send, 415, rest_codec.encode_error(message))
            return
        try:
            body = await self._read_body(scope, receive)
        except _BodyTooLarge as exc:
            await self._too_large(send, exc.args[0])
            return
        if body is None:
            return
        try:
            name = self._invocation_model(scope)
        except ServingError as error:
            await self._error(send, error)
            return
        status, response = await self._call("predict", name, (name, None, None), body)
        await self._respond(send, status, response)

    def _invocation_model(self, scope: Scope) -> str:
        for key, value in scope["headers"]:
            if key == _CUSTOM_ATTRIBUTES:
                for attribute in value.decode("latin-1").split(","):
                    name, _, model = attribute.strip().partition("=")
                    if name == "tfs-model-name" and model.strip():
                        return model.strip()
        names = self._manager.model_names()
        if len(names) == 1:
            return names[0]
        if not names:
            raise not_found("No model is being served")
        raise invalid_argument(
            f"Several models are served ({', '.join(sorted(names))}): name one with the header "
            "X-Amzn-SageMaker-Custom-Attributes: tfs-model-name=<name>"
        )

    async def _too_large(self, send: Send, size: int) -> None:
        limit = self._settings.max_body_bytes
        message = f"Request body of {size} bytes exceeds the limit of {limit} bytes"
        await self._respond(send, 413, rest_codec.encode_error(message))

    async def _prometheus(self, path: str, send: Send) -> None:
        expected = self._settings.prometheus_path
        if path != expected:
            body = rest_codec.encode_error(f"Unexpected path: {path}. Should be {expected}")
            await self._respond(send, 400, body)
            return
        await self._respond(send, 200, self._metrics.render().encode(), b"text/plain")

    async def _respond(
        self, send: Send, status: int, body: bytes, content_type: bytes = _JSON
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        headers.extend(self._extra_headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Send, error: ServingError) -> None:
        await self._respond(send, http_status(error.code), rest_codec.encode_error(error.message))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self._settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise _BodyTooLarge(int(value))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _BodyTooLarge(size)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _malformed(self, send: Send, method: str, path: str) -> None:
        await self._error(send, invalid_argument(f"Malformed request: {method} {path}"))

    async def _v1(
        self, method: str, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if method == "OPTIONS":
            origin = next((v for k, v in scope["headers"] if k == b"origin"), b"")
            if _ORIGIN.match(origin.decode("latin-1")):
                await self._respond(send, 200, b"")
            else:
                await self._error(send, invalid_argument(
                    "Origin header is missing in CORS preflight"))
            return
        if method == "POST":
            match = _POST.fullmatch(path)
            if match is None or match.group(4) not in _VERBS:
                await self._malformed(send, method, path)
                return
            try:
                body = await self._read_body(scope, receive)
            except _BodyTooLarge as exc:
                await self._too_large(send, exc.args[0])
                return
            if body is None:
                return
            await self._model_call(send, match, body)
        elif method == "GET":
            match = _GET.fullmatch(path)
            if match is None:
                await self._malformed(send, method, path)
                return
            await self._model_query(send, match)
        else:
            await self._malformed(send, method, path)

    @staticmethod
    def _target(match: re.Match[str]) -> tuple[str, int | None, str | None]:
        name = unquote(match.group(1))
        version_text, label = match.group(2), match.group(3)
        version = None
        if version_text is not None:
            version = int(version_text)
            if version > _INT64_MAX:
                raise invalid_argument(f"Failed to convert version: {version_text} to numeric.")
        return name, version, unquote(label) if label is not None else None

    async def _model_call(self, send: Send, match: re.Match[str], body: bytes) -> None:
        verb = match.group(4)
        name = unquote(match.group(1))
        try:
            target = self._target(match)
        except ServingError as error:
            self._metrics.record_request(name, verb, "REST", error.code, 0.0)
            await self._error(send, error)
            return
        status, response = await self._call(verb, name, target, body)
        await self._respond(send, status, response)

    async def _call(
        self, verb: str, name: str, target: tuple[str, int | None, str | None], body: bytes
    ) -> tuple[int, bytes]:
        """Runs a predict/classify/regress call; returns the HTTP status and the JSON body."""
        started = time.perf_counter()
        status = "OK"
        try:
            if verb == "predict":
                response = await self._predict(target, body)
            else:
                response = await self._classify_or_regress(verb, target, body)
        except Exception as exc:  # every failure becomes a JSON error response
            error = as_serving_error(exc)
            status = error.code
            return http_status(error.code), rest_codec.encode_error(error.message)
        finally:
            self._metrics.record_request(
                name, verb, "REST", status, (time.perf_counter() - started) * 1e6
            )
        return 200, response

    async def _predict(self, target: tuple[str, int | None, str | None], body: bytes) -> bytes:
        # Bodies from OFFLOAD_BYTES up are decoded and their responses encoded on a worker
        # thread, so one large request never stalls the event loop (/healthz, small requests).
        offload = len(body) >= OFFLOAD_BYTES
        request = await _run(offload, _parse, rest_codec.decode_predict_request, body)
        with self._manager.acquire(*target) as handle:
            signature = methods.predict_signature_rest(handle.servable, request.signature_name)
            dtypes = {alias: dtype for alias, (dtype, _) in signature.inputs.items()}
            inputs = await _run(
                offload, _parse, rest_codec.predict_inputs_to_tensors, request, dtypes
            )
            outputs = await self._runner.run_async(
                handle, signature, inputs, None, self._settings.timeout_s
            )
        return await _run(
            offload or _output_size(outputs) >= OFFLOAD_VALUES,
            rest_codec.encode_predict_response, outputs, request.row_format,
        )

    async def _classify_or_regress(
        self, verb: str, target: tuple[str, int | None, str | None], body: bytes
    ) -> bytes:
        request = _parse(rest_codec.parse_example_request, body, verb)
        with self._manager.acquire(*target) as handle:
            pick = methods.classify_signature if verb == "classify" else methods.regress_signature
            signature = pick(handle.servable, request.signature_name)
            examples = methods.merge_context(request.examples, request.context)
            outputs = await self._runner.run_async(
                handle, signature, {methods.CLASSIFY_INPUTS: methods.examples_tensor(examples)},
                None, self._settings.timeout_s,
            )
        if verb == "classify":
            classes, scores = methods.check_classification_outputs(outputs, len(examples))
            return rest_codec.encode_classify_response(classes, scores)
        return rest_codec.encode_regress_response(
            methods.check_regression_outputs(outputs, len(examples))
        )

    async def _model_query(self, send: Send, match: re.Match[str]) -> None:
        started = time.perf_counter()
        status = "OK"
        name = unquote(match.group(1)) if match.group(1) else ""
        try:
            if not name:
                raise invalid_argument("Missing model name in request.")
            target = self._target(match)
            metadata = bool(match.group(4))
            response = self._metadata(target) if metadata else self._status(name, target[1])
        except Exception as exc:  # every failure becomes a JSON error response
            error = as_serving_error(exc)
            status = error.code
            await self._error(send, error)
        else:
            await self._respond(send, 200, response)
        finally:
            if name:
                self._metrics.record_request(
                    name, "", "REST", status, (time.perf_counter() - started) * 1e6
                )

    def _status(self, name: str, version: int | None) -> bytes:
        return rest_codec.encode_model_status([
            (status.version, status.state, status.error_code, status.error_message)
            for status in self._manager.status(name, version)
        ])

    def _metadata(self, target: tuple[str, int | None, str | None]) -> bytes:
        with self._manager.acquire(*target) as handle:
            return rest_codec.encode_model_metadata(
                handle.model_name, handle.version, handle.servable.signature_defs
            )


async def _run(offload: bool, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``: on a worker thread when ``offload``, else right here."""
    if offload:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)
    return function(*args)


def _output_size(outputs: dict[str, Any]) -> int:
    return sum(array.size for array in outputs.values())


def _parse(parse: Callable[..., Any], *args: Any) -> Any:
    """Runs a request parser; anything but a coded error it raises becomes INVALID_ARGUMENT."""
    try:
        return parse(*args)
    except ServingError:
        raise
    except Exception as exc:  # malformed input must never become a 5xx
        error = as_serving_error(exc)
        if error.code == "INTERNAL":
            raise invalid_argument(f"Malformed request body: {exc}") from None
        raise error from None


