"""Access control for both servers: TLS from TF Serving's SSLConfig, and bearer tokens.

Both are off by default, as in TF Serving.

* ``--ssl_config_file``: TF Serving's ``SSLConfig`` text proto (``server_key``, ``server_cert``,
  ``custom_ca``: PEM text, not paths; ``client_verify``). It secures gRPC *and* REST. With
  ``custom_ca`` client certificates signed by it are requested; with ``client_verify: true``
  they are required (a client without one fails the handshake).
* ``--auth_token_file``: a file whose content (surrounding whitespace stripped) is the token.
  REST requests must carry ``Authorization: Bearer <token>`` (else 401 with
  ``WWW-Authenticate: Bearer``); gRPC calls must carry ``authorization: Bearer <token>``
  metadata (else UNAUTHENTICATED). Liveness and readiness routes (``/healthz``, ``/readyz``,
  ``/ping`` and ``--rest_api_health_route``) stay open so probes work without the token.
  Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

__all__ = [
    "AccessError",
    "BearerAuth",
    "SslConfig",
    "grpc_interceptor",
    "read_ssl_config",
    "read_token_file",
    "rest_ssl_context",
]

UNAUTHORIZED_BODY = b'{ "error": "Missing or invalid bearer token in the Authorization header" }'
GRPC_UNAUTHENTICATED = "Missing or invalid bearer token in the authorization metadata"


class AccessError(Exception):
    """A TLS or token file that cannot be used; the message says which and why."""


def _ssl_config_class() -> type:
    """TF Serving's ``tensorflow.serving.SSLConfig`` (ssl_config.proto), which the
    tensorflow-serving-api wheel does not ship, built from its four fields."""
    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto(
        name="cloudserve/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    message = proto.message_type.add(name="SSLConfig")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name in enumerate(("server_key", "server_cert", "custom_ca"), start=1):
        message.field.add(name=name, number=number, type=field.TYPE_STRING,
                          label=field.LABEL_OPTIONAL)
    message.field.add(name="client_verify", number=4, type=field.TYPE_BOOL,
                      label=field.LABEL_OPTIONAL)
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.SSLConfig")
    return message_factory.GetMessageClass(descriptor)


@dataclass(frozen=True)
class SslConfig:
    """The parsed SSLConfig: PEM texts and whether client certificates are required."""

    server_key: str
    server_cert: str
    custom_ca: str
    client_verify: bool


def _read(path: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessError(f"Could not read --{flag} {path}: {exc}") from None


def read_ssl_config(path: str) -> SslConfig:
    """Reads and checks an SSLConfig text proto.

    Raises:
        AccessError: unreadable file, bad text proto, missing key/cert, or ``client_verify``
            without ``custom_ca``.
    """
    try:
        parsed = text_format.Parse(_read(path, "ssl_config_file"), _ssl_config_class()())
    except text_format.ParseError as exc:
        raise AccessError(f"--ssl_config_file {path} is not a valid SSLConfig: {exc}") from None
    config = SslConfig(
        parsed.server_key, parsed.server_cert, parsed.custom_ca, parsed.client_verify
    )
    if not config.server_key or not config.server_cert:
        raise AccessError(
            f"--ssl_config_file {path} needs both server_key and server_cert (PEM text)"
        )
    if config.client_verify and not config.custom_ca:
        raise AccessError(
            f"--ssl_config_file {path} sets client_verify but no custom_ca to verify "
            "client certificates against"
        )
    return config


def rest_ssl_context(config: SslConfig) -> ssl.SSLContext:
    """A server-side TLS context for the REST server from ``config``.

    Raises:
        AccessError: the key and certificate do not load (bad PEM, key does not match).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only: the PEM texts live in a private directory for the call.
    with tempfile.TemporaryDirectory(prefix="cloudserve-tls-") as scratch:
        cert_path, key_path = os.path.join(scratch, "cert.pem"), os.path.join(scratch, "key.pem")
        for path, text in ((cert_path, config.server_cert), (key_path, config.server_key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise AccessError(
                f"server_key/server_cert of the SSLConfig do not load: {exc}"
            ) from None
    if config.custom_ca:
        try:
            context.load_verify_locations(cadata=config.custom_ca)
        except ssl.SSLError as exc:
            raise AccessError(f"custom_ca of the SSLConfig does not load: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED if config.client_verify else ssl.CERT_OPTIONAL
    return context


def grpc_credentials(config: SslConfig) -> Any:
    """``grpc.ServerCredentials`` for ``config`` (client certificates as for REST)."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() if config.custom_ca else None,
        require_client_auth=config.client_verify,
    )


def read_token_file(path: str) -> str:
    """The bearer token in ``path`` (surrounding whitespace stripped).

    Raises:
        AccessError: the file cannot be read or holds no token.
    """
    token = _read(path, "auth_token_file").strip()
    if not token:
        raise AccessError(f"--auth_token_file {path} is empty")
    if any(ch.isspace() for ch in token):
        raise AccessError(f"--auth_token_file {path} holds whitespace inside the token")
    return token


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` values against one token."""

    def __init__(self, token: str) -> None:
        self._expected = b"bearer " + token.encode()

    def accepts(self, value: bytes | str | None) -> bool:
        """True when ``value`` (an Authorization header/metadata value) carries the token."""
        if value is None:
            return False
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        scheme, _, token = raw.strip().partition(b" ")
        return hmac.compare_digest(scheme.lower() + b" " + token.strip(), self._expected)

    def accepts_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """True when lower-cased raw ``headers`` hold an accepted Authorization header."""
        for name, value in headers:
            if name == b"authorization":
                return self.accepts(value)
        return False

    def wrap_asgi(
        self, app: Callable[..., Awaitable[None]], open_paths: Iterable[str]
    ) -> Callable[..., Awaitable[None]]:
        """``app`` behind the token check; ``open_paths`` answer without it."""
        open_set = frozenset(open_paths)

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if (
                scope["type"] != "http"
                or scope["path"] in open_set
                or self.accepts_headers(scope["headers"])
            ):
                await app(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="cloudserve"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": UNAUTHORIZED_BODY})

        return guarded


def grpc_interceptor(auth: BearerAuth) -> Any:
    """A ``grpc.ServerInterceptor`` that aborts calls without the token (UNAUTHENTICATED)."""
    import grpc

    def deny(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, GRPC_UNAUTHENTICATED)

    denied = grpc.unary_unary_rpc_method_handler(deny)

    class _Interceptor(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            for key, value in details.invocation_metadata or ():
                if key == "authorization":
                    if auth.accepts(value):
                        return continuation(details)
                    break
            return denied

    return _Interceptor()
