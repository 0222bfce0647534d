"""numpy <-> ``tensorflow.TensorProto`` for gRPC.

Outputs are written into the typed repeated fields (``float_val``, ``int64_val``, …) rather than
``tensor_content``, as TF Serving does, so clients that read ``outputs["y"].float_val`` work.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from cloudserve_runtime.errors import ServingError, invalid_argument

_FIELDS: dict[np.dtype, tuple[int, str]] = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val"),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, "int_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
}


# dtypes whose tensor_content is read straight into numpy (little-endian, as TF writes it).
_CONTENT_DTYPES: dict[int, np.dtype] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_INT32: np.dtype("<i4"),
    types_pb2.DT_INT64: np.dtype("<i8"),
}


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Converts a request TensorProto to an array (DT_STRING becomes an object array of bytes).

    Raises:
        ServingError: INVALID_ARGUMENT for a malformed or unsupported proto.
    """
    content = proto.tensor_content
    numpy_dtype = _CONTENT_DTYPES.get(proto.dtype)
    if content and numpy_dtype is not None:  # the common client encoding: raw bytes
        dims = [dim.size for dim in proto.tensor_shape.dim]
        if min(dims, default=0) >= 0 and len(content) == math.prod(dims) * numpy_dtype.itemsize:
            return np.frombuffer(content, dtype=numpy_dtype).reshape(dims).copy()
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError, KeyError, tf.errors.OpError) as exc:
        raise invalid_argument(f"Cannot parse input tensor proto: {exc}") from None


def _shape(array: np.ndarray) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
    )


def from_ndarray(array: np.ndarray, dtype: str | None = None) -> tensor_pb2.TensorProto:
    """Converts an output array to a TensorProto using the typed value fields.

    Args:
        array: the output.
        dtype: the signature's dtype enum name; only used for DT_STRING/DT_HALF/complex outputs.

    Raises:
        ServingError: INTERNAL for a dtype with no proto field.
    """
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(tensor_shape=_shape(array))
    field = _FIELDS.get(array.dtype)
    if field is not None:
        proto.dtype = field[0]
        getattr(proto, field[1]).extend(array.ravel().tolist())
        return proto
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            value.encode() if isinstance(value, str) else bytes(value) for value in array.ravel()
        )
        return proto
    if array.dtype == np.float16:
        proto.dtype = types_pb2.DT_HALF
        proto.half_val.extend(array.ravel().view(np.uint16).tolist())
        return proto
    if array.dtype.kind == "c":
        proto.dtype = types_pb2.DT_COMPLEX64 if array.dtype == np.complex64 else \
            types_pb2.DT_COMPLEX128
        target = proto.scomplex_val if array.dtype == np.complex64 else proto.dcomplex_val
        target.extend(array.ravel().view(array.real.dtype).tolist())
        return proto
    try:
        return tf.make_tensor_proto(array, dtype=types_pb2.DataType.Value(dtype) if dtype else None)
    except (TypeError, ValueError) as exc:
        raise ServingError("INTERNAL", f"Cannot convert output of type {array.dtype}: {exc}") \
            from None
