"""Bounded resources under floods (issue 11, items 4-8), against the real server process.

Each flood test prints the server's resident memory before and after (``rss: ...``) and
asserts a bound on its growth; the limits themselves are asserted through the replies.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.runtime.conftest import HALF_PLUS_TWO, ServerProcess, serving

MODEL = "half_plus_two"
PREDICT = f"/v1/models/{MODEL}:predict"
BODY = b'{"instances": [[1.0]]}'


def rss_mb(server: ServerProcess) -> float:
    """The server's resident set size in MiB."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Rss:
    """Records RSS around a flood and prints it."""

    def __init__(self, server: ServerProcess, what: str) -> None:
        self.server, self.what = server, what
        self.before = self.after = 0.0

    def __enter__(self) -> Rss:
        self.before = rss_mb(self.server)
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.5)
        self.after = rss_mb(self.server)
        print(f"rss: {self.what}: {self.before:.0f} -> {self.after:.0f} MiB")

    @property
    def growth(self) -> float:
        return self.after - self.before


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=10)
    return sock


def read_reply(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def predict_ok(server: ServerProcess) -> bool:
    reply = httpx.post(server.rest_url + PREDICT, content=BODY, timeout=10.0)
    return reply.status_code == 200 and reply.json() == {"predictions": [[2.5]]}


@pytest.fixture(scope="module")
def server(log_dir: Path) -> Iterator[ServerProcess]:
    with serving(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        "--rest_api_header_timeout_in_ms=1000",
        "--rest_api_body_timeout_in_ms=1000",
        "--rest_api_max_pipelined_requests=8",
        "--grpc_max_tensor_bytes=1000000",
        log_dir=log_dir,
    ) as running:
        yield running


# ---- item 4: header count and size -------------------------------------------------------------


def test_too_many_headers_get_431(server: ServerProcess) -> None:
    headers = {f"x-h{i}": "v" for i in range(150)}
    reply = httpx.post(server.rest_url + PREDICT, content=BODY, headers=headers, timeout=10)
    assert reply.status_code == 431
    few = {f"x-h{i}": "v" for i in range(50)}
    assert httpx.post(server.rest_url + PREDICT, content=BODY, headers=few).status_code == 200


def test_oversized_header_gets_431(server: ServerProcess) -> None:
    reply = httpx.post(
        server.rest_url + PREDICT, content=BODY, headers={"x-big": "a" * 70_000}, timeout=10
    )
    assert reply.status_code == 431
    ok = httpx.post(server.rest_url + PREDICT, content=BODY, headers={"x-big": "a" * 30_000})
    assert ok.status_code == 200


def test_streamed_headers_flood_is_bounded(server: ServerProcess) -> None:
    """Four connections stream header lines as fast as they can (the issue's 0.9 -> 6 GB)."""
    line = b"x-flood: " + b"a" * 1000 + b"\r\n"
    block = line * 64
    replies: list[bytes] = []

    def flood() -> None:
        sock = connect(server)
        sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nhost: x\r\n")
        deadline = time.monotonic() + 3.0
        try:
            while time.monotonic() < deadline:
                sock.sendall(block)
        except OSError:
            pass  # the server answered 431 and closed
        replies.append(read_reply(sock))
        sock.close()

    with Rss(server, "4 connections streaming headers for 3 s") as rss:
        threads = [threading.Thread(target=flood) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(replies) == 4
    assert all(reply.startswith(b"HTTP/1.1 431 ") for reply in replies), replies
    assert rss.growth < 50
    assert predict_ok(server)


# ---- item 5: timeouts and the connection cap ----------------------------------------------------


def test_slow_head_gets_408(server: ServerProcess) -> None:
    sock = connect(server)
    sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nhost: x\r\n")
    started = time.monotonic()
    reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert time.monotonic() - started < 5


def test_partial_bodies_get_408_and_release_their_connections(server: ServerProcess) -> None:
    head = b"POST %b HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{" % PREDICT.encode()
    with Rss(server, "300 connections with partial bodies") as rss:
        socks = []
        for _ in range(300):
            sock = connect(server)
            sock.sendall(head)
            socks.append(sock)
        started = time.monotonic()
        replies = [read_reply(sock) for sock in socks]
        for sock in socks:
            sock.close()
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[:3]
    assert time.monotonic() - started < 10
    assert rss.growth < 50
    assert predict_ok(server)


def test_connection_cap_answers_503(log_dir: Path) -> None:
    with serving(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        "--rest_api_max_connections=20",
        log_dir=log_dir,
    ) as capped:
        held = [connect(capped) for _ in range(20)]
        try:
            time.sleep(0.3)
            extra = connect(capped)
            assert read_reply(extra).startswith(b"HTTP/1.1 503 ")
            extra.close()
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        assert predict_ok(capped)


# ---- item 6: pipelining without reading ---------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    sock = connect(server)
    request = b"POST %b HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (
        PREDICT.encode(),
        len(BODY),
        BODY,
    )
    last = request.replace(b"host: x", b"host: x\r\nconnection: close")
    sock.sendall(request * 49 + last)
    reply = read_reply(sock)
    sock.close()
    assert reply.count(b"HTTP/1.1 200 ") == 50


def test_pipelining_without_reading_is_bounded(server: ServerProcess) -> None:
    request = b"POST %b HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (
        PREDICT.encode(),
        len(BODY),
        BODY,
    )
    block = request * 1000
    sent = 0
    with Rss(server, "pipelining 4 s without reading") as rss:
        sock = connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.5)
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):  # the server stopped reading: backpressure
                sent += sock.send(block)
        during = rss_mb(server)
        sock.close()
    print(f"pipelining: {sent / 1e6:.1f} MB sent; rss while held {during:.0f} MiB")
    assert sent < 50e6, "the server kept reading while its answers were not read"
    assert during - rss.before < 50
    assert predict_ok(server)


