"""Predict over REST: request JSON -> numpy tensors and tensors -> response JSON (spec §1.3-§1.5).

The common case (well-formed dense lists of the signature's dtype) is checked with a few
C-level passes (``set(map(type, ...))`` per nesting level) and converted with one ``np.array``
call. Anything that fails that check is re-walked element by element in TF Serving's order,
so the error text is the one TF Serving would give.

Bodies are first parsed with orjson (:func:`decode_predict_request`); when orjson rejects a body
(syntax error, ``NaN``, trailing bytes, invalid UTF-8, huge integers, …) the exact parser runs
and words the error. A body that is just ``{"instances": <numbers>}`` or ``{"inputs":
<numbers>}`` (only digits, signs, dots, exponents, brackets and commas in its value) goes straight
to one float32 array; a large one is parsed in slices of whole rows, so that no single C call holds
the GIL for long (large bodies are decoded on a worker thread while the event loop keeps
serving). If that array does not fit the signature (several inputs, a non-float dtype, ragged
or empty lists), the request is re-parsed exactly and takes the normal path.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from .json_core import (
    UNIMPLEMENTED,
    RestError,
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

_MAX_RANK = 63  # numpy allows 64 dimensions; row format adds the batch dimension.


@dataclass
class PredictRequest:
    """A parsed predict body (steps 2-3 of §1.3).

    Attributes:
        signature_name: requested signature; ``serving_default`` when absent or empty.
        row_format: True for ``instances`` (row) requests, False for ``inputs`` (columnar).
        data: the ``instances`` list or the ``inputs`` value; None when ``error`` is set.
        error: a body-shape error (both/neither key, ``instances`` not a non-empty list). TF
            Serving reports it only after the model and signature resolve (step 6), so
            :func:`predict_inputs_to_tensors` raises it instead of the parser.
    """

    signature_name: str = "serving_default"
    row_format: bool = True
    data: Any = None
    error: RestError | None = None
    numbers: np.ndarray | None = None
    """The whole value as one float32 array (set only by :func:`decode_predict_request` for a
    numbers-only body; ``data`` then holds the parsed value, or None for a sliced body)."""
    body: bytes | None = None
    """The raw body when ``numbers`` is set, for the exact path's re-parse."""


def parse_predict_request(body: bytes) -> PredictRequest:
    """Parses a predict body without needing the signature.

    Args:
        body: raw request body.

    Returns:
        The request. Errors about the ``instances``/``inputs`` keys are stored in
        ``PredictRequest.error`` (raised later, after model and signature lookup).

    Raises:
        RestError: INVALID_ARGUMENT for an empty body, a JSON syntax error, a non-object root or
            a non-string ``signature_name``.
    """
    return _request_of(parse_json_object(body))


