"""The smoke request: one prediction a new version must answer before it takes traffic.

Where the request comes from, first match wins:

1. a user sample (``--sample FILE`` or ``sample:`` in cloudserve.yaml): a TF Serving REST
   predict body, ``{"instances": ...}`` or ``{"inputs": ...}``; the user asked for it, so it
   wins over what cloudserve could derive;
2. the export's TF Serving warm-up records (``assets.extra/tf_serving_warmup_requests``, a
   TFRecord file of ``PredictionLog`` protos): the first ``predict_log`` request, turned into a
   REST body; read with :mod:`cloudserve.export`'s protobuf wire reader, without TensorFlow;
3. a request built from the serving signature's dtypes and shapes: zeros (``false`` for
   booleans), unknown dimensions as 1. Signatures with string or other non-numeric inputs get
   none, since zeros would not be a meaningful input (JPEG bytes, serialized examples).

Nothing here talks to a target: :mod:`cloudserve.deploy` sends the request through the
adapter's own predict path.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudserve.errors import ConfigError
from cloudserve.export import (
    DTYPE_NAMES,
    _fields,
    _map_entries,
    _signed64,
    _tensor_shape,
    _varint,
)
from cloudserve.records import ExportInfo, SignatureInfo

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
SERVING_DEFAULT = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
#: a built request holds at most this many values (a few hundred KB of JSON)
MAX_BUILT_ELEMENTS = 100_000

#: TensorProto value fields (tensorflow/core/framework/tensor.proto) -> dtypes they hold
_VALUE_FIELDS = {
    5: "f",  # float_val (packed fixed32)
    6: "d",  # double_val (packed fixed64)
    7: "varint",  # int_val: int32, int16, int8, uint8, uint16; half_val bits are field 13
    8: "bytes",  # string_val
    10: "varint",  # int64_val
    11: "varint",  # bool_val
    13: "varint",  # half_val (bit patterns of half / bfloat16)
    16: "varint",  # uint32_val
    17: "varint",  # uint64_val
}
#: dtype -> struct format of one element in ``tensor_content``
_CONTENT_FORMATS = {
    "DT_FLOAT": "f",
    "DT_DOUBLE": "d",
    "DT_INT32": "i",
    "DT_UINT8": "B",
    "DT_INT16": "h",
    "DT_INT8": "b",
    "DT_INT64": "q",
    "DT_BOOL": "?",
    "DT_UINT16": "H",
    "DT_HALF": "e",
    "DT_UINT32": "I",
    "DT_UINT64": "Q",
}
_SIGNED_32 = {"DT_INT32", "DT_INT16", "DT_INT8"}
_ZEROS: dict[str, Any] = {
    **{dtype: 0 for dtype in ("DT_INT32", "DT_UINT8", "DT_INT16", "DT_INT8", "DT_INT64")},
    **{dtype: 0 for dtype in ("DT_UINT16", "DT_UINT32", "DT_UINT64")},
    **{dtype: 0.0 for dtype in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16")},
    "DT_BOOL": False,
}


@dataclass(frozen=True)
class SmokeRequest:
    """A predict body and where it came from (said in progress, records and errors)."""

    payload: dict[str, Any]
    source: str


# --------------------------------------------------------------------------- warm-up records


def read_tfrecords(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file (``uint64 length, uint32 crc, data, uint32 crc``).

    The CRCs are not checked; a truncated file raises ConfigError.
    """
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ConfigError(f"{path} is truncated (a record header is cut off)")
        (length,) = struct.unpack_from("<Q", data, pos)
        start = pos + 12
        if start + length + 4 > len(data):
            raise ConfigError(f"{path} is truncated (a record of {length} bytes is cut off)")
        yield data[start : start + length]
        pos = start + length + 4


def _varints(value: int | memoryview) -> list[int]:
    """An unpacked varint field's value, or every varint of a packed run."""
    if isinstance(value, int):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(number)
    return out


