"""Tests for the pure TF Serving REST JSON codec (spec §1.2-§1.6, §2, §3)."""

from __future__ import annotations

import base64
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudserve_runtime import json_core
from cloudserve_runtime.rest_codec import (
    HTTP_STATUS,
    ExampleRequest,
    RestError,
    encode_classify_response,
    encode_error,
    encode_model_metadata,
    encode_model_status,
    encode_predict_response,
    encode_regress_response,
    parse_example_request,
    parse_predict_request,
    predict_inputs_to_tensors,
)
from tests.conftest import TESTDATA


def _error(fn, *args) -> RestError:
    with pytest.raises(RestError) as info:
        fn(*args)
    return info.value


def _tensors(body: str | bytes, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    raw = body.encode() if isinstance(body, str) else body
    return predict_inputs_to_tensors(parse_predict_request(raw), inputs)


def _tensor_error(body: str, inputs: dict[str, str]) -> RestError:
    return _error(_tensors, body, inputs)


def _loads(data: bytes):
    return json.loads(data)


# --- errors and status codes -------------------------------------------------------------------


def test_http_status_table_matches_spec():
    assert HTTP_STATUS["INVALID_ARGUMENT"] == 400
    assert HTTP_STATUS["NOT_FOUND"] == 404
    assert HTTP_STATUS["UNIMPLEMENTED"] == 501
    assert HTTP_STATUS["FAILED_PRECONDITION"] == 400
    assert HTTP_STATUS["UNAVAILABLE"] == 503
    assert HTTP_STATUS["RESOURCE_EXHAUSTED"] == 429
    assert HTTP_STATUS["DEADLINE_EXCEEDED"] == 504
    assert HTTP_STATUS["CANCELLED"] == 499
    assert HTTP_STATUS["UNAUTHENTICATED"] == 401
    assert HTTP_STATUS["ABORTED"] == 409
    assert len(HTTP_STATUS) == 17


def test_rest_error_attributes():
    err = RestError("NOT_FOUND", "gone")
    assert (err.code, err.message, err.http_status) == ("NOT_FOUND", "gone", 404)
    assert RestError("SOMETHING_ELSE", "x").http_status == 500


def test_encode_error_is_byte_exact_pretty_json():
    assert encode_error('bad "x"') == b'{\n    "error": "bad \\"x\\""\n}'
    assert _loads(encode_error("a\nb\u00e9")) == {"error": "a\nb\u00e9"}


# --- JSON parsing (steps 2-3) ------------------------------------------------------------------


def test_empty_body():
    err = _error(parse_predict_request, b"")
    assert err.code == "INVALID_ARGUMENT"
    assert "JSON Parse error: The document is empty" in err.message
    assert (
        "JSON Parse error: The document is empty" in _error(parse_predict_request, b" \n").message
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"x", "JSON Parse error: Invalid value. at offset: 0"),
        (b'{"a": 1 "b": 2}', "Missing a comma or '}' after an object member. at offset: 8"),
        (b'{"instances": [1 2]}', "Missing a comma or ']' after an array element."),
        (b'{"a" 1}', "Missing a colon after a name of object member."),
        (b'{"a": 1,}', "Missing a name for object member."),
        (b'{"a": "x', "Missing a closing quotation mark in string."),
        (b'{"a": "\\q"}', "Invalid escape character in string."),
        (b'{"a": "\\u12G4"}', "Incorrect hex digit after \\u escape in string."),
        (b'{"a": [1,]}', "Invalid value."),
    ],
)
def test_syntax_errors_use_rapidjson_texts(body, text):
    err = _error(parse_predict_request, body)
    assert err.http_status == 400
    assert text in err.message


def test_parse_error_offset_counts_bytes():
    assert "at offset: 7" in _error(parse_predict_request, '{"é": x}'.encode()).message


def test_non_object_root():
    err = _error(parse_predict_request, b"[1, 2]")
    assert err.message.startswith("JSON Value: [")
    assert err.message.endswith(" Is not object")
    assert "JSON Value: 5 Is not object" in _error(parse_predict_request, b"5").message


def test_signature_name_must_be_string():
    err = _error(parse_predict_request, b'{"signature_name": 1, "instances": [1]}')
    assert "not formatted correctly. 'signature_name' key must be a string value." in err.message


