"""What ``cloudserve targets`` reports about each adapter: features, settings, SDK state."""

from __future__ import annotations

import importlib.util
import re
import types
import typing
from functools import cache
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from cloudserve import registry
from cloudserve.errors import CloudserveError


def type_name(annotation: Any) -> str:
    """``int | None`` → ``"int | None"``, ``Literal[1024, 2048]`` → ``"1024 | 2048"``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(
            repr(a) if isinstance(a, str) else str(a) for a in typing.get_args(annotation)
        )
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = typing.get_args(annotation) or (annotation,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _default(info: FieldInfo) -> Any:
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return None
    return to_jsonable_python(value)


def settings_of(model: type[BaseModel], prefix: str = "") -> list[dict[str, Any]]:
    """Every field of a config class, nested models flattened to dotted names."""
    rows: list[dict[str, Any]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        rows.append(
            {
                "name": path,
                "type": type_name(info.annotation),
                "required": info.is_required(),
                "default": None if info.is_required() else _default(info),
                "description": info.description or "",
            }
        )
        nested = _nested_model(info.annotation)
        if nested is not None:
            rows += settings_of(nested, prefix=f"{path}.")
    return rows


@cache
def _extra_requirements() -> dict[str, list[str]]:
    """cloudserve's extras mapped to the distribution names each one installs."""
    extras: dict[str, list[str]] = {}
    for req in metadata.requires("cloudserve") or []:
        match = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if match:
            name = re.match(r"[A-Za-z0-9._-]+", req)
            if name:
                extras.setdefault(match.group(1), []).append(name.group(0))
    return extras


def sdk_installed(extra: str | None) -> bool | None:
    """Is every package of ``extra`` installed? None when the extra is unknown; True for none."""
    if extra is None:
        return True
    packages = _extra_requirements().get(extra)
    if packages is None:
        return None
    installed = True
    for package in packages:
        if package == "cloudserve":
            continue
        try:
            metadata.distribution(package)
        except metadata.PackageNotFoundError:
            installed = False
    return installed


def describe(name: str, entry: str) -> dict[str, Any]:
    """One target's row: what it is, whether it loads, its features and settings."""
    aliases = sorted(a for a, n in registry.ALIASES.items() if n == name)
    row: dict[str, Any] = {"name": name, "aliases": aliases, "entry_point": entry}
    module = entry.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return row | {"installed": False, "error": f"module {module} is not installed"}
    try:
        cls = registry.load(name)
    except CloudserveError as e:
        return row | {"installed": False, "error": e.message}
    return row | {
        "installed": True,
        "extra": cls.extra,
        "sdk_installed": sdk_installed(cls.extra),
        "install": f"pip install 'cloudserve[{cls.extra}]'" if cls.extra else None,
        "features": sorted(f.value for f in cls.features),
        "required_signature": cls.required_signature,
        "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        "settings": settings_of(cls.config_class),
    }