def _request_of(doc: dict[str, Any]) -> PredictRequest:
    request = PredictRequest(signature_name=signature_name_of(doc))
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        request.error = invalid(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    elif has_instances:
        instances = doc["instances"]
        if type(instances) is not list:
            request.error = invalid(
                f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array"
            )
        elif not instances:
            request.error = invalid(
                f"JSON Value: {debug_string(doc)} No values in 'instances' array"
            )
        else:
            request.data = instances
    elif has_inputs:
        request.row_format = False
        request.data = doc["inputs"]
    else:
        request.error = invalid("Missing 'inputs' or 'instances' key")
    return request


# ---------------------------------------------------------------------------------------------
# Fast decoding
# ---------------------------------------------------------------------------------------------

SLICE_BYTES = 1 << 20
"""Numbers-only bodies larger than this are parsed in slices of about this size."""

_NUMBER_BYTES = b"0123456789-+.eE \t\n\r[],"
# What deleting _NUMBER_BYTES leaves of a numbers-only body, by key.
_NUMBERS_ONLY = {b'{"instancs":}': "instances", b'{"inputs":}': "inputs"}
_HEAD = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"(?:instances|inputs)"[ \t\n\r]*:[ \t\n\r]*\[')
_WS = b" \t\n\r"
_WS_OR_OPEN = b" \t\n\r["


def decode_predict_request(body: bytes) -> PredictRequest:
    """Parses a predict body like :func:`parse_predict_request`, faster.

    orjson parses it; a numbers-only ``instances``/``inputs`` value becomes one float32 array
    (``PredictRequest.numbers``), parsed in slices of whole rows when the body is larger than
    :data:`SLICE_BYTES`. Whatever orjson rejects goes to the exact parser, so errors are TF
    Serving's. Pure; may take long for large bodies (call it off the event loop).

    Raises:
        RestError: as :func:`parse_predict_request`.
    """
    key = _NUMBERS_ONLY.get(_residue(body))
    if key is not None and len(body) > SLICE_BYTES:
        numbers = _sliced_numbers(body)
        if numbers is not None:
            return PredictRequest(row_format=key == "instances", numbers=numbers, body=body)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return parse_predict_request(body)
    if type(doc) is not dict:
        return parse_predict_request(body)
    if key is not None and len(doc) == 1 and key in doc:
        value = doc[key]
        if type(value) is list and value:
            numbers = _dense_numbers(value, np.float32)
            if numbers is not None:
                return PredictRequest(
                    row_format=key == "instances", data=value, numbers=numbers, body=body
                )
    return _request_of(doc)


def _dense_numbers(value: list, dtype: type) -> np.ndarray | None:
    """A ``dtype`` array of a nested list of numbers, or None if it is not dense (ragged, a list
    where a number belongs or the reverse, an integer out of float range).

    Each level's lengths are checked with one C-level pass; the leaves go into the array with
    ``np.fromiter`` without being copied into a list (5x faster than ``np.array`` on the list).
    Each value is rounded once from its double, as ``np.array(leaves, dtype)`` does (float32
    overflow gives inf). No numpy call here releases the GIL: taking it back from the batch
    thread would cost the event loop up to a switch interval.
    """
    dims = _first_shape(value)
    nodes = value
    try:
        for level, size in enumerate(dims[1:], start=2):
            if set(map(len, nodes)) != {size}:
                return None
            if level < len(dims):
                nodes = list(chain.from_iterable(nodes))
        leaves = chain.from_iterable(nodes) if len(dims) > 1 else nodes
        with np.errstate(over="ignore"):
            array = np.fromiter(leaves, dtype=dtype, count=math.prod(dims))
        return array.reshape(dims)
    except (TypeError, ValueError, OverflowError):
        return None


def _sliced_numbers(body: bytes) -> np.ndarray | None:
    """A numbers-only body's array, parsed in slices of whole rows; None if anything is off.

    Rows of rank r end in r closing brackets; r brackets in a row followed by a comma only occur
    between two rows. Each slice is parsed on its own (``[`` + rows + ``]``) and the rows' shapes
    must agree, so a body that is not one dense array gives None.
    """
    head, tail = _HEAD.match(body), _skip_back(body, len(body) - 1, 0x7D)  # "}"
    tail = _skip_back(body, tail - 1, 0x5D) if tail > 0 else -1  # "]"
    if head is None or tail < head.end():
        return None
    inner = body[head.end() : tail]
    rank = 0
    at = 0
    while at < len(inner) and inner[at] in _WS_OR_OPEN:  # the first row's leading brackets
        rank += inner[at] == 0x5B
        at += 1
    end = b"]" * rank
    parts: list[np.ndarray] = []
    start = 0
    while start < len(inner):
        cut = len(inner)
        probe = start + SLICE_BYTES
        while probe < len(inner):
            found = inner.find(end or b",", probe)
            if found < 0:
                break
            comma = found + rank
            while comma < len(inner) and inner[comma] in _WS:
                comma += 1
            if comma < len(inner) and inner[comma] == 0x2C:  # ","
                cut = comma
                break
            probe = found + 1
        try:
            part = _dense_numbers(orjson.loads(b"[" + inner[start:cut] + b"]"), np.float32)
        except orjson.JSONDecodeError:
            return None
        if part is None or not part.size or (parts and part.shape[1:] != parts[0].shape[1:]):
            return None
        parts.append(part)
        start = cut + 1
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _residue(body: bytes) -> bytes:
    """``body`` without the bytes of numbers and arrays, in slices (no long C call)."""
    if len(body) <= SLICE_BYTES:
        return body.translate(None, _NUMBER_BYTES)
    return b"".join(
        body[start : start + SLICE_BYTES].translate(None, _NUMBER_BYTES)
        for start in range(0, len(body), SLICE_BYTES)
    )


def _skip_back(body: bytes, index: int, expected: int) -> int:
    """The index of byte ``expected`` found at ``index`` or before it past whitespace, or -1."""
    while index >= 0 and body[index] in _WS:
        index -= 1
    return index if index >= 0 and body[index] == expected else -1


def _numbers_to_tensors(req: PredictRequest, inputs: dict[str, str]) -> dict | None:
    """The tensor of a one-input float signature from ``req.numbers``; None for anything else."""
    numbers = req.numbers
    if len(inputs) != 1 or numbers is None or not numbers.size:
        return None
    ((name, dtype),) = inputs.items()
    if numbers.ndim > _MAX_RANK + req.row_format:
        return None
    if dtype == "DT_FLOAT":
        return {name: numbers}
    if dtype == "DT_DOUBLE" and req.data is not None:
        doubles = _dense_numbers(req.data, np.float64)
        return None if doubles is None else {name: doubles}
    return None


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DType:
    """How one TF dtype takes JSON values.

    Attributes:
        name: TF's ``DataTypeString`` (used in messages), e.g. ``float``.
        numpy: dtype of the produced array.
        build: dtype ``np.array`` builds first (int32 for the narrow ints, which wrap like TF).
        leaf_types: Python types the fast path accepts as leaves.
        accept: slow-path check of one leaf; returns the value to store or None to reject.
    """

    name: str
    numpy: np.dtype
    build: np.dtype
    leaf_types: frozenset[type]
    accept: Callable[[Any], Any]


def _accept_float(value: Any) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return None


def _int_acceptor(low: int, high: int) -> Callable[[Any], Any]:
    def accept(value: Any) -> Any:
        return value if type(value) is int and low <= value <= high else None

    return accept


def _accept_bool(value: Any) -> Any:
    return value if type(value) is bool else None


def _accept_string(value: Any) -> Any:
    return to_bytes(value) if type(value) is str else None


def _dtype(
    name: str, numpy: Any, accept: Callable[[Any], Any], *leaf: type, build: Any = None
) -> _DType:
    return _DType(name, np.dtype(numpy), np.dtype(build or numpy), frozenset(leaf), accept)


_INT32 = _int_acceptor(-(2**31), 2**31 - 1)
_DTYPES: dict[str, _DType] = {
    "DT_FLOAT": _dtype("float", np.float32, _accept_float, float, int),
    "DT_DOUBLE": _dtype("double", np.float64, _accept_float, float, int),
    "DT_INT32": _dtype("int32", np.int32, _INT32, int),
    "DT_INT16": _dtype("int16", np.int16, _INT32, int, build=np.int32),
    "DT_INT8": _dtype("int8", np.int8, _INT32, int, build=np.int32),
    "DT_UINT8": _dtype("uint8", np.uint8, _INT32, int, build=np.int32),
    "DT_INT64": _dtype("int64", np.int64, _int_acceptor(-(2**63), 2**63 - 1), int),
    "DT_UINT32": _dtype("uint32", np.uint32, _int_acceptor(0, 2**32 - 1), int),
    "DT_UINT64": _dtype("uint64", np.uint64, _int_acceptor(0, 2**64 - 1), int),
    "DT_BOOL": _dtype("bool", np.bool_, _accept_bool, bool),
    "DT_STRING": _dtype("string", object, _accept_string, str),
}


def _tf_type_name(enum_name: str) -> str:
    """``DT_COMPLEX64`` -> ``complex64`` (TF's DataTypeString)."""
    return enum_name.removeprefix("DT_").lower()


# ---------------------------------------------------------------------------------------------
# JSON value -> ndarray
# ---------------------------------------------------------------------------------------------


def _first_shape(value: Any) -> list[int]:
    """Shape implied by the first element at every nesting level (TF's GetDenseTensorShape)."""
    dims: list[int] = []
    while type(value) is list:
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims


def _dense_leaves(value: Any, dims: list[int], strict: bool) -> list[Any] | None:
    """Flat leaves of ``value`` if its lists nest exactly as ``dims`` says, else None.

    Every inner level must hold nodes of the expected length. With ``strict`` false the nodes'
    types are not checked: a string or object where a list belongs then contributes strings,
    which the caller's leaf-type check rejects for numeric dtypes.
    """
    if not dims:
        return [value]
    nodes = value
    for size in dims[1:]:
        if strict and set(map(type, nodes)) != {list}:
            return None
        try:
            if set(map(len, nodes)) != {size}:
                return None
        except TypeError:  # a number, bool or null where a list belongs
            return None
        nodes = list(chain.from_iterable(nodes))
    return nodes


def _build(leaves: list[Any], dims: list[int], spec: _DType) -> np.ndarray:
    """An array of ``dims`` from validated flat leaves (float overflow gives inf, as a C cast)."""
    if spec.numpy.kind == "O":
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
    elif spec.numpy == np.float32:
        with np.errstate(over="ignore"):
            array = np.array(leaves, dtype=np.float32)
    else:
        array = np.array(leaves, dtype=spec.build).astype(spec.numpy, copy=False)
    return array.reshape(dims)


def _fast_tensor(value: Any, dims: list[int], spec: _DType) -> np.ndarray | None:
    """Converts a well-formed dense value in a few C-level passes; None if anything is off."""
    strings = spec.numpy.kind == "O"
    leaves = _dense_leaves(value, dims, strict=strings)
    if leaves is None or not set(map(type, leaves)) <= spec.leaf_types:
        return None
    if strings:
        return _build(list(map(to_bytes, leaves)), dims, spec)
    try:
        return _build(leaves, dims, spec)
    except OverflowError:  # an int outside the dtype's range: the slow path words the error
        return None


def _check_rank(dims: list[int]) -> None:
    if len(dims) > _MAX_RANK:
        raise invalid(
            f"JSON array nesting depth {len(dims)} exceeds the maximum tensor rank {_MAX_RANK}"
        )


def _type_error(value: Any, spec_name: str) -> RestError:
    return invalid(
        f"JSON Value: {debug_string(value)} Type: {json_type_name(value)} "
        f"is not of expected type: {spec_name}"
    )


def _walk(
    value: Any, level: int, dims: list[int], spec: _DType | None, name: str, out: list[Any]
) -> None:
    """Appends the leaves of ``value`` to ``out`` in order, with TF Serving's checks and texts.

    ``spec`` is None for a dtype JSON cannot be converted to (``name`` is its TF name).
    """
    rank = len(dims)
    if type(value) is not list:
        if level != rank:
            raise invalid(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if type(value) is dict:
            if spec is None or spec.numpy.kind != "O":
                raise _type_error(value, name)
            out.append(decode_b64_object(value))
            return
        if spec is None:
            raise RestError(
                UNIMPLEMENTED, f"Conversion of JSON Value: {debug_string(value)} to type: {name}"
            )
        converted = spec.accept(value)
        if converted is None:
            raise _type_error(value, name)
        out.append(converted)
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != dims[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {dims[level]}"
        )
    for item in value:
        _walk(item, level + 1, dims, spec, name, out)


def _spec_of(dtype_enum: str) -> tuple[_DType | None, str]:
    spec = _DTYPES.get(dtype_enum)
    return spec, spec.name if spec else _tf_type_name(dtype_enum)


def _value_to_tensor(value: Any, dtype_enum: str) -> np.ndarray:
    """One JSON value (scalar, nested list or b64 object) as a tensor of ``dtype_enum``."""
    dims = _first_shape(value)
    _check_rank(dims)
    spec, name = _spec_of(dtype_enum)
    if spec is not None:
        fast = _fast_tensor(value, dims, spec)
        if fast is not None:
            return fast
    leaves: list[Any] = []
    _walk(value, 0, dims, spec, name, leaves)
    if spec is None:  # no leaf to complain about (an empty list): still not convertible
        raise RestError(
            UNIMPLEMENTED, f"Conversion of JSON Value: {debug_string(value)} to type: {name}"
        )
    return _build(leaves, dims, spec)


def _shape_text(dims: list[int]) -> str:
    return "[" + ",".join(map(str, dims)) + "]"


class _RowTensor:
    """Accumulates one input's rows in row format, checking each against row 0 (AddInstanceItem)."""

    def __init__(self, dtype_enum: str) -> None:
        self.spec, self.name = _spec_of(dtype_enum)
        self.dims: list[int] | None = None
        self.size = 0
        self.rows = 0
        self.leaves: list[Any] = []

    def add(self, item: Any) -> None:
        dims = _first_shape(item)
        _check_rank(dims)
        start = len(self.leaves)
        _walk(item, 0, dims, self.spec, self.name, self.leaves)
        size = len(self.leaves) - start
        if self.dims is None:
            self.dims, self.size = dims, size
        elif size != self.size:
            raise invalid(f"Expecting tensor size: {self.size} but got: {size}")
        elif dims != self.dims:
            raise invalid(f"Expecting shape {_shape_text(self.dims)} but got: {_shape_text(dims)}")
        self.rows += 1

    def tensor(self) -> np.ndarray:
        dims = [self.rows, *(self.dims or [])]
        if self.spec is None:
            raise RestError(UNIMPLEMENTED, f"Conversion of JSON Value: [] to type: {self.name}")
        return _build(self.leaves, dims, self.spec)


def _wrapped(index: int, err: RestError, key: str | None = None) -> RestError:
    where = f"{index} key: {key}" if key is not None else f"{index}"
    return invalid(
        f"Failed to process element: {where} of 'instances' list. Error: {err.code}: {err.message}"
    )


def _is_named(item: Any) -> bool:
    return type(item) is dict and not is_b64_object(item)


def _instances_slow(instances: list, inputs: dict[str, str], named: bool) -> dict[str, np.ndarray]:
    """Row format, element by element, raising TF Serving's error for the first bad element."""
    rows = {name: _RowTensor(dtype) for name, dtype in inputs.items()}
    plain_name = next(iter(inputs))
    for index, item in enumerate(instances):
        if not named:
            if _is_named(item):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                rows[plain_name].add(item)
            except RestError as err:
                raise _wrapped(index, err) from None
            continue
        if not _is_named(item):
            raise invalid(f"Expecting object but got list at item {index} of input list")
        for key, value in item.items():
            try:
                if key not in rows:
                    raise invalid(f"JSON object: does not have named input: {key}")
                rows[key].add(value)
            except RestError as err:
                raise _wrapped(index, err, key) from None
        if item.keys() != inputs.keys():
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{debug_string(item)} keys must be equal to: {','.join(sorted(inputs))}"
            )
    if named:
        return {name: row.tensor() for name, row in rows.items()}
    return {plain_name: rows[plain_name].tensor()}


def _instances_fast(instances: list, inputs: dict[str, str], named: bool) -> dict | None:
    """Row format when every element is well formed; None sends the request to the slow path."""
    if not named:
        columns = {next(iter(inputs)): instances}
    elif "b64" in inputs or not all(
        type(item) is dict and item.keys() == inputs.keys() for item in instances
    ):
        return None
    else:
        columns = {name: [item[name] for item in instances] for name in inputs}
    tensors = {}
    for name, column in columns.items():
        spec = _DTYPES.get(inputs[name])
        dims = _first_shape(column)
        if spec is None or len(dims) > _MAX_RANK + 1:
            return None
        tensor = _fast_tensor(column, dims, spec)
        if tensor is None:
            return None
        tensors[name] = tensor
    return tensors


def predict_inputs_to_tensors(req: PredictRequest, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """Converts a parsed predict request into input tensors (step 6 of §1.3, rules of §1.4).

    Args:
        req: the parsed request.
        inputs: signature input alias -> dtype enum name (``"DT_FLOAT"``, ``"DT_STRING"``, ...).

    Returns:
        alias -> array. Strings are object arrays of ``bytes``. Row format adds the batch
        dimension; columnar values keep their own shape (a JSON scalar gives a rank-0 array).

    Raises:
        RestError: INVALID_ARGUMENT with TF Serving's texts; UNIMPLEMENTED (501) for a columnar
            value of a dtype JSON cannot express (row format wraps that into a 400).
    """
    if not inputs:
        raise invalid(f"Failed to get input map for signature: {req.signature_name}")
    if req.numbers is not None:
        tensors = _numbers_to_tensors(req, inputs)
        if tensors is not None:
            return tensors
        req = parse_predict_request(req.body or b"")
    if req.error is not None:
        raise req.error
    data = req.data
    if req.row_format:
        if type(data[0]) is not dict and len(inputs) > 1:
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map"
            )
        named = _is_named(data[0])
        return _instances_fast(data, inputs, named) or _instances_slow(data, inputs, named)
    if not _is_named(data):
        if len(inputs) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name, dtype = next(iter(inputs.items()))
        return {name: _value_to_tensor(data, dtype)}
    tensors = {}
    for name, dtype in inputs.items():
        if name not in data:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _value_to_tensor(data[name], dtype)
    return tensors


# ---------------------------------------------------------------------------------------------
# ndarray -> JSON
# ---------------------------------------------------------------------------------------------

_INT_KINDS = {
    np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64)
}
_FLOAT_KINDS = {np.dtype(np.float32), np.dtype(np.float64)}
_BOOL_TEXT = {True: "true", False: "false"}
_NUMPY_TO_TF = {"float16": "half", "complex64": "complex64", "complex128": "complex128"}


def _b64_token(data: bytes | str) -> str:
    if type(data) is str:
        data = to_bytes(data)
    return '{"b64": "' + base64.b64encode(data).decode("ascii") + '"}'


def value_tokens(name: str, array: np.ndarray) -> list[str]:
    """JSON texts of every element of ``array`` in C order (§1.5 value encoding).

    Raises:
        RestError: ``Failed to write JSON value for tensor type: <t>`` for other dtypes.
    """
    dtype = array.dtype
    flat = array.ravel()
    if dtype in _FLOAT_KINDS:
        return float_tokens(flat)
    if dtype in _INT_KINDS:
        return list(map(str, flat.tolist()))
    if dtype == np.bool_:
        return list(map(_BOOL_TEXT.__getitem__, flat.tolist()))
    if dtype.kind in "OSU":
        if name.endswith("_bytes"):
            return list(map(_b64_token, flat.tolist()))
        return list(map(json_string, flat.tolist()))
    tf_name = _NUMPY_TO_TF.get(dtype.name, dtype.name)
    raise invalid(f"Failed to write JSON value for tensor type: {tf_name}")


def nest(tokens: list[str], shape: tuple[int, ...], outer: int, brackets: Callable) -> list[str]:
    """Groups flat element texts into JSON arrays for dimensions ``outer..`` of ``shape``.

    Args:
        tokens: element texts in C order.
        shape: the tensor shape.
        outer: number of leading dimensions left ungrouped; the result has
            ``prod(shape[:outer])`` items.
        brackets: ``dim -> (open, separator, close)`` for an array of dimension ``dim``.
    """
    items = tokens
    for dim in range(len(shape) - 1, outer - 1, -1):
        size, count = shape[dim], math.prod(shape[:dim])
        if size == 0:
            items = ["[]"] * count
            continue
        open_, sep, close = brackets(dim)
        items = [open_ + sep.join(items[j * size : (j + 1) * size]) + close for j in range(count)]
    return items


def _single_line(_dim: int) -> tuple[str, str, str]:
    return "[", ", ", "]"


def pretty_brackets(level: int) -> Callable[[int], tuple[str, str, str]]:
    """rapidjson PrettyWriter brackets for a tensor written at object nesting ``level``."""

    def brackets(dim: int) -> tuple[str, str, str]:
        inner = "\n" + "    " * (level + dim + 1)
        return "[" + inner, "," + inner, "\n" + "    " * (level + dim) + "]"

    return brackets


def _predictions(outputs: dict[str, np.ndarray]) -> str:
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    rows = {
        name: nest(value_tokens(name, array), array.shape, 1, _single_line)
        for name, array in outputs.items()
    }
    if not batch:
        return '{\n    "predictions": []\n}'
    if len(rows) == 1:
        (single,) = rows.values()
        return '{\n    "predictions": [' + ", ".join(single) + "\n    ]\n}"
    keys = {name: json_string(name) + ": " for name in rows}
    items = [
        "{\n            "
        + ",\n            ".join(keys[name] + rows[name][i] for name in rows)
        + "\n        }"
        for i in range(batch)
    ]
    return '{\n    "predictions": [\n        ' + ",\n        ".join(items) + "\n    ]\n}"


def _outputs(outputs: dict[str, np.ndarray]) -> str:
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        (text,) = nest(value_tokens(name, array), array.shape, 0, pretty_brackets(1))
        return '{\n    "outputs": ' + text + "\n}"
    members = [
        json_string(name)
        + ": "
        + nest(value_tokens(name, array), array.shape, 0, pretty_brackets(2))[0]
        for name, array in outputs.items()
    ]
    return '{\n    "outputs": {\n        ' + ",\n        ".join(members) + "\n    }\n}"


def encode_predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> bytes:
    """Builds the predict response body (§1.5), pretty-printed like rapidjson's PrettyWriter.

    Args:
        outputs: signature output alias -> array.
        row_format: True for ``{"predictions": ...}`` (request used ``instances``), False for
            ``{"outputs": ...}``.

    Raises:
        RestError: INVALID_ARGUMENT for an empty map, a rank-0 output or mismatched batch sizes
            in row format, or an output dtype JSON cannot carry.
    """
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    text = _predictions(outputs) if row_format else _outputs(outputs)
    return to_bytes(text)
