"""Each target's limits, kept as data (``<target>.yaml`` beside this file).

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

from cloudserve.errors import ConfigError


@cache
def table(target: str) -> dict[str, dict[str, Any]]:
    """The whole limits table of ``target`` (empty when the target has none)."""
    try:
        text = resources.files(__name__).joinpath(f"{target}.yaml").read_text()
    except FileNotFoundError:
        return {}
    data = yaml.safe_load(text) or {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise ConfigError(f"limits table {target}.yaml: entry '{key}' needs value and source")
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
