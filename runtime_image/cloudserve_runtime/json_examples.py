"""Classify and regress over REST: JSON examples -> serialized tf.Example, results -> JSON (§1.6).

tf.Example protos are written directly in protobuf wire format (Example -> Features ->
map<string, Feature> -> BytesList | FloatList | Int64List), so this module needs no
TensorFlow import. The bytes parse with ``tensorflow.core.example.example_pb2.Example``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .json_core import (
    debug_string,
    decode_b64_object,
    float_tokens,
    invalid,
    is_b64_object,
    json_string,
    json_type_name,
    parse_json_object,
    signature_name_of,
    to_bytes,
)

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
# Feature oneof field numbers, also the kind names TF Serving prints.
_BYTES, _FLOAT, _INT64 = 1, 2, 3
_KIND_NAMES = {_BYTES: "bytes", _FLOAT: "float", _INT64: "int64"}


@dataclass
class ExampleRequest:
    """A parsed classify/regress body.

    Attributes:
        signature_name: requested signature; ``serving_default`` when absent or empty.
        examples: one serialized ``tf.train.Example`` per entry of ``examples``.
        context: the serialized ``context`` Example when given (the request is then an
            ``ExampleListWithContext``), else None.
    """

    signature_name: str
    examples: list[bytes]
    context: bytes | None = None


def _varint(value: int) -> bytes:
    value &= _UINT64_MAX
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature_bytes(kind: int | None, values: list[Any]) -> bytes:
    """A serialized ``Feature`` holding ``values`` in the list for ``kind`` (empty if None)."""
    if kind is None:
        return b""
    if kind == _BYTES:
        listed = b"".join(_field(1, value) for value in values)
    elif kind == _FLOAT:
        with np.errstate(over="ignore"):
            listed = _field(1, np.array(values, dtype="<f4").tobytes())
    else:
        listed = _field(1, b"".join(map(_varint, values)))
    return _field(kind, listed)


def _feature_value(name: str, value: Any) -> tuple[int, Any]:
    """Kind and stored value for one JSON element of feature ``name``."""
    if type(value) is str:
        return _BYTES, to_bytes(value)
    if type(value) is float:
        return _FLOAT, value
    if type(value) is bool:
        return _INT64, int(value)
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return _INT64, value
        if _INT64_MAX < value <= _UINT64_MAX:
            raise invalid(f"Feature: {name} has uint64 element. Only int64_t is supported.")
        return _FLOAT, float(value)  # beyond 64 bits rapidjson holds a double
    if is_b64_object(value):
        return _BYTES, decode_b64_object(value)
    raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type_name(value)}")


def _example_bytes(value: Any) -> bytes:
    """Serializes one JSON object of features as a ``tf.train.Example``.

    Raises:
        RestError: TF Serving's texts for a non-object, a bad element or mixed kinds.
    """
    if type(value) is not dict:
        raise invalid(f"Example must be JSON object but got JSON {json_type_name(value)}")
    entries = []
    for name, content in value.items():
        kind: int | None = None
        values = []
        for element in content if type(content) is list else (content,):
            element_kind, stored = _feature_value(name, element)
            if kind is not None and element_kind != kind:
                raise invalid(
                    f"Unexpected element type in feature: {name} "
                    f"expecting type: {_KIND_NAMES[kind]}"
                )
            kind = element_kind
            values.append(stored)
        entry = _field(1, to_bytes(name)) + _field(2, _feature_bytes(kind, values))
        entries.append(_field(1, entry))
    return _field(1, b"".join(entries))


def parse_example_request(body: bytes, method: str) -> ExampleRequest:
    """Parses a classify or regress body into serialized tf.Examples (§1.6).

    The whole body is converted before the model is resolved, as TF Serving does.

    Args:
        body: raw request body.
        method: ``"classify"`` or ``"regress"``. TF Serving's missing-``examples`` text names
            ``classify`` for both, and so does this function.

    Returns:
        The signature name, the serialized examples and the serialized context (or None).

    Raises:
        RestError: INVALID_ARGUMENT with TF Serving's texts.
        ValueError: ``method`` is neither ``classify`` nor ``regress``.
    """
    if method not in ("classify", "regress"):
        raise ValueError(f"method must be 'classify' or 'regress', not {method!r}")
    doc = parse_json_object(body)
    signature_name = signature_name_of(doc)
    context = _example_bytes(doc["context"]) if "context" in doc else None
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is "
            "expected and was not found"
        )
    examples = doc["examples"]
    if type(examples) is not list:
        raise invalid(
            f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array"
        )
    if not examples:
        raise invalid(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    return ExampleRequest(signature_name, [_example_bytes(item) for item in examples], context)


def _rows(values: np.ndarray, batch: int) -> np.ndarray:
    array = np.asarray(values)
    return array.reshape(batch, array.size // batch)


def encode_classify_response(classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    """Builds ``{"results": [[[label, score], ...] per example]}``.

    Args:
        classes: ``[batch, n]`` labels (bytes or str), or None: every label is then ``""``.
        scores: ``[batch, n]`` scores, or None: every score is then ``0.0`` (TF's default).
            A ``[batch]`` array counts as ``[batch, 1]``. Scores print as float32 (§1.5 rule).

    Raises:
        RestError: ``Cannot convert empty ClassificationResults to JSON`` for no examples;
            INVALID_ARGUMENT when classes and scores differ in shape.
    """
    present = classes if classes is not None else scores
    batch = len(present) if present is not None and np.ndim(present) else 0
    if not batch:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    label_rows = None if classes is None else _rows(classes, batch)
    score_rows = None if scores is None else _rows(scores, batch)
    if label_rows is not None and score_rows is not None and label_rows.shape != score_rows.shape:
        raise invalid("Tensors class and score should match in shape")
    width = (label_rows if label_rows is not None else score_rows).shape[1]
    if label_rows is None:
        labels = ['""'] * (batch * width)
    else:
        labels = list(map(json_string, label_rows.ravel().tolist()))
    if score_rows is None:
        values = ["0.0"] * (batch * width)
    else:
        values = float_tokens(score_rows.astype(np.float32).ravel())
    pairs = [f"[{label}, {value}]" for label, value in zip(labels, values, strict=True)]
    rows = ["[" + ", ".join(pairs[i * width : (i + 1) * width]) + "]" for i in range(batch)]
    return to_bytes('{\n    "results": [' + ", ".join(rows) + "\n    ]\n}")


def encode_regress_response(values: np.ndarray) -> bytes:
    """Builds ``{"results": [v1, v2, ...]}`` from ``[batch]`` or ``[batch, 1]`` values (float32).

    Raises:
        RestError: ``Cannot convert empty RegressionResults to JSON`` for no values.
    """
    flat = np.asarray(values, dtype=np.float32).ravel()
    if not flat.size:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    return to_bytes('{\n    "results": [' + ", ".join(float_tokens(flat)) + "]\n}")
