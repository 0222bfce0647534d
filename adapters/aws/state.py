"""Reading (and recording) what exists on SageMaker for one cloudserve model.

Everything cloudserve needs between CLI runs lives on AWS itself: versions are the
``<model>-v<N>`` Models and EndpointConfigs, the default is the version of the endpoint's
current config, and the history of defaults (for rollback) is an endpoint tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudserve.limits import limit
from cloudserve_adapters.aws import naming, sdk

#: the one endpoint status in which SageMaker accepts nothing but DeleteEndpoint
FAILED = "Failed"


@dataclass(frozen=True)
class EndpointState:
    """One DescribeEndpoint, interpreted for ``model``.

    ``traffic`` maps each version with a production variant to its percent of the requests
    that name no variant; ``serving`` (the default) is the version with the most of it.
    ``capacity`` is the desired instance count of each version's variant (real-time only).
    ``owned`` is False for an endpoint of that name that cloudserve did not create for
    ``model`` (it has no ``cloudserve:model`` tag naming it).
    """

    name: str
    arn: str
    status: str
    config_name: str
    serving: str | None  # the default version; None if the endpoint serves no version of ours
    history: tuple[str, ...] = ()  # defaults so far, oldest first, ending with ``serving``
    failure_reason: str = ""
    traffic: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    owned: bool = True

    @property
    def failed(self) -> bool:
        """True when SageMaker allows only DeleteEndpoint (status Failed)."""
        return self.status == FAILED


def _call(what: str, fn: Any, **kwargs: Any) -> Any:
    """Call ``fn``; None when the resource is missing, translated errors otherwise."""
    try:
        return fn(**kwargs)
    except sdk.errors() as e:
        if sdk.is_missing(e):
            return None
        raise sdk.translate(e, what) from e


def describe_model(sm: Any, name: str) -> dict[str, Any] | None:
    """DescribeModel, or None when there is no such model."""
    return _call(f"reading model {name}", sm.describe_model, ModelName=name)


def describe_config(sm: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpointConfig, or None when there is no such config."""
    return _call(
        f"reading endpoint config {name}", sm.describe_endpoint_config, EndpointConfigName=name
    )


def tags(sm: Any, arn: str) -> dict[str, str]:
    """A resource's tags; for a key set more than once, the last value wins."""
    found: dict[str, str] = {}
    try:
        for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
            for tag in page.get("Tags", []):
                found[tag["Key"]] = tag["Value"]
    except sdk.errors() as e:
        raise sdk.translate(e, f"reading tags of {arn}") from e
    return found


#: separates versions in the history tag; SageMaker's TagValue pattern
#: ``[\p{L}\p{Z}\p{N}_.:/=+\-@]*`` allows "/" (and refuses ",")
HISTORY_SEPARATOR = "/"


def _parse_history(value: str, serving: str | None) -> tuple[str, ...]:
    history = [v for v in value.split(HISTORY_SEPARATOR) if v]
    if serving is not None and (not history or history[-1] != serving):
        history.append(serving)  # an update made without waiting, or outside cloudserve
    return tuple(history)


def read_endpoint(sm: Any, name: str, model: str) -> EndpointState | None:
    """The endpoint with its serving version and default history; None when it is absent."""
    description = _call(f"reading endpoint {name}", sm.describe_endpoint, EndpointName=name)
    if description is None:
        return None
    config = description.get("EndpointConfigName", "")
    traffic, capacity = _variants(description.get("ProductionVariants") or [])
    serving = max(traffic, key=lambda v: (traffic[v], naming.version_sort_key(v)), default=None)
    if serving is None:
        serving = naming.version_of(model, config)
    found = tags(sm, description["EndpointArn"])
    return EndpointState(
        name=name,
        arn=description["EndpointArn"],
        status=description.get("EndpointStatus", ""),
        config_name=config,
        serving=serving,
        history=_parse_history(found.get(naming.TAG_HISTORY, ""), serving),
        failure_reason=description.get("FailureReason") or "",
        traffic=traffic,
        capacity=capacity,
        owned=found.get(naming.TAG_MODEL) == model,
    )


def _variants(variants: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """(percent of traffic, desired instance count) per version from DescribeEndpoint's
    ProductionVariants; variants not named ``v<N>`` are not cloudserve's and are left out."""
    weights: dict[str, float] = {}
    capacity: dict[str, int] = {}
    for variant in variants:
        version = naming.version_of_variant(variant.get("VariantName", ""))
        if version is None:
            continue
        weights[version] = float(variant.get("DesiredWeight", variant.get("CurrentWeight", 0.0)))
        count = variant.get("DesiredInstanceCount", variant.get("CurrentInstanceCount"))
        if count is not None:
            capacity[version] = int(count)
    total = sum(weights.values())
    traffic = {v: round(100 * w / total) if total else 0 for v, w in weights.items()}
    return traffic, capacity


def encode_history(history: list[str] | tuple[str, ...]) -> str:
    """The tag value for ``history``: the newest entries that fit a tag value."""
    longest = limit("aws", "tag_value_max_chars")
    kept = list(history)
    while kept and len(HISTORY_SEPARATOR.join(kept)) > longest:
        kept.pop(0)
    return HISTORY_SEPARATOR.join(kept)


def write_history(sm: Any, arn: str, history: list[str] | tuple[str, ...]) -> None:
    """Record the default history on the endpoint (AddTags replaces the key's value)."""
    try:
        sm.add_tags(
            ResourceArn=arn, Tags=[{"Key": naming.TAG_HISTORY, "Value": encode_history(history)}]
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"recording the default history on {arn}") from e


def version_models(sm: Any, model: str) -> dict[str, dict[str, Any]]:
    """Summaries of ``model``'s SageMaker Models keyed by version."""
    found: dict[str, dict[str, Any]] = {}
    try:
        pages = sm.get_paginator("list_models").paginate(NameContains=f"{model}-v")
        for page in pages:
            for summary in page.get("Models", []):
                version = naming.version_of(model, summary["ModelName"])
                if version is not None:
                    found[version] = summary
    except sdk.errors() as e:
        raise sdk.translate(e, f"listing models of {model}") from e
    return found


def version_configs(sm: Any, model: str) -> set[str]:
    """Versions of ``model`` that have an EndpointConfig."""
    found: set[str] = set()
    try:
        pages = sm.get_paginator("list_endpoint_configs").paginate(NameContains=f"{model}-v")
        for page in pages:
            for summary in page.get("EndpointConfigs", []):
                version = naming.version_of(model, summary["EndpointConfigName"])
                if version is not None:
                    found.add(version)
    except sdk.errors() as e:
        raise sdk.translate(e, f"listing endpoint configs of {model}") from e
    return found
