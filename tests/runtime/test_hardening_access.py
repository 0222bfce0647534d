"""TLS, bearer tokens, the bind address and guarded reloads (issue 11, items 9-10).

Certificates are made at test time with ``cryptography``; every check goes through the real
server process over HTTPS and TLS gRPC.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import text_format
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tests.runtime.conftest import HALF_PLUS_TWO, ServerProcess, run_server

MODEL = "half_plus_two"
PREDICT = f"/v1/models/{MODEL}:predict"
TOKEN = "s3cr3t-token-for-tests"


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (PEM)."""

    ca_cert: bytes
    server_key: bytes
    server_cert: bytes
    client_key: bytes
    client_cert: bytes
    dir: Path

    def path(self, name: str, data: bytes) -> str:
        target = self.dir / name
        target.write_bytes(data)
        return str(target)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(log_dir: Path) -> Pki:
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("cloudserve test CA", ca_key, None, ca_key, ca=True)
    server = _cert("localhost", server_key, ca.subject, ca_key, server=True)
    client = _cert("client", client_key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    return Pki(
        ca.public_bytes(pem),
        _pem_key(server_key),
        server.public_bytes(pem),
        _pem_key(client_key),
        client.public_bytes(pem),
        log_dir,
    )


def ssl_config(pki: Pki, *, client_verify: bool) -> str:
    """TF Serving's SSLConfig text proto (PEM texts inline, escaped)."""

    def quoted(data: bytes) -> str:
        return '"' + data.decode().replace("\n", "\\n") + '"'

    lines = [f"server_key: {quoted(pki.server_key)}", f"server_cert: {quoted(pki.server_cert)}"]
    if client_verify:
        lines += [f"custom_ca: {quoted(pki.ca_cert)}", "client_verify: true"]
    return "\n".join(lines) + "\n"


def wait_https(server: ServerProcess, verify: ssl.SSLContext, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError, ssl.SSLError):
            url = f"https://127.0.0.1:{server.rest_port}/healthz"
            if httpx.get(url, verify=verify, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not come up:\n{server.log()}")


@contextlib.contextmanager
def tls_server(
    pki: Pki, log_dir: Path, *flags: str, client_verify: bool = False
) -> Iterator[ServerProcess]:
    config = pki.path(
        f"ssl-{client_verify}.txt", ssl_config(pki, client_verify=client_verify).encode()
    )
    server = run_server(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        f"--ssl_config_file={config}",
        *flags,
        log_dir=log_dir,
        wait=False,
    )
    try:
        context = client_context(pki, with_cert=client_verify)
        wait_https(server, context)
        yield server
    finally:
        assert server.stop() == 0, server.log()


def client_context(pki: Pki, *, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.ca_cert.decode())
    if with_cert:
        key = pki.path("client.key", pki.client_key)
        context.load_cert_chain(pki.path("client.crt", pki.client_cert), key)
    return context


def grpc_predict(
    channel: grpc.Channel, token: str | None = None, timeout: float = 20.0
) -> list[float]:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]], dtype=np.float32)))
    metadata = [("authorization", f"Bearer {token}")] if token else None
    reply = stub.Predict(request, timeout, metadata=metadata)
    return list(reply.outputs["y"].float_val)


def secure_channel(server: ServerProcess, pki: Pki, *, with_cert: bool = False) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert,
        private_key=pki.client_key if with_cert else None,
        certificate_chain=pki.client_cert if with_cert else None,
    )
    return grpc.secure_channel(server.grpc_target, credentials)


@pytest.fixture(scope="module")
def guarded(pki: Pki, log_dir: Path) -> Iterator[ServerProcess]:
    """TLS (no client certificates) and a bearer token."""
    token_file = pki.path("token", f"{TOKEN}\n".encode())
    with tls_server(pki, log_dir, f"--auth_token_file={token_file}") as server:
        yield server