def test_signature_name_default_and_explicit():
    assert parse_predict_request(b'{"instances": [1]}').signature_name == "serving_default"
    assert parse_predict_request(b'{"signature_name": "", "inputs": 1}').signature_name == (
        "serving_default"
    )
    req = parse_predict_request(b'{"signature_name": "s", "inputs": 1}')
    assert (req.signature_name, req.row_format, req.data) == ("s", False, 1)


def test_nan_and_infinity_tokens_accepted():
    req = parse_predict_request(b'{"instances": [NaN, Infinity, -Infinity, Inf, -Inf, -NaN]}')
    values = req.data
    assert math.isnan(values[0]) and math.isnan(values[5])
    assert values[1:5] == [math.inf, -math.inf, math.inf, -math.inf]


def test_trailing_bytes_ignored_and_unknown_keys_ignored():
    req = parse_predict_request(b'{"instances": [[1.0]], "other": 3} garbage {')
    assert req.data == [[1.0]]


def test_non_utf8_bytes_pass_through_strings():
    out = _tensors(b'{"instances": ["a\xffb"]}', {"s": "DT_STRING"})
    assert out["s"].tolist() == [b"a\xffb"]


def test_deeply_nested_body_is_a_400():
    body = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _error(_tensors, body, {"x": "DT_FLOAT"}).http_status == 400


# --- instances / inputs presence (step 6, deferred past model resolution) ----------------------


def test_key_errors_are_deferred_to_tensor_conversion():
    both = parse_predict_request(b'{"instances": [1], "inputs": [1]}')
    assert both.error is not None
    err = _error(predict_inputs_to_tensors, both, {"x": "DT_FLOAT"})
    assert (
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
        in (err.message)
    )
    neither = parse_predict_request(b'{"signature_name": "s"}')
    assert (
        "Missing 'inputs' or 'instances' key"
        in _error(predict_inputs_to_tensors, neither, {"x": "DT_FLOAT"}).message
    )


def test_instances_must_be_nonempty_list():
    assert (
        "Expecting 'instances' to be an list/array"
        in _tensor_error('{"instances": 1}', {"x": "DT_FLOAT"}).message
    )
    assert (
        "No values in 'instances' array"
        in _tensor_error('{"instances": []}', {"x": "DT_FLOAT"}).message
    )


def test_signature_without_inputs():
    err = _tensor_error('{"instances": [1]}', {})
    assert "Failed to get input map for signature: serving_default" in err.message


# --- row format ----------------------------------------------------------------------------------


def test_fast_path_float_row():
    out = _tensors('{"instances": [[1.5, 2, -3e-2]]}', {"x": "DT_FLOAT"})
    assert out["x"].dtype == np.float32 and out["x"].shape == (1, 3)
    assert out["x"].tolist() == [[1.5, 2.0, np.float32(-0.03)]]


def test_plain_instances_shape_from_rows():
    out = _tensors('{"instances": [2.0, 3.0, 4.0]}', {"x": "DT_FLOAT"})
    assert out["x"].shape == (3,)
    out = _tensors('{"instances": [[[1, 2]], [[3, 4]]]}', {"x": "DT_INT32"})
    assert out["x"].shape == (2, 1, 2) and out["x"].dtype == np.int32


def test_plain_list_with_multiple_inputs():
    err = _tensor_error('{"instances": [1]}', {"a": "DT_FLOAT", "b": "DT_FLOAT"})
    assert (
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map" in err.message
    )


def test_row_size_and_shape_mismatch():
    err = _tensor_error('{"instances": [[1, 2, 3], [1, 2]]}', {"x": "DT_FLOAT"})
    assert (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 3 but got: 2" in err.message
    )
    err = _tensor_error('{"instances": [[[1, 2]], [[1], [2]]]}', {"x": "DT_FLOAT"})
    assert "Error: INVALID_ARGUMENT: Expecting shape [1,2] but got: [2,1]" in err.message
    err = _tensor_error('{"instances": [[1], 2]}', {"x": "DT_FLOAT"})
    assert "Expecting tensor size: 1 but got: 1" not in err.message
    assert "Expecting shape [1] but got: []" in err.message


