"""Shared pieces of the TF-Serving REST JSON codec: errors, parsing, value printing.

Everything here is pure (no I/O) and numpy-only. The rules follow TensorFlow Serving's REST
layer (spec §1.2-§1.6): rapidjson-compatible parsing (bare ``NaN``/``Infinity``/``Inf`` accepted,
trailing bytes after the root value ignored), rapidjson-style parse error texts, and TF Serving's
float printing (``%g``, else ``%.9g``/``%.17g``, ``.0`` appended to whole numbers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from array import array
from typing import Any

import numpy as np

from cloudserve_runtime.limits import MAX_ECHO_CHARS, TRUNCATED

HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
"""absl status code name -> HTTP status, as TF Serving's ``ToHTTPStatusCode`` maps them."""

INVALID_ARGUMENT = "INVALID_ARGUMENT"
UNIMPLEMENTED = "UNIMPLEMENTED"


class RestError(Exception):
    """A request failure carrying an absl status code name and TF Serving's message text.

    Attributes:
        code: absl code name, e.g. ``"INVALID_ARGUMENT"`` or ``"NOT_FOUND"``.
        message: the error text exactly as TF Serving words it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """HTTP status for ``code`` (§1.2); unknown codes map to 500."""
        return HTTP_STATUS.get(self.code, 500)


def invalid(message: str) -> RestError:
    """Returns an INVALID_ARGUMENT ``RestError`` with ``message``."""
    return RestError(INVALID_ARGUMENT, message)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_JSON_WS = " \t\n\r"
# rapidjson also accepts `Inf`, `-Inf` and `-NaN`; Python's decoder needs them spelled out.
_EXTRA_CONSTANTS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Inf(?:inity)?|-NaN')
_CONTAINER_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_PY_TO_RAPIDJSON = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


def _spell_out_constant(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"'):
        return token
    if token == "-NaN":
        return "NaN"
    return "-Infinity" if token.startswith("-") else "Infinity"


def _innermost_container(text: str, pos: int) -> str:
    """Returns ``"["`` or ``"{"``: the container still open at ``pos`` (strings skipped)."""
    stack: list[str] = []
    for match in _CONTAINER_TOKENS.finditer(text, 0, pos):
        token = match.group()
        if token in "[{":
            stack.append(token)
        elif token in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "["


def _parse_error(text: str, err: json.JSONDecodeError) -> RestError:
    if err.msg == "Expecting ',' delimiter":
        if _innermost_container(text, err.pos) == "{":
            what = "Missing a comma or '}' after an object member."
        else:
            what = "Missing a comma or ']' after an array element."
    else:
        what = _PY_TO_RAPIDJSON.get(err.msg, "Invalid value.")
    offset = len(text[: err.pos].encode("utf-8", "surrogatepass"))
    return invalid(f"JSON Parse error: {what} at offset: {offset}")


def parse_json(body: bytes) -> Any:
    """Parses a request body the way TF Serving's rapidjson setup does.

    Bytes that are not valid UTF-8 pass through inside strings (as surrogate escapes, restored
    by :func:`to_bytes`). Bare ``NaN``, ``-NaN``, ``Infinity``, ``-Infinity``, ``Inf`` and
    ``-Inf`` are numbers. Anything after the first complete value is ignored.

    Args:
        body: the raw HTTP request body.

    Returns:
        The parsed value (any JSON type; the callers check for an object).

    Raises:
        RestError: INVALID_ARGUMENT ``JSON Parse error: ...`` for an empty body or bad syntax.
    """
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    text = body.decode("utf-8", "surrogateescape")
    start = len(text) - len(text.lstrip(_JSON_WS))
    if start == len(text):
        raise invalid(f"JSON Parse error: The document is empty. at offset: {len(body)}")
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError as err:
        constant = _EXTRA_CONSTANTS.match(text, err.pos)
        if constant is None or constant.group().startswith('"'):
            raise _parse_error(text, err) from None
        text = _EXTRA_CONSTANTS.sub(_spell_out_constant, text)
    except RecursionError:
        raise invalid("JSON Parse error: Nesting is too deep. at offset: 0") from None
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError as err:
        raise _parse_error(text, err) from None
    except RecursionError:
        raise invalid("JSON Parse error: Nesting is too deep. at offset: 0") from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parses ``body`` and requires an object root (predict/classify/regress step 2).

    Raises:
        RestError: parse errors, or ``JSON Value: <dbg> Is not object``.
    """
    doc = parse_json(body)
    if type(doc) is not dict:
        raise invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def signature_name_of(doc: dict[str, Any]) -> str:
    """Returns the request's ``signature_name``; missing or ``""`` means ``serving_default``.

    Raises:
        RestError: ``... 'signature_name' key must be a string value.`` for a non-string.
    """
    name = doc.get("signature_name", "")
    if type(name) is not str:
        raise invalid(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name or "serving_default"


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

_JSON_TYPE_NAMES = {
    type(None): "Null",
    dict: "Object",
    list: "Array",
    str: "String",
    int: "Number",
    float: "Number",
}


def json_type_name(value: Any) -> str:
    """rapidjson's name for a value's type: Null, False, True, Object, Array, String or Number."""
    if value is True:
        return "True"
    if value is False:
        return "False"
    return _JSON_TYPE_NAMES[type(value)]


def is_b64_object(value: Any) -> bool:
    """True for ``{"b64": "<str>"}``: exactly one key, ``b64``, holding a string."""
    return type(value) is dict and len(value) == 1 and type(value.get("b64")) is str


_B64_CHARS = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_b64_object(value: Any) -> bytes:
    """Decodes a ``{"b64": ...}`` object (standard alphabet; padding optional).

    Raises:
        RestError: ``JSON Value: <dbg> not formatted correctly for base64 data`` when ``value``
            is not a b64 object, ``Unable to base64 decode`` when the text is not base64.
    """
    if not is_b64_object(value):
        raise invalid(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    text = value["b64"]
    stripped = text.rstrip("=")
    if (
        not _B64_CHARS.fullmatch(text)
        or len(stripped) % 4 == 1
        or (len(text) != len(stripped) and len(text) % 4)
    ):
        raise invalid("Unable to base64 decode")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error:
        raise invalid("Unable to base64 decode") from None


def to_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; surrogate escapes become raw bytes, lone surrogates WTF-8."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return b"".join(
            ch.encode("utf-8", "surrogateescape" if "\udc80" <= ch <= "\udcff" else "surrogatepass")
            for ch in text
        )


def json_string(data: bytes | str) -> str:
    """A JSON string literal for ``data``; bytes that are not UTF-8 are kept as raw bytes.

    The result is a ``str`` whose surrogate escapes turn back into the raw bytes when the
    response is encoded with :func:`to_bytes`.
    """
    if type(data) is not str:
        data = data.decode("utf-8", "surrogateescape")
    return json.dumps(data, ensure_ascii=False)


class _EchoFull(Exception):
    """Stops :func:`debug_string` once it has written its cap."""


def _put(out: list[str], budget: list[int], text: str) -> None:
    out.append(text)
    budget[0] -= len(text)
    if budget[0] < 0:
        raise _EchoFull


def _debug_lines(value: Any, level: int, out: list[str], budget: list[int]) -> None:
    if type(value) is list or type(value) is dict:
        if not value:
            _put(out, budget, "[]" if type(value) is list else "{}")
            return
        inner = "\n" + "    " * (level + 1)
        items = value if type(value) is list else value.items()
        _put(out, budget, "[" if type(value) is list else "{")
        for i, item in enumerate(items):
            _put(out, budget, inner if i == 0 else "," + inner)
            if type(value) is dict:
                _put(out, budget, json_string(item[0]) + ": ")
                item = item[1]
            _debug_lines(item, level + 1, out, budget)
        _put(out, budget, "\n" + "    " * level + ("]" if type(value) is list else "}"))
    elif type(value) is float:
        _put(out, budget, format_double(value))
    elif type(value) is str:
        _put(out, budget, json_string(value))
    else:
        _put(out, budget, json.dumps(value))


def debug_string(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """TF Serving's ``JsonValueToString``: a 4-space pretty print used inside error texts.

    Request values are echoed back in errors, so the text is cut after ``limit`` characters
    and ends in ``...TRUNCATED`` (a deeply nested value would otherwise print to hundreds of
    MB); the work done is bounded by the cap as well, not by the size of ``value``.
    """
    out: list[str] = []
    try:
        _debug_lines(value, 0, out, [limit])
    except RecursionError:
        return "<value nested too deeply to print>"
    except _EchoFull:
        return "".join(out)[:limit] + TRUNCATED
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Float printing (TF Serving's WriteDecimal)
# ---------------------------------------------------------------------------------------------

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_SEP = ","
_TEMPLATES: dict[tuple[str, int], str] = {}
# Codes used by the vectorised float32 path: whole numbers, %g round-trips, needs %.9g.
_F32_SPECS = ("%.1f", "%g", "%.9g")
_VECTOR_MIN = 48  # below this the per-call numpy overhead outweighs the gain
_SMALL = 8  # up to this many values are formatted one by one (no template, no split)
_SLICE_VALUES = 1 << 16  # larger arrays are formatted this many values at a time


def _template(spec: str, count: int) -> str:
    template = _TEMPLATES.get((spec, count))
    if template is None:
        template = _SEP.join([spec] * count)
        if count <= 1024:
            _TEMPLATES[(spec, count)] = template
    return template


def _one_token(value: float, single: bool) -> str:
    """One value by the WriteDecimal rule: :func:`_exact_tokens` for a single value."""
    token = format(value, "g")
    parsed = float(token)
    same = array("f", (parsed,)) == array("f", (value,)) if single else parsed == value
    if not same:
        token = format(value, ".9g" if single else ".17g")
    if "." not in token and "e" not in token:
        token = _NON_FINITE.get(token) or token + ".0"
    return token


def _exact_tokens(values: list[float], single: bool) -> list[str]:
    """Formats each value by the WriteDecimal rule, checking the %g round trip exactly."""
    if len(values) <= _SMALL:
        return [_one_token(value, single) for value in values]
    tokens = (_template("%g", len(values)) % tuple(values)).split(_SEP)
    if single:
        back: Any = array("f", map(float, tokens))
        ref: Any = array("f", values)
        long_spec = "%.9g"
    else:
        back, ref, long_spec = list(map(float, tokens)), values, "%.17g"
    if back != ref:
        long_tokens = (_template(long_spec, len(values)) % tuple(values)).split(_SEP)
        tokens = [
            short if parsed == value else full
            for short, full, parsed, value in zip(tokens, long_tokens, back, ref, strict=True)
        ]
    for i, token in enumerate(tokens):
        if "." not in token and "e" not in token:
            tokens[i] = _NON_FINITE.get(token) or token + ".0"
    return tokens


def _float32_codes(flat: np.ndarray) -> np.ndarray | None:
    """Per-element format codes (see ``_F32_SPECS``) for finite float32 values.

    The 6-digit round trip is decided arithmetically: ``r = rint(|v| * 10**k)`` with
    ``k = 5 - floor(log10|v|)`` and ``float32(r / 10**k) == |v|``. For ``1e-16 <= |v| < 1e6``
    (and zero) ``10**k`` is exact, so ``r / 10**k`` is the correctly rounded double of the %g
    text whenever the round trip can succeed, which makes the test agree with parsing the text.
    Returns None when some value is outside that range or not finite.
    """
    mag = np.abs(flat, dtype=np.float64)
    low, high = mag.min(), mag.max()
    if not high < 1e6 or (low < 1e-16 and np.any((mag > 0) & (mag < 1e-16))):
        return None
    scale = np.power(10.0, 5.0 - np.floor(np.log10(np.maximum(mag, 1e-16))))
    round_trips = (np.rint(mag * scale) / scale).astype(np.float32) == np.abs(flat)
    return np.where(mag == np.floor(mag), 0, 2 - round_trips)


def float_tokens(flat: np.ndarray) -> list[str]:
    """JSON number texts for a 1-D float32 or float64 array, by TF Serving's rule.

    ``%g``; if that does not parse back to the same value, ``%.9g`` (float32) or ``%.17g``
    (float64); ``.0`` appended when the text has neither ``.`` nor ``e``; non-finite values as
    bare ``NaN``, ``Infinity`` and ``-Infinity``.
    """
    if flat.size > _SLICE_VALUES:  # no single C call (holding the GIL) runs for long
        tokens: list[str] = []
        for start in range(0, flat.size, _SLICE_VALUES):
            tokens += float_tokens(flat[start : start + _SLICE_VALUES])
        return tokens
    values = flat.tolist()
    single = flat.dtype == np.float32
    if single and len(values) >= _VECTOR_MIN:
        codes = _float32_codes(flat)
        if codes is not None:
            template = _SEP.join(map(_F32_SPECS.__getitem__, codes.tolist()))
            return (template % tuple(values)).split(_SEP)
    return _exact_tokens(values, single)


def format_double(value: float) -> str:
    """One double printed by TF Serving's rule (used for numbers inside error texts)."""
    return _one_token(value, False)
