"""Talking to a running runtime: TF Serving's REST routes and the gRPC config reload.

``ModelService.HandleReloadConfigRequest`` is called with hand-encoded messages: the
generated ``model_management_pb2`` imports TensorFlow (through ``status_pb2``), which would
add seconds to every CLI command. The two messages involved are tiny:
``ReloadConfigRequest{ModelServerConfig config = 1}`` and
``ReloadConfigResponse{StatusProto status = 1}`` with
``StatusProto{int32 error_code = 1; string error_message = 2}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from cloudserve.errors import MissingDependency, NotFound, ProviderError

RELOAD_METHOD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
_OK = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_reload_request(config_bytes: bytes) -> bytes:
    """A serialized ``ReloadConfigRequest`` carrying a serialized ``ModelServerConfig``."""
    return b"\x0a" + _varint(len(config_bytes)) + config_bytes


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> dict[int, int | bytes]:
    """Top-level fields of a message (varint and length-delimited; the last one wins)."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            fields[number] = data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def decode_reload_response(data: bytes) -> tuple[int, str]:
    """``(error_code, error_message)`` of a serialized ``ReloadConfigResponse``."""
    status = _fields(data).get(1, b"")
    fields = _fields(status if isinstance(status, bytes) else b"")
    code = fields.get(1, _OK)
    message = fields.get(2, b"")
    return (
        code if isinstance(code, int) else _OK,
        message.decode("utf-8", "replace") if isinstance(message, bytes) else "",
    )


class RuntimeClient:
    """REST and gRPC calls to one runtime.

    Args:
        host: the runtime's address.
        rest_port: its REST port.
        grpc_port: its gRPC port.
        timeout: seconds for one REST request.
    """

    def __init__(self, host: str, rest_port: int, grpc_port: int, *, timeout: float = 60.0):
        self.rest_url = f"http://{host}:{rest_port}"
        self.grpc_target = f"{host}:{grpc_port}"
        self._http = httpx.Client(base_url=self.rest_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ REST

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ProviderError(
                f"the local runtime at {self.rest_url} did not answer {method} {path}: {e}",
                hint="see `cloudserve local status` and `cloudserve local logs`",
                provider="local",
            ) from e

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200 (False when it answers otherwise or not at all)."""
        try:
            return self._http.get("/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def model_status(self, model: str, version: str | None = None) -> dict[str, dict[str, Any]]:
        """Version -> ``{"state", "error_code", "error_message"}`` as the runtime reports it.

        Empty when the runtime knows no such model or version (its 404).
        """
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "")
        response = self._request("GET", path)
        if response.status_code == 404:
            return {}
        body = self._json(response, f"GET {path}")
        return {
            str(entry["version"]): {
                "state": entry.get("state", "UNKNOWN"),
                "error_code": entry.get("status", {}).get("error_code", "OK"),
                "error_message": entry.get("status", {}).get("error_message", ""),
            }
            for entry in body.get("model_version_status", [])
        }

    def predict(
        self, model: str, payload: dict[str, Any], version: str | None = None
    ) -> dict[str, Any]:
        """POST a predict body; the runtime's 404 is NotFound, other errors ProviderError."""
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
        return self._json(self._request("POST", path, json=payload), f"POST {path}")

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        message = f"{what}: {error or response.text[:500] or 'no error text'}"
        if response.status_code == 404:
            raise NotFound(message, provider="local")
        raise ProviderError(message, http_status=response.status_code, provider="local")

    # ------------------------------------------------------------------ gRPC

    def reload_config(self, config_bytes: bytes, *, timeout: float) -> None:
        """Hand the runtime a new ``ModelServerConfig`` (serialized); blocks for its answer.

        Raises ProviderError with the runtime's message when it rejects the config.
        """
        try:
            import grpc
        except ModuleNotFoundError as e:
            raise MissingDependency("grpcio", "runtime", provider="local") from e
        with grpc.insecure_channel(self.grpc_target) as channel:
            call = channel.unary_unary(
                RELOAD_METHOD,
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            try:
                raw = call(encode_reload_request(config_bytes), timeout=timeout)
            except grpc.RpcError as e:
                raise ProviderError(
                    f"the local runtime refused the model config: {e.code().name}: {e.details()}",
                    provider="local",
                ) from e
        code, message = decode_reload_response(raw)
        if code != _OK:
            raise ProviderError(
                f"the local runtime refused the model config: {message}", provider="local"
            )
