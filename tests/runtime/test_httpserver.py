"""The lean HTTP/1.1 server (cloudserve_runtime.httpserver) over raw sockets, with a toy app."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvloop

from cloudserve_runtime.httpserver import HttpServer

LIMIT = 1000


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the body; answers 413 from Content-Length alone when it is over LIMIT."""
    length = next((int(v) for k, v in scope["headers"] if k == b"content-length"), 0)
    if length > LIMIT:
        body = b"too large"
        status = 413
    else:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"%s %s " % (scope["method"].encode(), scope["raw_path"]) + b"".join(chunks)
        status = 200
    if scope["path"] == "/slow":
        await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


class EchoFastRoutes:
    """Fast routes for POST /fast... (echo with a "fast " prefix) and /fast-error (raises)."""

    fast_headers = b"content-type: text/plain\r\n"

    def fast_route(self, method: str, raw_path: bytes, content_length: int) -> Any:
        if method != "POST" or not raw_path.startswith(b"/fast") or content_length > LIMIT:
            return None

        async def handler(body: bytes) -> tuple[int, bytes]:
            if raw_path == b"/fast-error":
                raise RuntimeError("boom")
            if raw_path == b"/fast-slow":
                await asyncio.sleep(0.3)
            return 201, b"fast " + raw_path + b" " + body

        return handler


