"""Request-body validation against azure-ai-ml's own generated REST models.

azure-ai-ml ships the Azure ML ARM API as generated models
(``azure.ai.ml._restclient.arm_ml_service.models``): each model class maps JSON field names
(``rest_field(name=...)``) to typed attributes with a visibility. :func:`validate` walks a JSON
body against such a class recursively and reports every field the service would not accept:
unknown (misspelt) names, read-only fields in a request, missing required fields, wrong JSON
types, unknown enum or discriminator values, and malformed ISO 8601 durations.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import functools
import types
import typing
from typing import Any

Issue = str


@functools.cache
def _models() -> types.ModuleType:
    from azure.ai.ml._restclient.arm_ml_service import models

    return models


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    from azure.ai.ml._restclient.arm_ml_service.models import _models as generated

    return typing.get_type_hints(cls, globalns=vars(generated), localns={"_models": _models()})


def model(name: str) -> type:
    """The generated model class called ``name`` (e.g. "OnlineEndpoint")."""
    return getattr(_models(), name)


def _fields(cls: type) -> dict[str, tuple[str, Any, list[str] | None, bool]]:
    """rest name -> (attribute, annotation, visibility, is_discriminator)."""
    with contextlib.suppress(Exception):  # abstract bases may refuse empty construction
        cls()  # the generated base class computes _attr_to_rest_field on first use
    hints = _hints(cls)
    return {
        rf._rest_name: (attr, hints.get(attr, Any), rf._visibility, rf._is_discriminator)
        for attr, rf in cls._attr_to_rest_field.items()
    }


def _writable(visibility: list[str] | None) -> bool:
    return visibility is None or bool({"create", "update"} & set(visibility))


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _is_model(annotation: Any) -> bool:
    from azure.ai.ml._restclient.arm_ml_service._utils.model_base import Model

    return isinstance(annotation, type) and issubclass(annotation, Model)


def _concrete(cls: type, body: dict[str, Any], path: str, issues: list[Issue]) -> type:
    mapping = getattr(cls, "__mapping__", None)
    if not mapping:
        return cls
    for rest_name, (_a, _t, _v, is_disc) in _fields(cls).items():
        if not is_disc:
            continue
        value = body.get(rest_name)
        if value is None:
            issues.append(f"{path}.{rest_name}: required discriminator missing")
            return cls
        if value not in mapping:
            issues.append(f"{path}.{rest_name}: unknown value {value!r} (one of {sorted(mapping)})")
            return cls
        return mapping[value]
    return cls


def _check_model(cls: type, body: Any, path: str, issues: list[Issue]) -> None:
    if not isinstance(body, dict):
        issues.append(f"{path}: expected an object for {cls.__name__}, got {type(body).__name__}")
        return
    cls = _concrete(cls, body, path, issues)
    fields = _fields(cls)
    for key, value in body.items():
        if key not in fields:
            issues.append(f"{path}.{key}: unknown field of {cls.__name__}")
            continue
        _attr, annotation, visibility, _disc = fields[key]
        if not _writable(visibility):
            issues.append(f"{path}.{key}: read-only field of {cls.__name__}")
            continue
        if value is not None:
            _check(annotation, value, f"{path}.{key}", issues)
    for key, (_attr, annotation, visibility, disc) in fields.items():
        required = not _optional(annotation) and _writable(visibility) and not disc
        if required and key not in body:
            issues.append(f"{path}.{key}: required field of {cls.__name__} missing")


def _check_enum(annotation: Any, value: Any, path: str, issues: list[Issue]) -> bool:
    enums = [
        a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, enum.Enum)
    ]
    if not enums:
        return False
    allowed = {e.value for e in enums[0]}
    if not isinstance(value, str) or value not in allowed:
        issues.append(f"{path}: {value!r} is not one of {sorted(allowed)}")
    return True


def _check(annotation: Any, value: Any, path: str, issues: list[Issue]) -> None:
    if annotation is Any:
        return
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if _check_enum(annotation, value, path, issues):
            return
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            _check(options[0], value, path, issues)
        return
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            issues.append(f"{path}: {value!r} is not one of {typing.get_args(annotation)}")
        return
    if origin is list:
        if not isinstance(value, list):
            issues.append(f"{path}: expected a list")
            return
        (item,) = typing.get_args(annotation)
        for i, element in enumerate(value):
            _check(item, element, f"{path}[{i}]", issues)
        return
    if origin is dict:
        if not isinstance(value, dict):
            issues.append(f"{path}: expected an object")
            return
        _key, item = typing.get_args(annotation)
        for k, element in value.items():
            _check(item, element, f"{path}.{k}", issues)
        return
    if _is_model(annotation):
        _check_model(annotation, value, path, issues)
        return
    _check_scalar(annotation, value, path, issues)


def _check_scalar(annotation: Any, value: Any, path: str, issues: list[Issue]) -> None:
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is str or annotation is datetime.datetime:
        ok = isinstance(value, str)
    elif annotation is datetime.timedelta:
        ok = isinstance(value, str) and _duration_ok(value)
    else:
        ok = True
    if not ok:
        name = getattr(annotation, "__name__", str(annotation))
        issues.append(f"{path}: {value!r} is not a valid {name}")


def _duration_ok(value: str) -> bool:
    import isodate

    try:
        isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError):
        return False
    return True


def validate(model_name: str, body: Any) -> list[Issue]:
    """Every problem of ``body`` as a request of generated model ``model_name``; [] if none."""
    issues: list[Issue] = []
    _check_model(model(model_name), body, "body", issues)
    return issues