def _json_value(dtype: str, value: Any) -> Any:
    if dtype == "DT_STRING":
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(raw).decode("ascii")}
    if dtype == "DT_BOOL":
        return bool(value)
    if dtype in _SIGNED_32:
        return value - (1 << 32) if value >= 1 << 31 else value
    if dtype == "DT_INT64":
        return _signed64(value)
    if dtype in ("DT_HALF", "DT_BFLOAT16") and isinstance(value, int):
        if dtype == "DT_HALF":
            return struct.unpack("<e", struct.pack("<H", value & 0xFFFF))[0]
        return struct.unpack("<f", struct.pack("<I", (value & 0xFFFF) << 16))[0]
    return value


def _nest(flat: Sequence[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def tensor_to_json(buf: memoryview | bytes) -> Any:
    """A serialized ``TensorProto`` as the nested JSON list TF Serving's REST API takes.

    Raises:
        ValueError: a dtype REST cannot carry, or values that do not fill the shape.
    """
    dtype, shape, content = "DT_INVALID", (), b""
    values: list[Any] = []
    for number, v in _fields(memoryview(buf)):
        if number == 1:
            dtype = DTYPE_NAMES.get(int(v), f"DT_{int(v)}")
        elif number == 2:
            shape = _tensor_shape(v) or ()
        elif number == 4:
            content = bytes(v)
        elif number in _VALUE_FIELDS:
            kind = _VALUE_FIELDS[number]
            if kind == "bytes":
                values.append(bytes(v))
            elif kind == "varint":
                values += _varints(v)
            elif isinstance(v, memoryview):
                values += [x for (x,) in struct.iter_unpack("<" + kind, v)]
    if dtype != "DT_STRING" and dtype not in _ZEROS:
        raise ValueError(f"a {dtype} tensor cannot be sent over REST")
    count = math.prod(shape)
    if content:
        if dtype == "DT_BFLOAT16":
            values = [v for (v,) in struct.iter_unpack("<H", content)]
        else:
            values = [v for (v,) in struct.iter_unpack("<" + _CONTENT_FORMATS[dtype], content)]
    if not values:
        values = [_ZEROS.get(dtype, b"")] * count
    elif len(values) == 1 and count != 1:
        values = values * count
    if len(values) != count:
        raise ValueError(f"{len(values)} values do not fill shape {list(shape)}")
    return _nest([_json_value(dtype, v) for v in values], shape)


def predict_body(inputs: dict[str, Any], signature: str = "") -> dict[str, Any]:
    """A REST predict body for batched ``inputs`` (alias -> nested list).

    The row format (``instances``) when every input has the same batch size, since every
    target's predict path takes it (Vertex AI takes nothing else); else the columnar
    ``inputs`` format.
    """
    named = signature and signature != SERVING_DEFAULT  # some targets take no signature_name
    body: dict[str, Any] = {"signature_name": signature} if named else {}
    values = list(inputs.values())
    sizes = {len(v) if isinstance(v, list) else None for v in values}
    if len(sizes) != 1 or None in sizes:
        return {**body, "inputs": inputs}
    if len(inputs) == 1:
        return {**body, "instances": values[0]}
    (size,) = sizes
    return {**body, "instances": [{k: v[i] for k, v in inputs.items()} for i in range(size)]}


def _predict_body(request: memoryview) -> dict[str, Any]:
    """A ``PredictRequest`` as a REST predict body."""
    signature = ""
    inputs: dict[str, Any] = {}
    for number, v in _fields(request):
        if number == 1:  # ModelSpec
            for n, v2 in _fields(v):
                if n == 3:
                    signature = bytes(v2).decode()
        elif number == 2:  # inputs map<string, TensorProto>
            alias, tensor = _map_entries(v)
            inputs[alias] = tensor_to_json(tensor)
    return predict_body(inputs, signature)


def warmup_request(export: ExportInfo) -> SmokeRequest | None:
    """The first predict request of the export's warm-up records; None when it has none.

    Raises:
        ConfigError: the warm-up file is not a valid TFRecord of PredictionLog protos.
    """
    path = export.path / WARMUP_FILE
    if not path.is_file():
        return None
    try:
        for record in read_tfrecords(path):
            for number, log in _fields(memoryview(record)):
                if number == 6:  # PredictionLog.predict_log
                    for n, request in _fields(log):
                        if n == 1:  # PredictLog.request
                            return SmokeRequest(_predict_body(request), f"warm-up record {path}")
    except (ValueError, UnicodeDecodeError, KeyError) as e:
        raise ConfigError(
            f"{path} is not a TFRecord file of PredictionLog protos ({e})",
            hint="rewrite it with tf.io.TFRecordWriter and PredictionLog.SerializeToString()",
        ) from e
    return None


# --------------------------------------------------------------------------- built request


def serving_signature(export: ExportInfo, required: str | None) -> tuple[str, SignatureInfo] | None:
    """The signature a request that names none reaches: ``required`` (the target's), else
    ``serving_default``, else the first predict signature by name."""
    for name in (required, SERVING_DEFAULT):
        if name and name in export.signatures:
            return name, export.signatures[name]
    for name in sorted(export.signatures):
        sig = export.signatures[name]
        if not name.startswith("__") and sig.method in (PREDICT_METHOD, ""):
            return name, sig
    return None


def built_request(export: ExportInfo, required: str | None) -> SmokeRequest | str:
    """A request of zeros shaped like the serving signature's inputs, or why none can be built."""
    found = serving_signature(export, required)
    if found is None:
        return "the export has no predict signature"
    name, sig = found
    if not sig.inputs:
        return f"signature '{name}' takes no inputs"
    inputs: dict[str, Any] = {}
    for alias, tensor in sorted(sig.inputs.items()):
        if tensor.dtype not in _ZEROS:
            return f"input '{alias}' of signature '{name}' is {tensor.dtype}"
        shape = tuple(1 if d < 0 else d for d in tensor.shape) if tensor.shape is not None else (1,)
        if math.prod(shape) > MAX_BUILT_ELEMENTS:
            return f"input '{alias}' of signature '{name}' has {math.prod(shape)} values"
        inputs[alias] = _nest([_ZEROS[tensor.dtype]] * math.prod(shape), shape)
    body = predict_body(inputs, "" if name == SERVING_DEFAULT else name)
    return SmokeRequest(body, f"zeros shaped like signature '{name}'")


# --------------------------------------------------------------------------- user sample


def load_sample(path: Path) -> SmokeRequest:
    """A user's sample request: a JSON file holding a TF Serving REST predict body.

    Raises:
        ConfigError: the file is missing, not JSON, or not ``{"instances"|"inputs": ...}``.
    """
    try:
        body = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"sample file {path} does not exist", hint="pass --sample FILE with a predict body"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"sample file {path} is not JSON ({e})", hint="fix the file") from None
    if not isinstance(body, dict) or not ({"instances", "inputs"} & set(body)):
        raise ConfigError(
            f"sample file {path} is not a TF Serving predict body",
            hint='write {"instances": [...]} or {"inputs": {...}}, as `cloudserve predict` takes',
        )
    return SmokeRequest(body, f"sample {path}")


# --------------------------------------------------------------------------- choice


def smoke_request(
    export: ExportInfo, *, sample: Path | None = None, required_signature: str | None = None
) -> SmokeRequest | str:
    """The smoke request for ``export`` (see the module docstring for the order), or the
    reason none could be made (then the caller says the version was not verified).

    Raises:
        ConfigError: a bad sample file or warm-up file.
    """
    if sample is not None:
        return load_sample(sample)
    found = warmup_request(export)
    if found is not None:
        return found
    built = built_request(export, required_signature)
    if isinstance(built, str):
        return f"{built}, and the export has no {WARMUP_FILE}: pass --sample FILE"
    return built


def check_answer(response: Any) -> str | None:
    """None when a predict response holds predictions; else what is wrong with it."""
    if not isinstance(response, dict):
        return f"the answer is not a JSON object: {str(response)[:200]}"
    if "error" in response:
        return str(response["error"])
    if "predictions" not in response and "outputs" not in response:
        return f"the answer has no predictions: {json.dumps(response, default=str)[:200]}"
    return None