class Running:
    """An HttpServer on its own uvloop thread (with :class:`EchoFastRoutes` when ``fast``)."""

    def __init__(self, fast: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.loop = uvloop.new_event_loop()
        self.server = HttpServer(echo_app, self.loop, EchoFastRoutes() if fast else None)
        self.loop.run_until_complete(self.server.start([self.sock]))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def shutdown(self, grace_s: float = 5.0) -> None:
        asyncio.run_coroutine_threadsafe(self.server.shutdown(grace_s), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture()
def server() -> Iterator[Running]:
    running = Running()
    yield running
    running.shutdown()


@pytest.fixture()
def fast_server() -> Iterator[Running]:
    running = Running(fast=True)
    yield running
    running.shutdown()


def connect(server: Running) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


Response = tuple[bytes, dict[bytes, bytes], bytes]


def read_responses(sock: socket.socket, count: int) -> list[Response]:
    """Reads ``count`` Content-Length responses: (status line, headers, body)."""
    data = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        length = int(headers[b"content-length"])
        while len(data) < length:
            data += sock.recv(65536)
        out.append((status, headers, data[:length]))
        data = data[length:]
    return out


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_and_pipelining_in_order(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
            b"GET /c%20d?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [body for _, _, body in read_responses(sock, 3)]
        assert bodies == [b"POST /slow a", b"POST /b b", b"GET /c%20d "]


def test_chunked_request_body(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        [(status, _, body)] = read_responses(sock, 1)
        assert status == b"HTTP/1.1 200 OK" and body == b"POST /x abcde"


def test_expect_100_continue(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hi")
        [(_, _, body)] = read_responses(sock, 1)
        assert body == b"POST /x hi"


def test_unread_large_body_is_discarded_and_connection_kept(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n")
        sock.sendall(b"z" * 300000 + b"POST /y HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nk")
        (status, _, _), (_, _, body) = read_responses(sock, 2)
        assert status.startswith(b"HTTP/1.1 413") and body == b"POST /y k"


def test_expect_100_with_early_answer_closes(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        [(status, headers, _)] = read_responses(sock, 1)
        assert status.startswith(b"HTTP/1.1 413") and headers[b"connection"] == b"close"
        assert closed(sock)


def test_http_10_closes_and_connection_close(server: Running) -> None:
    for request in (b"GET /a HTTP/1.0\r\n\r\n", b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"):
        with connect(server) as sock:
            sock.sendall(request)
            [(_, headers, body)] = read_responses(sock, 1)
            assert headers[b"connection"] == b"close" and body == b"GET /a "
            assert closed(sock)


def test_malformed_request_gets_400(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        [(status, _, _)] = read_responses(sock, 1)
        assert status.startswith(b"HTTP/1.1 400")
        assert closed(sock)


def test_shutdown_finishes_in_flight_then_closes() -> None:
    running = Running()
    with connect(running) as busy, connect(running) as idle:
        idle.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        read_responses(idle, 1)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        threading.Timer(0.1, running.shutdown).start()
        [(status, headers, body)] = read_responses(busy, 1)
        assert status == b"HTTP/1.1 200 OK" and body == b"GET /slow "
        assert headers[b"connection"] == b"close"
        assert closed(busy) and closed(idle)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=1).close()


def test_upgrade_request_answered_as_http_11_then_closed(server: Running) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        [(status, headers, body)] = read_responses(sock, 1)
        assert status == b"HTTP/1.1 200 OK" and body == b"GET /u "
        assert headers[b"connection"] == b"close"
        assert closed(sock)


def test_fast_route_pipelined_in_order_with_asgi_requests(fast_server: Running) -> None:
    with connect(fast_server) as sock:
        sock.sendall(
            b"POST /fast-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
            b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
            b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        responses = read_responses(sock, 4)
        assert [body for _, _, body in responses] == [
            b"fast /fast-slow a", b"POST /b b", b"fast /fast xyz", b"fast /fast ",
        ]
        status, headers, _ = responses[0]
        assert status == b"HTTP/1.1 201 Created"
        assert headers[b"content-type"] == b"text/plain" and b"date" in headers
        assert b"connection" not in headers


def test_fast_route_body_in_pieces(fast_server: Running) -> None:
    with connect(fast_server) as sock:
        sock.sendall(b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        threading.Event().wait(0.1)
        sock.sendall(b"def")
        [(_, _, body)] = read_responses(sock, 1)
        assert body == b"fast /fast abcdef"


def test_fast_route_declined_for_chunked_expect_and_large_bodies(fast_server: Running) -> None:
    with connect(fast_server) as sock:
        sock.sendall(b"POST /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n")
        assert read_responses(sock, 1)[0][2] == b"POST /fast abc"
        sock.sendall(b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hi")
        assert read_responses(sock, 1)[0][2] == b"POST /fast hi"
        sock.sendall(b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                     + b"z" * 5000)
        assert read_responses(sock, 1)[0][0].startswith(b"HTTP/1.1 413")


def test_fast_route_http_10_and_connection_close(fast_server: Running) -> None:
    for request, connection in (
        (b"POST /fast HTTP/1.0\r\nContent-Length: 1\r\n\r\nq", b"close"),
        (b"POST /fast HTTP/1.1\r\nConnection: close\r\nContent-Length: 1\r\n\r\nq", b"close"),
    ):
        with connect(fast_server) as sock:
            sock.sendall(request)
            [(_, headers, body)] = read_responses(sock, 1)
            assert headers[b"connection"] == connection and body == b"fast /fast q"
            assert closed(sock)
    with connect(fast_server) as sock:
        sock.sendall(b"POST /fast HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n"
                     b"\r\nq")
        [(_, headers, _)] = read_responses(sock, 1)
        assert headers[b"connection"] == b"keep-alive"
        sock.sendall(b"POST /fast HTTP/1.0\r\nContent-Length: 1\r\n\r\nr")
        assert read_responses(sock, 1)[0][2] == b"fast /fast r"


def test_fast_route_handler_exception_gets_500_and_closes(fast_server: Running) -> None:
    with connect(fast_server) as sock:
        sock.sendall(b"POST /fast-error HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nq")
        [(status, headers, _)] = read_responses(sock, 1)
        assert status.startswith(b"HTTP/1.1 500") and headers[b"connection"] == b"close"
        assert closed(sock)


def test_fast_route_during_shutdown_answers_then_closes() -> None:
    running = Running(fast=True)
    with connect(running) as busy:
        busy.sendall(b"POST /fast-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nq")
        threading.Timer(0.1, running.shutdown).start()
        [(status, headers, body)] = read_responses(busy, 1)
        assert status == b"HTTP/1.1 201 Created" and body == b"fast /fast-slow q"
        assert headers[b"connection"] == b"close"
        assert closed(busy)
