"""Limits tables, kept as data: the core's ``common.yaml`` here, and one per target.

Each adapter owns its table: a ``limits.yaml`` in the adapter's own package (the package of
the module its registry entry names), so a third-party adapter ships its limits with its
code. ``table("common")`` is the core's table beside this file.

Every entry has a ``value`` and the ``source`` URL it comes from; entries that rest on an
unverified fact carry ``unverified: true`` and a ``note``. Preflight rules read limits only
through :func:`limit`, so a changed quota is a one-line data change.

File format::

    payload_bytes:
      value: 6291456
      source: https://docs.aws.amazon.com/...
      note: optional remark
      unverified: false
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from cloudserve.errors import CloudserveError, ConfigError

COMMON = "common"
FILE_NAME = "limits.yaml"


def _table_text(target: str) -> str | None:
    """The YAML text of ``target``'s table, or None when it has none."""
    if target == COMMON:
        return resources.files(__name__).joinpath("common.yaml").read_text()
    from cloudserve import registry

    try:
        module_name = registry.available()[registry.canonical_name(target)].partition(":")[0]
    except (CloudserveError, KeyError):
        return None
    package = module_name.rpartition(".")[0] or module_name
    try:
        return resources.files(package).joinpath(FILE_NAME).read_text()
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError):
        return None


@cache
def table(target: str) -> dict[str, dict[str, Any]]:
    """The whole limits table of ``target`` (empty when the target has none)."""
    text = _table_text(target)
    data = yaml.safe_load(text) if text else {}
    data = data or {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise ConfigError(f"limits table of '{target}': entry '{key}' needs value and source")
    return data


def limit(target: str, key: str) -> Any:
    """The value of one limit; KeyError names the table when it is missing."""
    try:
        return table(target)[key]["value"]
    except KeyError:
        raise KeyError(f"no limit '{key}' in the {target} limits table") from None


def source(target: str, key: str) -> str:
    """The documentation URL a limit comes from (shown with preflight findings)."""
    entry = table(target)[key]
    suffix = " (UNVERIFIED)" if entry.get("unverified") else ""
    return entry["source"] + suffix