def test_ragged_nesting_inside_a_row():
    err = _tensor_error('{"instances": [[[1, 2], [3]]]}', {"x": "DT_FLOAT"})
    assert "Encountered list at unexpected size: 1 at level: 1 expected size: 2" in err.message
    err = _tensor_error('{"instances": [[[1, 2], 3]]}', {"x": "DT_FLOAT"})
    assert "found at incorrect level: 2 in the JSON DOM. Expected at level: 2" in err.message
    err = _tensor_error('{"instances": [[1, [2]]]}', {"x": "DT_FLOAT"})
    assert "Encountered list at unexpected level: 1 expected < 1" in err.message


def test_row_type_error_is_wrapped():
    err = _tensor_error('{"instances": [[1.0], ["x"]]}', {"x": "DT_FLOAT"})
    assert err.code == "INVALID_ARGUMENT"
    assert (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "x" Type: String is not of expected type: float' in err.message
    )


def test_named_instances():
    body = '{"instances": [{"a": 1, "b": "x"}, {"b": {"b64": "aGk="}, "a": 2}]}'
    out = _tensors(body, {"a": "DT_INT64", "b": "DT_STRING"})
    assert out["a"].tolist() == [1, 2] and out["a"].dtype == np.int64
    assert out["b"].tolist() == [b"x", b"hi"] and out["b"].dtype == object


def test_named_instances_unknown_and_missing_keys():
    inputs = {"a": "DT_INT64", "b": "DT_STRING"}
    err = _tensor_error('{"instances": [{"a": 1, "b": "x"}, {"a": 2, "c": 1}]}', inputs)
    assert (
        "Failed to process element: 1 key: c of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON object: does not have named input: c" in err.message
    )
    err = _tensor_error('{"instances": [{"a": 1, "b": "x"}, {"b": "y"}]}', inputs)
    assert "Failed to process element: 1 of 'instances' list. JSON object: {" in err.message
    assert "keys must be equal to: a,b" in err.message


def test_mixed_row_modes():
    inputs = {"a": "DT_FLOAT"}
    err = _tensor_error('{"instances": [{"a": 1}, [1]]}', inputs)
    assert "Expecting object but got list at item 1 of input list" in err.message
    err = _tensor_error('{"instances": [[1], {"a": 1}]}', inputs)
    assert "Expecting value/list but got object at item 1 of input list" in err.message


def test_b64_first_element_means_plain_mode():
    out = _tensors('{"instances": [{"b64": "YQ=="}, "b"]}', {"s": "DT_STRING"})
    assert out["s"].tolist() == [b"a", b"b"]


def test_unsupported_dtype_row_wrapped_as_400():
    err = _tensor_error('{"instances": [[1, 2]]}', {"x": "DT_HALF"})
    assert err.http_status == 400
    assert "Error: UNIMPLEMENTED: Conversion of JSON Value: 1 to type: half" in err.message


# --- columnar format ------------------------------------------------------------------------------


def test_columnar_scalar_and_lists():
    out = _tensors('{"inputs": 3.5}', {"x": "DT_FLOAT"})
    assert out["x"].shape == () and float(out["x"]) == 3.5
    out = _tensors(
        '{"inputs": {"a": [[1, 2]], "b": true, "extra": 1}}', {"a": "DT_INT32", "b": "DT_BOOL"}
    )
    assert out["a"].shape == (1, 2) and out["b"].shape == () and bool(out["b"]) is True


def test_columnar_errors():
    inputs = {"a": "DT_FLOAT", "b": "DT_FLOAT"}
    err = _tensor_error('{"inputs": [1]}', inputs)
    assert (
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map" in err.message
    )
    err = _tensor_error('{"inputs": {"a": 1}}', inputs)
    assert "Missing named input: b in 'inputs' object." in err.message


def test_columnar_unsupported_dtype_is_501():
    err = _tensor_error('{"inputs": [1.0]}', {"x": "DT_COMPLEX64"})
    assert err.code == "UNIMPLEMENTED" and err.http_status == 501
    assert "Conversion of JSON Value: 1.0 to type: complex64" in err.message
    assert _tensor_error('{"inputs": []}', {"x": "DT_HALF"}).http_status == 501
    object_err = _tensor_error('{"inputs": [{"k": 1}]}', {"x": "DT_HALF"})
    assert object_err.http_status == 400 and "Type: Object" in object_err.message


