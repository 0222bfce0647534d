"""Memory of SageMaker instance types (``instances.yaml``), for the memory preflight rule."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def _table() -> dict[str, int]:
    text = resources.files(__package__).joinpath("instances.yaml").read_text()
    return yaml.safe_load(text)["memory_mib"]


def memory_mib(instance_type: str) -> int | None:
    """Memory of one instance of ``instance_type`` in MiB; None for types not in the table."""
    return _table().get(instance_type)