def test_rest_over_tls_needs_the_token(guarded: ServerProcess, pki: Pki) -> None:
    context = client_context(pki, with_cert=False)
    url = f"https://127.0.0.1:{guarded.rest_port}"
    body = {"instances": [[1.0]]}
    with httpx.Client(base_url=url, verify=context, timeout=10) as client:
        missing = client.post(PREDICT, json=body)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "error" in missing.json()
        wrong = client.post(PREDICT, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert client.get(f"/v1/models/{MODEL}").status_code == 401  # not only predict
        good = client.post(PREDICT, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.json() == {"predictions": [[2.5]]}
        assert client.get("/healthz").status_code == 200  # probes stay open
        assert client.get("/readyz").status_code == 200
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
        httpx.post(f"http://127.0.0.1:{guarded.rest_port}{PREDICT}", json=body, timeout=5)


def test_grpc_over_tls_needs_the_token(guarded: ServerProcess, pki: Pki) -> None:
    with secure_channel(guarded, pki) as channel:
        with pytest.raises(grpc.RpcError) as info:
            grpc_predict(channel)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            grpc_predict(channel, token="nope")
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_predict(channel, token=TOKEN) == [2.5]
    with grpc.insecure_channel(guarded.grpc_target) as plain:
        with pytest.raises(grpc.RpcError) as info:
            grpc_predict(plain, token=TOKEN, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def _reload_request(text: str) -> model_management_pb2.ReloadConfigRequest:
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    return model_management_pb2.ReloadConfigRequest(config=config)


def _config(*entries: tuple[str, Path]) -> str:
    body = "".join(
        f'config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
        for name, path in entries
    )
    return f"model_config_list {{\n{body}}}\n"


def test_reload_needs_the_token(guarded: ServerProcess, pki: Pki, tmp_path: Path) -> None:
    """Unauthenticated, a reload could unload every model or serve any directory."""
    with secure_channel(guarded, pki) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.HandleReloadConfigRequest(_reload_request(_config(("other", tmp_path))), 10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_predict(channel, token=TOKEN) == [2.5]


def test_client_certificates_are_verified(pki: Pki, log_dir: Path) -> None:
    with tls_server(pki, log_dir, client_verify=True) as server:
        url = f"https://127.0.0.1:{server.rest_port}{PREDICT}"
        body = {"instances": [[1.0]]}
        good = httpx.post(url, json=body, verify=client_context(pki, with_cert=True), timeout=10)
        assert good.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.post(url, json=body, verify=client_context(pki, with_cert=False), timeout=10)
        with secure_channel(server, pki, with_cert=True) as channel:
            assert grpc_predict(channel) == [2.5]
        with secure_channel(server, pki) as channel:
            with pytest.raises(grpc.RpcError) as info:
                grpc_predict(channel, timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_bad_ssl_config_stops_start_up(log_dir: Path, pki: Pki) -> None:
    config = pki.path("bad-ssl.txt", b'server_key: "not a key"\nclient_verify: true\n')
    server = run_server(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        f"--ssl_config_file={config}",
        log_dir=log_dir,
        wait=False,
    )
    assert server.proc.wait(60) == 1
    assert "needs both server_key and server_cert" in server.log()


def test_bind_address_limits_both_servers(log_dir: Path) -> None:
    server = run_server(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        "--bind_address=127.0.0.2",
        log_dir=log_dir,
        wait=False,
    )
    try:
        deadline = time.monotonic() + 90
        url = f"http://127.0.0.2:{server.rest_port}/readyz"
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(server.log())
        with grpc.insecure_channel(f"127.0.0.2:{server.grpc_port}") as channel:
            assert grpc_predict(channel) == [2.5]
        for port in (server.rest_port, server.grpc_port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        assert server.stop() == 0


def test_blocking_reloads_never_starve_predict(log_dir: Path, tmp_path: Path) -> None:
    """Eight reloads that wait on a model that never appears, on four gRPC workers."""
    empty = tmp_path / "ghost"
    empty.mkdir()
    server = run_server(
        f"--model_name={MODEL}",
        f"--model_base_path={HALF_PLUS_TWO}",
        "--grpc_max_threads=4",
        "--reload_config_timeout_in_ms=4000",
        log_dir=log_dir,
    )
    codes: list[grpc.StatusCode] = []
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request = _reload_request(_config((MODEL, HALF_PLUS_TWO), ("ghost", empty)))

            def reload() -> None:
                try:
                    stub.HandleReloadConfigRequest(request, 60)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())

            threads = [threading.Thread(target=reload) for _ in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            started = time.monotonic()
            assert grpc_predict(channel, timeout=3) == [2.5]
            assert time.monotonic() - started < 3
            for thread in threads:
                thread.join(30)
    finally:
        assert server.stop() == 0
    assert sorted(codes, key=str) == sorted(
        [grpc.StatusCode.DEADLINE_EXCEEDED] + [grpc.StatusCode.UNAVAILABLE] * 7, key=str
    )