# --- value conversion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype", "expected", "np_dtype"),
    [
        ("[1, 2.5]", "DT_FLOAT", [1.0, 2.5], np.float32),
        ("[1, 2.5]", "DT_DOUBLE", [1.0, 2.5], np.float64),
        ("[1e39, -1e39]", "DT_FLOAT", [math.inf, -math.inf], np.float32),
        ("[1e-50]", "DT_FLOAT", [0.0], np.float32),
        ("[2147483647, -2147483648]", "DT_INT32", [2147483647, -2147483648], np.int32),
        ("[300, -129, 5]", "DT_INT8", [44, 127, 5], np.int8),
        ("[255, 256]", "DT_UINT8", [255, 0], np.uint8),
        ("[40000]", "DT_INT16", [-25536], np.int16),
        ("[9223372036854775807]", "DT_INT64", [9223372036854775807], np.int64),
        ("[4294967295]", "DT_UINT32", [4294967295], np.uint32),
        ("[18446744073709551615]", "DT_UINT64", [18446744073709551615], np.uint64),
        ("[true, false]", "DT_BOOL", [True, False], np.bool_),
        ('["h\\u00e9", {"b64": "AAE="}]', "DT_STRING", ["hé".encode(), b"\x00\x01"], object),
    ],
)
def test_value_conversion(value, dtype, expected, np_dtype):
    out = _tensors('{"inputs": ' + value + "}", {"x": dtype})["x"]
    assert out.dtype == np_dtype
    assert out.tolist() == expected


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        ('"x"', "DT_FLOAT", 'JSON Value: "x" Type: String is not of expected type: float'),
        ("null", "DT_FLOAT", "JSON Value: null Type: Null is not of expected type: float"),
        ("true", "DT_DOUBLE", "JSON Value: true Type: True is not of expected type: double"),
        ("1.0", "DT_INT32", "JSON Value: 1.0 Type: Number is not of expected type: int32"),
        ("2147483648", "DT_INT32", "Type: Number is not of expected type: int32"),
        ("1.5", "DT_INT8", "Type: Number is not of expected type: int8"),
        ("9223372036854775808", "DT_INT64", "Type: Number is not of expected type: int64"),
        ("-1", "DT_UINT32", "JSON Value: -1 Type: Number is not of expected type: uint32"),
        ("-1", "DT_UINT64", "Type: Number is not of expected type: uint64"),
        ("1", "DT_BOOL", "JSON Value: 1 Type: Number is not of expected type: bool"),
        ("false", "DT_STRING", "JSON Value: false Type: False is not of expected type: string"),
        ("[1]", "DT_STRING", "Type: Number is not of expected type: string"),
        ('[{"k": 1}]', "DT_FLOAT", "Type: Object is not of expected type: float"),
    ],
)
def test_type_errors(value, dtype, text):
    err = _tensor_error('{"inputs": ' + value + "}", {"x": dtype})
    assert err.code == "INVALID_ARGUMENT"
    assert text in err.message


def test_b64_errors():
    err = _tensor_error('{"inputs": [{"b64": "x", "y": 1}]}', {"x": "DT_STRING"})
    assert "not formatted correctly for base64 data" in err.message
    err = _tensor_error('{"inputs": [{"b64": 1}]}', {"x": "DT_STRING"})
    assert "not formatted correctly for base64 data" in err.message
    err = _tensor_error('{"inputs": {"b64": "!!"}}', {"x": "DT_STRING"})
    assert "Unable to base64 decode" in err.message
    out = _tensors('{"inputs": {"b64": "aGk"}}', {"x": "DT_STRING"})
    assert out["x"].tolist() == b"hi"


# --- predict response ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (3, np.float32, "3.0"),
        (9000000, np.float32, "9e+06"),
        (0.00003, np.float32, "3e-05"),
        (555557.5, np.float32, "555557.5"),
        (0.2, np.float32, "0.2"),
        (1.2345678, np.float32, "1.23456776"),
        (-0.0, np.float32, "-0.0"),
        (1234567, np.float32, "1234567.0"),
        (123456.7, np.float32, "123456.703"),
        (0.1, np.float64, "0.1"),
        (1 / 3, np.float64, "0.33333333333333331"),
        (1e20, np.float64, "1e+20"),
        (math.nan, np.float32, "NaN"),
        (math.inf, np.float64, "Infinity"),
        (-math.inf, np.float32, "-Infinity"),
    ],
)
def test_float_formatting(value, dtype, text):
    body = encode_predict_response({"y": np.array([value], dtype=dtype)}, True)
    assert body == b'{\n    "predictions": [' + text.encode() + b"\n    ]\n}"


