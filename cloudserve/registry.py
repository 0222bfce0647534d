"""Finds adapters: the built-in table plus the ``cloudserve.adapters`` entry-point group.

Entries are dotted strings ("module:Class"), so looking a target up imports nothing until
the target is actually used, and a missing SDK surfaces as an install hint.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import MappingProxyType

from cloudserve.adapter import Adapter
from cloudserve.errors import ConfigError, MissingDependency, NotSupported

ENTRY_POINT_GROUP = "cloudserve.adapters"

_BUILTIN: dict[str, str] = {
    "local": "cloudserve_adapters.local.adapter:LocalAdapter",
    "aws": "cloudserve_adapters.aws.adapter:SageMakerAdapter",
    "gcp": "cloudserve_adapters.gcp.adapter:VertexAdapter",
    "azure": "cloudserve_adapters.azure.adapter:AzureMLAdapter",
}

ALIASES = MappingProxyType(
    {"sagemaker": "aws", "amazon": "aws", "google": "gcp", "vertex": "gcp", "vertex-ai": "gcp"}
)

#: names users try that cloudserve knows about but does not deploy to, with the reason
_RETIRED_OR_MISSING = MappingProxyType(
    {
        "ml-v1": (
            "Legacy AI Platform Prediction (ml v1) was shut down on 2025-01-31; its models "
            "and versions no longer exist",
            "use --target gcp (Vertex AI): an ml v1 *version* is a Vertex *model version*, "
            "and the *default version* is the Vertex 'default' alias plus 100% of the "
            "endpoint's traffic",
        ),
    }
)
_RETIRED_ALIASES = {"ai-platform": "ml-v1", "aiplatform-legacy": "ml-v1", "cmle": "ml-v1"}


def available() -> dict[str, str]:
    """Every known target name mapped to its "module:Class" path (entry points win)."""
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def canonical_name(name: str) -> str:
    """Resolve aliases ("sagemaker" → "aws"); raises for retired or unknown names."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    key = _RETIRED_ALIASES.get(key, key)
    if key in _RETIRED_OR_MISSING:
        message, hint = _RETIRED_OR_MISSING[key]
        raise NotSupported(message, hint=hint, provider=key)
    if key not in available():
        raise ConfigError(
            f"unknown target '{name}'",
            hint=f"choose one of: {', '.join(sorted(available()))}",
        )
    return key


def load(name: str) -> type[Adapter]:
    """Import and return the adapter class registered as ``name`` (or an alias of it)."""
    key = canonical_name(name)
    target = available()[key]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise MissingDependency(e.name or module_name, key, provider=key) from e
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ConfigError(f"adapter '{key}' ({target}) is not a cloudserve Adapter subclass")
    return cls
