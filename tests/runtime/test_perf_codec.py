"""The fast predict decoding (orjson, numbers straight to numpy, sliced large bodies) gives the
same tensors, and the same errors, as the exact parser for every body."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cloudserve_runtime import json_tensor
from cloudserve_runtime.json_core import RestError, float_tokens

FLOAT = {"x": "DT_FLOAT"}


def _outcome(parse, body: bytes, inputs: dict[str, str]) -> tuple:
    try:
        request = parse(body)
        tensors = json_tensor.predict_inputs_to_tensors(request, inputs)
    except RestError as error:
        return ("error", error.code, error.message)
    return ("ok", request.row_format, request.signature_name, tensors)


def assert_same(body: bytes, inputs: dict[str, str] = FLOAT) -> tuple:
    exact = _outcome(json_tensor.parse_predict_request, body, inputs)
    fast = _outcome(json_tensor.decode_predict_request, body, inputs)
    assert exact[:3] == fast[:3]
    if exact[0] == "ok":
        assert exact[3].keys() == fast[3].keys()
        for name, want in exact[3].items():
            got = fast[3][name]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    return fast


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1,2],[3,4]]}',
        b'{"instances": [[1,2],[3]]}',
        b'{"instances": [[1, [2]]]}',
        b'{"instances": [[1, 2], 5]}',
        b'{"instances": [1, [2]]}',
        b'{"instances": [[1, 2], [3, [4]]]}',
        b'{"instances": [[], []]}',
        b'{"inputs": [[[1, 2]], [[3, 4]], [[5, 6, 7]]]}',
        b'{"instances": []}',
        b'{"instances": [[]]}',
        b'{"inputs": []}',
        b'{"inputs": 5}',
        b'{"inputs": [[1.5e3, -0],[ -0.0, 2]]}',
        b'{"instances": [1, 2, 3]}',
        b'{"instances": [[1,2]], "signature_name": "serving_default"}',
        b'{"instances": [NaN, Infinity, -Inf]}',
        b'{"instances": [1e400, -1e400]}',
        b'{"instances": [[1,2],[3,4]]} trailing bytes',
        b'{"instances": [[true, 1]]}',
        b'{"instances": [[null, 1]]}',
        b'{"instances": [[1, 2],]}',
        b'  {"instances" : [ [ 1 , 2 ] , [ 3 , 4 ] ] }  ',
        b'{"instances": [123456789012345678901234567890]}',
        b'{"instances": [9007199254740993, 16777217, 3.4e39, 1e-50]}',
        b'{"instances": [[1,2]], "instances": [[3]]}',
        b'{"instances": [01]}',
        b'{"instances": [1.]}',
        b'{"instances": [-]}',
        b"[1, 2]",
        b"",
        b'{"inputs": [[1,2]], "instances": [[1,2]]}',
        b'{"instances": [{"x": [1.0]}]}',
    ],
)
def test_fast_decoding_matches_the_exact_parser(body: bytes) -> None:
    assert_same(body)


@pytest.mark.parametrize(
    "inputs",
    [{"a": "DT_FLOAT", "b": "DT_FLOAT"}, {"a": "DT_INT32"}, {"a": "DT_DOUBLE"}, {"a": "DT_STRING"}],
)
@pytest.mark.parametrize("body", [b'{"instances": [[1,2]]}', b'{"inputs": [[1.5,2]]}'])
def test_numbers_fit_only_one_float_input_else_the_exact_path(
    body: bytes, inputs: dict[str, str]
) -> None:
    assert_same(body, inputs)


def test_random_floats_convert_exactly() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        values = rng.standard_normal(60) * 10.0 ** rng.integers(-45, 45, 60)
        assert_same(json.dumps({"instances": values.reshape(6, 10).tolist()}).encode())
        text = ",".join(repr(float(v)) for v in rng.random(20) * 1e6)
        assert_same(b'{"inputs": [' + text.encode() + b"]}", {"x": "DT_DOUBLE"})


@pytest.mark.parametrize("shape", [(20000, 32), (3000, 8, 8, 3), (300000,)])
def test_large_bodies_are_parsed_in_slices(shape: tuple[int, ...]) -> None:
    values = np.round(np.random.default_rng(2).random(shape), 4)
    body = json.dumps({"instances": values.tolist()}).encode()
    assert len(body) > 2 * json_tensor.SLICE_BYTES
    request = assert_same(body)
    np.testing.assert_array_equal(request[3]["x"], values.astype(np.float32))


@pytest.mark.parametrize("damage", ["short row", "nested leaf", "string leaf"])
def test_a_bad_row_deep_in_a_large_body_gets_the_exact_error(damage: str) -> None:
    rows = np.round(np.random.default_rng(4).random((20000, 32)), 4).tolist()
    if damage == "short row":
        rows[15000] = rows[15000][:-1]
    elif damage == "nested leaf":
        rows[15000][3] = [1.0]
    else:
        rows[15000][3] = "1.0"
    outcome = assert_same(json.dumps({"instances": rows}).encode())
    assert outcome[0] == "error" and "15000" in outcome[2]


def test_large_float_outputs_format_like_small_ones() -> None:
    values = np.random.default_rng(5).standard_normal(200_000).astype(np.float32)
    sliced = float_tokens(values)
    assert len(sliced) == values.size
    assert sliced[:1000] == float_tokens(values[:1000])
    assert sliced[-1000:] == float_tokens(values[-1000:])