def test_spec_exact_bytes():
    row = encode_predict_response({"y": np.array([2.5, 3.0, 4.5], np.float32)}, True)
    assert row == b'{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}'
    col = encode_predict_response({"y": np.array([3.0, 3.5, 4.0], np.float32)}, False)
    assert col == b'{\n    "outputs": [\n        3.0,\n        3.5,\n        4.0\n    ]\n}'


def test_nonfinite_output_is_bare_tokens():
    body = encode_predict_response({"y": np.array([[math.nan, math.inf, -math.inf]])}, True)
    assert b"[NaN, Infinity, -Infinity]" in body
    parsed = json.loads(body)  # Python accepts the bare tokens too
    assert math.isnan(parsed["predictions"][0][0])


def test_row_outputs_single_and_multiple():
    y = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert _loads(encode_predict_response({"y": y}, True)) == {"predictions": [[1, 2], [3, 4]]}
    out = {"y": y, "k": np.array([7, 8], np.int64), "b": np.array([True, False])}
    assert _loads(encode_predict_response(out, True)) == {
        "predictions": [{"y": [1, 2], "k": 7, "b": True}, {"y": [3, 4], "k": 8, "b": False}]
    }


def test_columnar_outputs():
    out = {"y": np.array(2.5, np.float32), "z": np.array([[1, 2]], np.int32)}
    assert _loads(encode_predict_response(out, False)) == {"outputs": {"y": 2.5, "z": [[1, 2]]}}
    single = {"s": np.array([b"a", "é".encode()], dtype=object)}
    assert _loads(encode_predict_response(single, False)) == {"outputs": ["a", "é"]}
    empty = {"y": np.zeros((2, 0), np.float32)}
    assert _loads(encode_predict_response(empty, False)) == {"outputs": [[], []]}


def test_bytes_suffix_outputs_b64():
    out = {"img_bytes": np.array([b"\x00\xff", b"ab"], dtype=object)}
    assert _loads(encode_predict_response(out, True)) == {
        "predictions": [{"b64": "AP8="}, {"b64": "YWI="}]
    }
    raw = encode_predict_response({"s": np.array([b"\xff"], dtype=object)}, True)
    assert raw == b'{\n    "predictions": ["\xff"\n    ]\n}'


def test_int64_outputs_are_numbers():
    big = np.array([2**62, -(2**63)], np.int64)
    assert _loads(encode_predict_response({"k": big}, False)) == {"outputs": [2**62, -(2**63)]}
    u64 = np.array([2**64 - 1], np.uint64)
    assert _loads(encode_predict_response({"k": u64}, True)) == {"predictions": [2**64 - 1]}


def test_row_output_errors():
    err = _error(encode_predict_response, {"y": np.array(1.0)}, True)
    assert "Tensor name: y has no shape information " in err.message
    err = _error(encode_predict_response, {"y": np.zeros(2), "z": np.zeros(3)}, True)
    assert "Tensor name: z has inconsistent batch size: 3 expecting: 2" in err.message
    assert _loads(encode_predict_response({"y": np.zeros((0, 3))}, True)) == {"predictions": []}


def test_unsupported_output_dtype():
    err = _error(encode_predict_response, {"y": np.zeros(2, np.complex64)}, False)
    assert err.http_status == 400
    assert "Failed to write JSON value for tensor type: complex64" in err.message
    err = _error(encode_predict_response, {"y": np.zeros(2, np.float16)}, False)
    assert "tensor type: half" in err.message