# ---- item 7: echoed fragments -------------------------------------------------------------------


def test_nested_array_error_echo_is_capped(server: ServerProcess) -> None:
    depth = 300
    inner = "[" + ",".join(["1"] * 150_000) + "]"
    body = ('{"instances": 1, "inputs": ' + "[" * depth + inner + "]" * depth + "}").encode()
    with Rss(server, f"{len(body) // 1024} KB nested-array error echo") as rss:
        reply = httpx.post(server.rest_url + PREDICT, content=body, timeout=60)
    assert reply.status_code == 400
    message = reply.json()["error"]
    assert message.startswith('JSON Value: {\n    "instances": 1,\n    "inputs": [\n')
    assert "...TRUNCATED Not formatted correctly expecting only one of" in message
    assert len(reply.content) < 4096
    assert rss.growth < 100


# ---- item 8: gRPC tensors larger than their values ---------------------------------------------


def _predict_with(server: ServerProcess, tensor: tensor_pb2.TensorProto) -> grpc.RpcError | None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(tensor)
        try:
            stub.Predict(request, 60)
        except grpc.RpcError as exc:
            return exc
    return None


def _shape_only(*dims: int) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in dims]
        ),
    )


def test_grpc_giant_shape_without_values_is_invalid_argument(server: ServerProcess) -> None:
    with Rss(server, "gRPC shape [33554432, 1] and 10^12 without values") as rss:
        big = _predict_with(server, _shape_only(33554432, 1))
        huge = _predict_with(server, _shape_only(10**12))
    for error in (big, huge):
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--grpc_max_tensor_bytes" in error.details()
    assert rss.growth < 50
    # A tensor carrying all its values is accepted above the limit (its size is the message's).
    full = tf.make_tensor_proto(np.ones((300_000, 1), dtype=np.float32))
    assert _predict_with(server, full) is None
