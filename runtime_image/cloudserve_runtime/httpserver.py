"""A lean HTTP/1.1 server for one ASGI application, on asyncio (uvloop) and httptools.

It replaces uvicorn on the REST hot path: one :class:`asyncio.Protocol` per connection feeds
``httptools.HttpRequestParser`` and calls the ASGI app with a plain scope and cheap
``receive``/``send`` callables; the status line, headers and body of a response go out in one
write. Behaviour:

* Keep-alive per ``parser.should_keep_alive()`` (HTTP/1.0 closes unless it asks for
  keep-alive; ``Connection: close`` closes after the response). Idle connections close after
  the limits' ``idle_timeout_s``.
* Content-Length and chunked request bodies (the parser de-chunks); pipelined requests are
  parsed as they arrive and answered one at a time, in order.
* ``Expect: 100-continue`` gets ``100 Continue`` when the app first asks for the body; if the app
  answers without reading it, the connection closes after the response.
* A body the app did not read is discarded as it arrives (the app decides, e.g. a 413 from the
  Content-Length alone), so it is never buffered; reading pauses while more than
  :data:`_HIGH_WATER` bytes wait for the app.
* Responses without Content-Length are sent chunked (or with a computed length when the app
  sends the whole body at once); ``HEAD`` responses carry no body.
* ``Upgrade`` requests (e.g. ``h2c``) are answered as plain HTTP/1.1, then the connection
  closes. A malformed request gets 400 and the connection closes; an app exception before the
  response started gets 500 and the connection closes.
* With a :class:`FastRoutes` object, requests it claims from their head (method, raw path,
  Content-Length) skip the ASGI shim: once the whole body has arrived it goes to the route's
  handler, whose ``(status, body)`` is written with the object's constant headers. Everything
  else (other paths, chunked, ``Expect: 100-continue`` or ``Upgrade`` requests) takes the ASGI
  path.
* Limits (:class:`cloudserve_runtime.limits.ServerLimits`): more header lines or bytes than
  allowed get 431; a head or body that does not arrive in time gets 408; connections beyond the
  cap get 503; a client that pipelines without reading its responses is not read from while
  ``max_pipelined`` requests wait or the transport's write buffer is full. Closed connections
  drop their parser and queued requests at once (no reference cycle waits for the collector).
* With an ``authorize`` callable, a request whose headers it rejects never takes a fast route:
  the app (wrapped by :mod:`cloudserve_runtime.access`) answers it.
* :meth:`HttpServer.shutdown` stops accepting, closes idle connections, lets in-flight requests
  finish (their connections close after the response) and force-closes what is left after the
  grace period.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from cloudserve_runtime.limits import ServerLimits

__all__ = ["FastHandler", "FastRoutes", "HttpServer"]

log = logging.getLogger(__name__)

_HIGH_WATER = 1 << 20
_SWEEP_S = 1.0
_PIPELINE_SLICE = 4096
"""While requests are queued, input is parsed this many bytes at a time, so that reading can
stop between requests (see ``_Connection._feed``)."""

App = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
     Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]

FastHandler = Callable[[bytes], Awaitable[tuple[int, bytes]]]
"""Takes a whole request body; returns the response status and body."""


class FastRoutes(Protocol):
    """Requests answered without the ASGI shim (see the module docstring)."""

    fast_headers: bytes
    """Header lines (each ending in CRLF) sent with every fast response, besides
    Content-Length, Date and Connection."""

    def fast_route(self, method: str, raw_path: bytes, content_length: int) -> FastHandler | None:
        """The handler for a request with a Content-Length body, or None for the ASGI path."""


_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TOO_MANY_CONNECTIONS = b"Too many connections"
_DISCONNECT = {"type": "http.disconnect"}
_EMPTY_BODY = {"type": "http.request", "body": b"", "more_body": False}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def _plain_response(status: int, text: bytes) -> bytes:
    return b"".join((
        _status_line(status), b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(text), text,
    ))


class _Request:
    """One parsed request: its ASGI scope (None for a fast route's request), its body as it
    arrives, and its response state."""

    __slots__ = (
        "scope", "http_10", "keep_alive", "head", "chunks", "buffered", "complete",
        "expect_continue", "body_wanted", "waiter", "started", "head_sent", "finished", "status",
        "headers", "chunked", "fast",
    )

    def __init__(
        self, scope: dict[str, Any] | None, http_version: str, method: str, keep_alive: bool,
        expect_continue: bool, fast: FastHandler | None = None,
    ) -> None:
        self.scope = scope
        self.http_10 = http_version == "1.0"
        self.keep_alive = keep_alive
        self.head = method == "HEAD"
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.expect_continue = expect_continue
        self.body_wanted = True
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.head_sent = False
        self.finished = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunked = False
        self.fast = fast

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class _LimitExceeded(Exception):
    """Raised from a parser callback to stop parsing a request over a limit."""


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and runs the app for each, in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._head_bytes = 0
        self._head_started = 0.0
        self._header_count = 0
        self._head_parsed = 0
        self._body_started = 0.0
        self._backlog = b""
        self._feeding = False
        self._loop = server.loop
        self._app = server.app
        self._fast_routes = server.fast_routes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._length: bytes | None = None
        self._expect = False
        self._parsing: _Request | None = None
        self._pending: deque[_Request] = deque()
        self._current: _Request | None = None
        self._closed = False
        self._reading = True
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.idle_since = time.monotonic()
        self._base_scope: dict[str, Any] = {}

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if len(self._server.connections) >= self._limits.max_connections:
            self._closed = True
            transport.write(_plain_response(503, _TOO_MANY_CONNECTIONS))  # type: ignore[attr-defined]
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self._base_scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "scheme": "http", "root_path": "",
            "server": tuple(local[:2]) if isinstance(local, tuple) else None,
            "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        }
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        for request in (self._current, self._parsing, *self._pending):
            if request is not None:
                request.wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        # Break the parser <-> protocol cycle and drop queued input now, not at the next full
        # collection (the server freezes the collector's old generation after start-up).
        self._parser = None  # type: ignore[assignment]
        self._pending.clear()
        self._backlog = b""
        self._headers = []

    def data_received(self, data: bytes) -> None:
        if self._backlog:
            self._backlog += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parses ``data``; while requests are queued, a slice at a time, keeping the rest in
        the backlog once reading should pause (see :meth:`_update_reading`)."""
        self._feeding = True
        try:
            view = memoryview(data)
            while view and not self._closed:
                if not self._can_read():
                    self._backlog = bytes(view)
                    return
                step = len(view) if not self._pending else _PIPELINE_SLICE
                piece, view = view[:step], view[step:]
                if self._parsing is None:  # in a request head
                    if not self._head_bytes:
                        self._head_started = time.monotonic()
                    self._head_bytes += len(piece)
                self._parse(piece)
                if self._parsing is None and self._head_bytes > self._limits.max_header_bytes:
                    self._reject(431, b"Request Header Fields Too Large")
        finally:
            self._feeding = False

    def _parse(self, data: memoryview) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # answered as plain HTTP/1.1; the connection closes after that response
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _LimitExceeded):
                self._reject(431, b"Request Header Fields Too Large")
            else:
                raise
        except httptools.HttpParserError:
            self._reject(400, b"Invalid HTTP request")

    def _can_read(self) -> bool:
        parsing = self._parsing
        return not (
            self._write_paused or len(self._pending) >= self._limits.max_pipelined
            or (parsing is not None and parsing.body_wanted and parsing.buffered > _HIGH_WATER)
        )

    def _update_reading(self) -> None:
        """Pauses or resumes reading from the socket per :meth:`_can_read`."""
        if self._closed:
            return
        if not self._can_read():
            if self._reading:
                self._reading = False
                self._transport.pause_reading()
            return
        if not self._reading:
            self._reading = True
            self._body_started = self._head_started = time.monotonic()
            self._transport.resume_reading()
        if self._backlog and not self._feeding:
            backlog, self._backlog = self._backlog, b""
            self._feed(backlog)

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None
        self._update_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._length = None
        self._expect = False

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self._limits.max_header_bytes:
            raise _LimitExceeded
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_parsed += len(name) + len(value) + 4
        if (
            self._header_count > self._limits.max_header_count
            or self._head_parsed > self._limits.max_header_bytes
        ):
            raise _LimitExceeded
        name = name.lower()
        self._headers.append((name, value))
        if name == b"content-length":
            if self._length is None:
                self._length = value
        elif name == b"expect" and value.lower() == b"100-continue":
            self._expect = True

    def on_headers_complete(self) -> None:
        self._head_bytes = self._header_count = self._head_parsed = 0
        self._body_started = time.monotonic()
        parser = self._parser
        parsed = httptools.parse_url(self._url)
        raw_path = parsed.path
        http_version = parser.get_http_version()
        method = parser.get_method().decode("ascii")
        expect = self._expect
        upgrade = parser.should_upgrade()
        keep_alive = parser.should_keep_alive() and not upgrade and not self._server.stopping
        fast = None
        length = self._length
        if (
            self._fast_routes is not None and not expect and not upgrade and length is not None
            and length.isdigit()
        ):
            fast = self._fast_routes.fast_route(method, raw_path, int(length))
            authorize = self._server.authorize
            if fast is not None and authorize is not None and not authorize(self._headers):
                fast = None  # the app answers 401
        scope = None
        if fast is None:
            scope = dict(self._base_scope)
            scope["http_version"] = http_version
            scope["method"] = method
            scope["raw_path"] = raw_path
            scope["path"] = unquote(raw_path.decode("latin-1")) if b"%" in raw_path else (
                raw_path.decode("latin-1")
            )
            scope["query_string"] = parsed.query or b""
            scope["headers"] = self._headers
        request = _Request(scope, http_version, method, keep_alive, expect, fast)
        self._parsing = request
        if self._current is None:
            self._start(request)
        else:
            self._pending.append(request)
            if len(self._pending) >= self._limits.max_pipelined:
                self._update_reading()

    def on_body(self, body: bytes) -> None:
        request = self._parsing
        if request is None or not request.body_wanted:
            return
        request.chunks.append(body)
        request.buffered += len(body)
        if request.buffered > _HIGH_WATER and self._reading:
            self._update_reading()
        request.wake()

    def on_message_complete(self) -> None:
        request = self._parsing
        self._parsing = None
        if request is None:
            return
        request.complete = True
        request.expect_continue = False
        if request.finished:
            self._next()
        else:
            request.wake()

    # request cycle

    def _start(self, request: _Request) -> None:
        self._current = request
        if request.fast is not None:
            self._loop.create_task(self._run_fast(request, request.fast))
        else:
            self._loop.create_task(self._run(request))

    async def _run_fast(self, request: _Request, handler: FastHandler) -> None:
        """Reads the whole body, runs ``handler`` on it and writes its response in one go."""
        if request.complete:
            chunks = request.chunks
            body = b"".join(chunks) if len(chunks) > 1 else (chunks[0] if chunks else b"")
        else:
            parts = []
            while True:
                message = await self._receive(request)
                if message is _DISCONNECT:
                    return
                parts.append(message["body"])
                if not message["more_body"]:
                    break
            body = b"".join(parts)
        try:
            status, payload = await handler(body)
        except Exception:
            log.exception("Exception in the REST application")
            if not self._closed:
                self._transport.write(_plain_response(500, b"Internal Server Error"))
            request.keep_alive = False
            request.finished = True
            self._close()
            return
        if self._closed or request.finished:
            return
        request.started = request.head_sent = True
        if self._server.stopping:
            request.keep_alive = False
        if not request.keep_alive:
            connection = b"connection: close\r\n"
        elif request.http_10:
            connection = b"connection: keep-alive\r\n"
        else:
            connection = b""
        self._transport.write(b"%b%bcontent-length: %d\r\n%b%b\r\n%b" % (
            _status_line(status), self._server.fast_headers, len(payload),
            self._server.date_header, connection, payload,
        ))
        self._finish(request)

    async def _run(self, request: _Request) -> None:
        async def receive() -> dict[str, Any]:
            return await self._receive(request)

        async def send(message: dict[str, Any]) -> None:
            await self._send(request, message)

        try:
            await self._app(request.scope, receive, send)  # type: ignore[arg-type]
        except Exception:
            log.exception("Exception in the REST application")
            if not request.started and not self._closed:
                self._transport.write(_plain_response(500, b"Internal Server Error"))
            request.keep_alive = False
            request.finished = True
            self._close()
            return
        if not request.finished:
            if not request.started:
                await self._send(request, {"type": "http.response.start", "status": 500})
            await self._send(request, {"type": "http.response.body", "body": b""})

    async def _receive(self, request: _Request) -> dict[str, Any]:
        while True:
            if request.finished or self._closed:
                return _DISCONNECT
            if request.chunks:
                body = b"".join(request.chunks) if len(request.chunks) > 1 else request.chunks[0]
                request.chunks.clear()
                request.buffered = 0
                if not self._reading:
                    self._update_reading()
                return {"type": "http.request", "body": body, "more_body": not request.complete}
            if request.complete:
                request.body_wanted = False
                return _EMPTY_BODY
            if request.expect_continue:
                request.expect_continue = False
                self._transport.write(_CONTINUE)
            waiter = self._loop.create_future()
            request.waiter = waiter
            await waiter

    async def _send(self, request: _Request, message: dict[str, Any]) -> None:
        if self._closed or request.finished:
            return
        kind = message["type"]
        if kind == "http.response.start":
            if request.started:
                raise RuntimeError("http.response.start sent twice")
            request.started = True
            request.status = message["status"]
            request.headers = list(message.get("headers", ()))
            return
        if kind != "http.response.body" or not request.started:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not request.head_sent:
            request.head_sent = True  # the head goes out with the first body message
            self._write_head(request, len(body) if not more else None, body)
        elif request.chunked:
            if body and not request.head:
                self._transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        elif body and not request.head:
            self._transport.write(body)
        if more:
            if self._write_paused:
                await self._drained()
            return
        if request.chunked and not request.head:
            self._transport.write(b"0\r\n\r\n")
        self._finish(request)

    def _write_head(self, request: _Request, length: int | None, body: bytes) -> None:
        status = request.status
        lines = [_status_line(status)]
        has_length = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                has_length = True
            elif lowered == b"connection" and value.lower() == b"close":
                request.keep_alive = False
            lines.append(b"%b: %b\r\n" % (name, value))
        if not has_length and status >= 200 and status not in (204, 304):
            if length is not None:
                lines.append(b"content-length: %d\r\n" % length)
            else:
                request.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
        if request.expect_continue and not request.complete:
            request.keep_alive = False  # the client may never send the body we did not ask for
        if self._server.stopping:
            request.keep_alive = False
        lines.append(self._server.date_header)
        if not request.keep_alive:
            lines.append(b"connection: close\r\n")
        elif request.http_10:
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        if body and not request.head:
            if request.chunked:
                lines.append(b"%x\r\n%b\r\n" % (len(body), body))
            else:
                lines.append(body)
        self._transport.write(b"".join(lines))

    async def _drained(self) -> None:
        if self._drain is None:
            self._drain = self._loop.create_future()
        await self._drain

    def _finish(self, request: _Request) -> None:
        request.finished = True
        request.body_wanted = False
        request.chunks.clear()
        if not self._reading:
            self._update_reading()
        if not request.keep_alive:
            self._close()
        elif request.complete:
            self._next()

    def _next(self) -> None:
        """Starts the next pipelined request once the current one is answered and read."""
        self._current = None
        self.idle_since = time.monotonic()
        if self._pending:
            self._start(self._pending.popleft())
            if not self._reading or self._backlog:
                self._update_reading()
        elif self._server.stopping and self._parsing is None:
            self._close()

    def _reject(self, status: int, text: bytes) -> None:
        if self._closed:
            return
        current = self._current
        if current is None or current.finished or (
            current is self._parsing and not current.started
        ):  # e.g. a 408 for the request whose body is late
            if current is not None:
                current.finished = True
            self._transport.write(_plain_response(status, text))
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.close()

    # server control

    def is_idle(self) -> bool:
        """No request running, queued or partly received."""
        return (
            self._current is None and self._parsing is None and not self._pending
            and not self._head_bytes
        )

    def check_timeouts(self, now: float) -> None:
        """Answers 408 and closes when a request head or body is overdue (while reading)."""
        if self._closed or not self._reading:
            return
        limits = self._limits
        if self._head_bytes and now - self._head_started > limits.header_timeout_s:
            self._reject(408, b"Request Timeout: the request headers did not arrive in time")
        elif self._parsing is not None and now - self._body_started > limits.body_timeout_s:
            if self._parsing.finished:  # already answered (e.g. 413): no second response
                self._close()
            else:
                self._reject(408, b"Request Timeout: the request body did not arrive in time")

    def shutdown(self) -> None:
        """Closes the connection now if idle, else after the request in progress is answered."""
        if self.is_idle():
            self._close()

    def abort(self) -> None:
        """Closes the connection at once."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()


class HttpServer:
    """Serves one ASGI app (and optionally :class:`FastRoutes`) on already-bound listening
    sockets until :meth:`shutdown`."""

    def __init__(
        self, app: App, loop: asyncio.AbstractEventLoop | None = None,
        fast_routes: FastRoutes | None = None, limits: ServerLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        authorize: Callable[[list[tuple[bytes, bytes]]], bool] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or ServerLimits()
        self.ssl_context = ssl_context
        self.authorize = authorize
        self.fast_routes = fast_routes
        self.fast_headers = fast_routes.fast_headers if fast_routes is not None else b""
        self.loop = loop or asyncio.get_running_loop()
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.date_header = b""
        self._servers: list[asyncio.base_events.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, sockets: list[socket.socket]) -> None:
        """Starts accepting on ``sockets`` (bound and listening)."""
        self._sweep()
        for sock in sockets:
            server = await self.loop.create_server(
                lambda: _Connection(self), sock=sock, backlog=2048, ssl=self.ssl_context
            )
            self._servers.append(server)

    def _sweep(self) -> None:
        """Refreshes the Date header, closes idle keep-alive connections and answers overdue
        requests with 408 (every second)."""
        self.date_header = b"date: %b\r\n" % email.utils.formatdate(usegmt=True).encode()
        now = time.monotonic()
        cutoff = now - self.limits.idle_timeout_s
        for connection in list(self.connections):
            if connection.is_idle():
                if connection.idle_since < cutoff:
                    connection.shutdown()
            else:
                connection.check_timeouts(now)
        self._sweeper = self.loop.call_later(_SWEEP_S, self._sweep)

    async def shutdown(self, grace_s: float) -> None:
        """Stops accepting, closes idle connections, waits up to ``grace_s`` for in-flight
        requests to be answered, then closes whatever is left."""
        self.stopping = True
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.shutdown()
        deadline = self.loop.time() + grace_s
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            await server.wait_closed()