def _reference_token(value: float, single: bool) -> str:
    """TF Serving's WriteDecimal, written the obvious way (one value at a time)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"
    parsed = float(text)
    if single:
        parsed = struct.unpack("f", struct.pack("f", parsed))[0]
    if parsed != value:
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
_decimals = st.decimals(-1e7, 1e7, places=3, allow_nan=False, allow_infinity=False).map(float)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_f32, _decimals, st.integers(-(10**7), 10**7)), max_size=200))
def test_vectorised_float32_formatting_matches_reference(values):
    flat = np.array(values, dtype=np.float32)
    expected = [_reference_token(v, True) for v in flat.tolist()]
    assert json_core.float_tokens(flat) == expected
    assert json_core._exact_tokens(flat.tolist(), True) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(), max_size=60))
def test_float64_formatting_matches_reference(values):
    flat = np.array(values, dtype=np.float64)
    assert json_core.float_tokens(flat) == [_reference_token(v, False) for v in values]


# --- classify / regress ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_pb2():
    from tensorflow.core.example import example_pb2 as module

    return module


def test_examples_to_tf_example(example_pb2):
    body = (
        b'{"signature_name": "regress_x_to_y", "examples": [{"x": 2.0, "n": [1, 2], "t": true,'
        b' "s": "abc", "b": {"b64": "aGk="}, "e": [], "big": 1e300, "neg": -5}]}'
    )
    req = parse_example_request(body, "regress")
    assert isinstance(req, ExampleRequest)
    assert req.signature_name == "regress_x_to_y" and req.context is None
    (serialized,) = req.examples
    feature = example_pb2.Example.FromString(serialized).features.feature
    assert list(feature["x"].float_list.value) == [2.0]
    assert list(feature["n"].int64_list.value) == [1, 2]
    assert list(feature["t"].int64_list.value) == [1]
    assert list(feature["s"].bytes_list.value) == [b"abc"]
    assert list(feature["b"].bytes_list.value) == [b"hi"]
    assert feature["e"].WhichOneof("kind") is None
    assert list(feature["big"].float_list.value) == [math.inf]
    assert list(feature["neg"].int64_list.value) == [-5]


def test_examples_with_context(example_pb2):
    req = parse_example_request(
        b'{"context": {"c": "v"}, "examples": [{"x": [1.5, 2.5]}]}', "classify"
    )
    context = example_pb2.Example.FromString(req.context).features.feature
    assert list(context["c"].bytes_list.value) == [b"v"]
    example = example_pb2.Example.FromString(req.examples[0]).features.feature
    assert list(example["x"].float_list.value) == [1.5, 2.5]


@pytest.mark.parametrize("method", ["classify", "regress"])
def test_missing_examples_says_classify(method):
    err = _error(parse_example_request, b'{"example": []}', method)
    assert "When method is classify, key 'examples' is expected and was not found" in err.message


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"examples": {}}', "Expecting 'examples' value to be an list/array"),
        (b'{"examples": []}', "'examples' value is an empty array"),
        (b'{"examples": [[1]]}', "Example must be JSON object but got JSON Array"),
        (b'{"examples": [{"f": null}]}', "Feature: f has element with unexpected JSON type: Null"),
        (
            b'{"examples": [{"f": [[1]]}]}',
            "Feature: f has element with unexpected JSON type: Array",
        ),
        (b'{"examples": [{"f": {"a": 1}}]}', "has element with unexpected JSON type: Object"),
        (
            b'{"examples": [{"f": [1, 2.0]}]}',
            "Unexpected element type in feature: f expecting type: int64",
        ),
        (
            b'{"examples": [{"f": [2.0, "a"]}]}',
            "Unexpected element type in feature: f expecting type: float",
        ),
        (b'{"examples": [{"f": ["a", true]}]}', "expecting type: bytes"),
        (b'{"examples": [{"f": 18446744073709551615}]}', "Only int64_t is supported."),
        (b'{"examples": [{"f": {"b64": "%"}}]}', "Unable to base64 decode"),
        (b'{"context": [1], "examples": [{}]}', "Example must be JSON object but got JSON Array"),
        (
            b'{"signature_name": 5, "examples": [{}]}',
            "'signature_name' key must be a string value.",
        ),
        (b"", "JSON Parse error: The document is empty"),
    ],
)
def test_example_errors(body, text):
    err = _error(parse_example_request, body, "classify")
    assert err.http_status == 400
    assert text in err.message


def test_classify_response():
    scores = np.array([[0.5], [1.5]], np.float32)
    assert encode_classify_response(None, scores) == (
        b'{\n    "results": [[["", 0.5]], [["", 1.5]]\n    ]\n}'
    )
    classes = np.array([[b"a", b"b"]], dtype=object)
    both = encode_classify_response(classes, np.array([[0.25, 3]], np.float32))
    assert _loads(both) == {"results": [[["a", 0.25], ["b", 3.0]]]}
    assert _loads(encode_classify_response(classes, None)) == {
        "results": [[["a", 0.0], ["b", 0.0]]]
    }
    err = _error(encode_classify_response, None, np.zeros((0, 1), np.float32))
    assert "Cannot convert empty ClassificationResults to JSON" in err.message
    assert "Cannot convert empty" in _error(encode_classify_response, None, None).message


def test_regress_response():
    body = encode_regress_response(np.array([[3.0], [3.5]], np.float32))
    assert body == b'{\n    "results": [3.0, 3.5]\n}'
    err = _error(encode_regress_response, np.zeros((0,), np.float32))
    assert "Cannot convert empty RegressionResults to JSON" in err.message


# --- status and metadata -------------------------------------------------------------------------


def test_model_status_sorted_descending_with_string_versions():
    body = encode_model_status([(1, "END", "UNKNOWN", "load failed"), (3, "AVAILABLE", "OK", "")])
    assert _loads(body) == {
        "model_version_status": [
            {
                "version": "3",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "1",
                "state": "END",
                "status": {"error_code": "UNKNOWN", "error_message": "load failed"},
            },
        ]
    }
    assert body.startswith(b'{\n "model_version_status": [\n  {\n   "version": "3",')


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_sorted(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def test_model_metadata_matches_tf_serving_testdata():
    from tensorflow.core.protobuf import saved_model_pb2

    pb = TESTDATA / "saved_model_half_plus_two_cpu" / "00000123" / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    signature_defs = dict(saved_model.meta_graphs[0].signature_def)
    body = encode_model_metadata("default", 123, signature_defs)
    expected = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
    assert _sorted(json.loads(body)) == _sorted(expected)


# --- robustness: every failure is a RestError with a 4xx/501 status -------------------------------

_DTYPE_NAMES = [
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT8",
    "DT_INT32",
    "DT_INT64",
    "DT_UINT64",
    "DT_BOOL",
    "DT_STRING",
    "DT_HALF",
    "DT_COMPLEX64",
]
_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=5),
    st.builds(lambda s: {"b64": s}, st.sampled_from(["", "YQ==", "YQ", "!", "a"])),
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "b64", "x", "instances"]), children, max_size=3
        )
    ),
    max_leaves=20,
)
_bodies = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda key, value, sig: json.dumps({key: value, **sig}).encode(),
        st.sampled_from(["instances", "inputs", "examples", "context"]),
        _json_values,
        st.sampled_from([{}, {"signature_name": "s"}, {"signature_name": 1}, {"inputs": 1}]),
    ),
    _json_values.map(lambda v: json.dumps(v).encode()),
)


def _assert_client_error(err: RestError) -> None:
    assert 400 <= err.http_status < 500 or err.http_status == 501, err


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _bodies,
    st.dictionaries(
        st.sampled_from(["a", "b", "x", "b64"]),
        st.sampled_from(_DTYPE_NAMES),
        min_size=1,
        max_size=3,
    ),
)
def test_predict_never_raises_anything_but_rest_error(body, inputs):
    try:
        predict_inputs_to_tensors(parse_predict_request(body), inputs)
    except RestError as err:
        _assert_client_error(err)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies, st.sampled_from(["classify", "regress"]))
def test_examples_never_raise_anything_but_rest_error(body, method):
    try:
        parse_example_request(body, method)
    except RestError as err:
        _assert_client_error(err)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8]),
    st.lists(st.integers(0, 3), min_size=0, max_size=3),
    st.booleans(),
)
def test_encode_round_trips_through_json(dtype, shape, row_format):
    array = (np.arange(math.prod(shape)) * 0.5 - 1).astype(dtype).reshape(shape)
    try:
        body = encode_predict_response({"y": array}, row_format)
    except RestError as err:
        assert row_format and array.ndim == 0
        assert err.http_status == 400
        return
    parsed = json.loads(body)
    assert parsed == {("predictions" if row_format else "outputs"): array.tolist()}


def test_b64_roundtrip_helper_matches_stdlib():
    data = bytes(range(256))
    text = base64.b64encode(data).decode()
    assert json_core.decode_b64_object({"b64": text}) == data
    assert json_core.decode_b64_object({"b64": text.rstrip("=")}) == data
