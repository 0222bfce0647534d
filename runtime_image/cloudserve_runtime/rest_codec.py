"""TensorFlow Serving REST JSON <-> numpy codec (pure: no server, no I/O).

Public entry points for cloudserve's TF-Serving-compatible runtime. Predict conversion lives in
:mod:`.json_tensor`, classify/regress in :mod:`.json_examples`, shared parsing and number
printing in :mod:`.json_core`; this module re-exports them and adds the error, model status (§2)
and model metadata (§3) bodies.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.json_format import MessageToDict

from .json_core import HTTP_STATUS, RestError, json_string, to_bytes
from .json_examples import (
    ExampleRequest,
    encode_classify_response,
    encode_regress_response,
    parse_example_request,
)
from .json_tensor import (
    PredictRequest,
    decode_predict_request,
    encode_predict_response,
    parse_predict_request,
    predict_inputs_to_tensors,
)
from .limits import MAX_ECHO_CHARS, echo

__all__ = [
    "HTTP_STATUS",
    "ExampleRequest",
    "PredictRequest",
    "RestError",
    "decode_predict_request",
    "encode_classify_response",
    "encode_error",
    "encode_model_metadata",
    "encode_model_status",
    "encode_predict_response",
    "encode_regress_response",
    "parse_example_request",
    "parse_predict_request",
    "predict_inputs_to_tensors",
]


MAX_ERROR_CHARS = 8 * MAX_ECHO_CHARS
"""Longest error message sent; longer ones (a huge key or signature name echoed from the
request) are cut and end in ``...TRUNCATED``."""


def encode_error(message: str) -> bytes:
    """Error body ``{"error": "<message>"}``, byte-identical to TF Serving's PrettyWriter output
    up to :data:`MAX_ERROR_CHARS` characters of message."""
    return to_bytes('{\n    "error": ' + json_string(echo(message, MAX_ERROR_CHARS)) + "\n}")


def encode_model_status(versions: list[tuple[int, str, str, str]]) -> bytes:
    """``GetModelStatusResponse`` JSON (§2), newest version first.

    Args:
        versions: ``(version, state, error_code_name, error_message)`` per version, e.g.
            ``(123, "AVAILABLE", "OK", "")``; any order.

    Returns:
        ``{"model_version_status": [{"version": "<v>", "state": ..., "status": {"error_code":
        ..., "error_message": ...}}, ...]}`` with protobuf's 1-space indentation.
    """
    entries = [
        {
            "version": str(version),
            "state": state,
            "status": {"error_code": code, "error_message": message},
        }
        for version, state, code, message in sorted(versions, key=lambda v: v[0], reverse=True)
    ]
    return to_bytes(json.dumps({"model_version_status": entries}, indent=1, ensure_ascii=False))


def encode_model_metadata(model_name: str, version: int, signature_defs: dict[str, Any]) -> bytes:
    """``GetModelMetadataResponse`` JSON (§3) for the ``signature_def`` metadata field.

    Args:
        model_name: the model's name.
        version: the served version.
        signature_defs: signature name -> ``tensorflow.core.protobuf.meta_graph_pb2.SignatureDef``.

    Returns:
        ``{"model_spec": {"name", "signature_name": "", "version": "<v>"}, "metadata":
        {"signature_def": {"signature_def": {name: SignatureDef JSON}}}}``, where the
        SignatureDef JSON keeps proto field names and prints fields without presence (so dim
        sizes are strings and empty ``defaults`` appear).
    """
    signatures = {
        name: MessageToDict(
            signature,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        for name, signature in signature_defs.items()
    }
    spec = {"name": model_name, "signature_name": "", "version": str(version)}
    model_spec = json.dumps(spec, indent=1, ensure_ascii=False)
    metadata = json.dumps({"signature_def": signatures}, indent=1, ensure_ascii=False)
    return to_bytes(
        '{\n"model_spec":' + model_spec + ',\n"metadata": {"signature_def": ' + metadata + "}\n}\n"
    )
