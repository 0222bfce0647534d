"""Server-side-apply-style reconciliation with plain merge patches.

cloudserve owns the fields it writes and nothing else: :func:`apply` compares the desired
object with the live one *on cloudserve's fields only* (values the API server defaults or
other controllers add are left alone), and sends one JSON merge patch with exactly what
differs, plus ``null`` for fields cloudserve wrote last time but no longer wants (remembered
in the ``cloudserve.dev/last-applied`` annotation, like ``kubectl apply`` does). A second run
with the same input sends nothing and reports ``changed=False``.

Merge patches (RFC 7386) replace lists whole, so a list that differs is sent complete.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cloudserve_adapters.kubernetes.sdk import Kube

LAST_APPLIED = "cloudserve.dev/last-applied"


def covers(live: Any, desired: Any) -> bool:
    """True when ``live`` holds every field of ``desired`` with the same value.

    Dicts compare on ``desired``'s keys only; lists element by element (same length).
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    return live == desired


def diff(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``live``'s copy of ``desired``'s fields into ``desired``."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        current = live.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            sub = diff(current, value)
            if sub:
                patch[key] = sub
        elif not covers(current, value):
            patch[key] = value
    return patch


def removed(last: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``null`` for every field in ``last`` (written before) that ``desired`` lacks."""
    patch: dict[str, Any] = {}
    for key, value in last.items():
        if key not in desired:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(desired[key], dict):
            sub = removed(value, desired[key])
            if sub:
                patch[key] = sub
    return patch


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out.setdefault(key, value)
    return out


def _strip(obj: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    for path in paths:
        node = result
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return result


def with_last_applied(desired: dict[str, Any], owned: dict[str, Any]) -> dict[str, Any]:
    """``desired`` with ``owned`` (the fields cloudserve keeps managing) as JSON in the
    ``last-applied`` annotation."""
    result = copy.deepcopy(desired)
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    result["metadata"].setdefault("annotations", {})[LAST_APPLIED] = text
    return result


def planned_patch(
    live: dict[str, Any] | None,
    desired: dict[str, Any],
    *,
    create_only: tuple[tuple[str, ...], ...] = (),
) -> dict[str, Any] | None:
    """What :func:`apply` would send: the full object (create), a patch, or ``{}`` (nothing).

    Args:
        live: the live object, None when absent.
        desired: the object as cloudserve wants it.
        create_only: field paths set at creation and then left to others (the Deployment's
            ``spec.replicas`` once an autoscaler owns it).
    """
    owned = _strip(desired, create_only)
    if live is None:
        return with_last_applied(desired, owned)
    wanted = with_last_applied(owned, owned)
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    try:
        last = json.loads(annotations.get(LAST_APPLIED) or "{}")
    except ValueError:
        last = {}
    return _merge(diff(live, wanted), removed(_strip(last, create_only), wanted))


def apply(
    kube: Kube,
    desired: dict[str, Any],
    *,
    create_only: tuple[tuple[str, ...], ...] = (),
) -> tuple[dict[str, Any], bool]:
    """Create ``desired`` or patch the live object to match it; returns ``(object, changed)``.

    Idempotent: when the live object already matches, nothing is sent and ``changed`` is
    False. Raises ProviderError when the API server refuses the object.
    """
    meta = desired["metadata"]
    live = kube.get(desired["kind"], meta["namespace"], meta["name"])
    patch = planned_patch(live, desired, create_only=create_only)
    if live is None:
        return kube.create(patch), True
    if not patch:
        return live, False
    return kube.merge_patch(desired["kind"], meta["namespace"], meta["name"], patch), True
