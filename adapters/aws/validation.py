"""Checking request values against botocore's service model, as the AWS services do.

botocore's own ParamValidator checks types, required members and minimum lengths, but not
``pattern``, ``max`` or ``enum``; the services check all of them server-side and refuse
the call. This module checks every constraint the model states, so a value AWS would
refuse is caught before it is sent: by preflight (user tags) and by the test harness,
which runs :func:`operation_violations` on every call the adapter makes.

Patterns are Java regular expressions (``\\p{L}``, surrogate-pair ranges); they are
compiled with the ``regex`` package and must match the whole value.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from cloudserve.errors import MissingDependency
from cloudserve_adapters.aws import sdk

_SURROGATE_PAIR = r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})"


def _regex() -> Any:
    try:
        return importlib.import_module("regex")
    except ModuleNotFoundError as e:
        raise MissingDependency("regex", "aws", provider=sdk.PROVIDER) from e


@cache
def _compiled(pattern: str) -> Any:
    """A Java pattern compiled for Python: UTF-16 surrogate pairs become code points."""
    regex = _regex()

    def code_point(match: Any) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return regex.compile(regex.sub(_SURROGATE_PAIR, code_point, pattern, flags=regex.I))


@cache
def service_model(service: str) -> Any:
    """botocore's model of ``service`` (e.g. "sagemaker")."""
    return sdk.botocore_module("session").get_session().get_service_model(service)


def _size(value: Any) -> int | None:
    if isinstance(value, str | bytes | bytearray | list | tuple | Mapping):
        return len(value)
    return None  # a stream (a file being uploaded): its size is not known here


def violations(shape: Any, value: Any, path: str) -> list[str]:
    """Every constraint of ``shape`` that ``value`` breaks, as "path: what" lines."""
    found: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    if kind in {"string", "blob", "list", "map"}:
        size = _size(value)
        unit = "characters" if kind == "string" else "bytes" if kind == "blob" else "entries"
        if size is not None and "min" in meta and size < meta["min"]:
            found.append(f"{path}: {size} {unit}, below the minimum {meta['min']}")
        if size is not None and "max" in meta and size > meta["max"]:
            found.append(f"{path}: {size} {unit}, above the maximum {meta['max']}")
    if kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            found.append(f"{path}: {value!r} is not one of {shape.name}'s values")
        pattern = meta.get("pattern")
        if pattern and _compiled(pattern).fullmatch(value) is None:
            found.append(f"{path}: {value!r} does not match {shape.name}'s pattern {pattern}")
    elif kind in {"integer", "long", "float", "double"} and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            found.append(f"{path}: {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            found.append(f"{path}: {value} is above the maximum {meta['max']}")
    elif kind == "structure" and isinstance(value, Mapping):
        for name in shape.required_members:
            if name not in value:
                found.append(f"{path}.{name}: required but missing")
        for name, member in value.items():
            if name in shape.members:
                found += violations(shape.members[name], member, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += violations(shape.member, item, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            found += violations(shape.key, key, f"{path} key")
            found += violations(shape.value, item, f"{path}[{key!r}]")
    return found


def operation_violations(operation: Any, params: Mapping[str, Any]) -> list[str]:
    """Violations of one call's parameters (``operation`` is a botocore OperationModel)."""
    if operation.input_shape is None:
        return []
    return violations(operation.input_shape, dict(params), operation.name)


def shape_violations(service: str, shape_name: str, value: Any, what: str) -> list[str]:
    """Violations of one value against a named shape, e.g. ("sagemaker", "TagValue")."""
    return violations(service_model(service).shape_for(shape_name), value, what)
