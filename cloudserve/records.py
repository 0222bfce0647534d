"""Frozen value types passed between the CLI, the core and the adapters.

Everything an adapter receives or returns is one of these, so the CLI can print any of
them as text or as JSON (``to_dict``) without knowing which target produced it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_jsonable(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; field names are the stable ``--output json`` schema."""
        return _jsonable(self)


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class TensorInfo(_Record):
    """One input or output of a signature, as ``saved_model_cli show --all`` reports it."""

    dtype: str  # "DT_FLOAT", "DT_STRING", ...
    shape: tuple[int, ...] | None  # -1 for unknown dims; None for unknown rank
    tensor_name: str  # graph tensor name, e.g. "x:0"


@dataclass(frozen=True)
class SignatureInfo(_Record):
    """One SignatureDef of the export."""

    method: str  # "tensorflow/serving/predict" | ".../classify" | ".../regress"
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


@dataclass(frozen=True)
class ExportInfo(_Record):
    """What inspecting a SavedModel export found. Produced by ``cloudserve.export.inspect``.

    ``path`` is the SavedModel directory itself (holding saved_model.pb). When the user gave a
    TF-Serving base path (``base/<version>/saved_model.pb``), ``base_path`` is that directory
    and ``path`` is the newest numeric version under it.
    """

    path: Path
    base_path: Path | None
    version: str | None  # the numeric directory name without leading zeros ("123"), if any
    total_bytes: int
    file_count: int
    files: tuple[str, ...]  # paths relative to ``path``, sorted
    tf_version: str | None  # "2.21.0"; None if the export does not record it
    saved_model_file: str  # "saved_model.pb" or "saved_model.pbtxt"
    has_variables: bool
    signatures: dict[str, SignatureInfo]
    tags: tuple[str, ...] = ("serve",)
    #: variable nodes the signatures read (``cloudserve.export.VariableUse``)
    variables_read: tuple[str, ...] = ()
    #: of those, the ones TF1-style loading (TF Serving) never restores: a Keras 3
    #: ``tf.saved_model.save`` export that only TF2 object-graph loading can serve
    variables_unrestored: tuple[str, ...] = ()

    @property
    def tf_minor(self) -> tuple[int, int] | None:
        """``(2, 21)`` for "2.21.0"; None when unknown."""
        if not self.tf_version:
            return None
        parts = self.tf_version.split(".")
        try:
            return int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return None


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class DeploySpec(_Record):
    """What the user asked to deploy, after cloudserve.yaml, env and flags were layered.

    Provider settings (region, bucket, instance type, scaling...) are *not* here: they live
    in the adapter's typed config, built from ``targets.<name>`` of cloudserve.yaml.
    """

    model: str
    export: Path
    version: str  # always resolved: explicit, or from the export directory name
    target: str
    set_default: bool = False  # make this version the default once it is ready
    #: canary split of unversioned requests, version -> whole percent summing to 100 (checked
    #: by ``cloudserve.spec.check_traffic``); None leaves the target's split as it is. Only
    #: targets with ``Feature.TRAFFIC_SPLIT`` accept it; versions other than ``version`` must
    #: be deployed (``cloudserve.spec.check_traffic_versions``).
    traffic: dict[str, int] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 1800.0


# --------------------------------------------------------------------------- preflight

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding(_Record):
    """One preflight result. ``error`` stops a deploy before anything is uploaded."""

    id: str  # stable, e.g. "aws.serverless.memory"
    severity: Severity
    message: str
    fix: str = ""
    source: str = ""  # URL of the documented limit the rule enforces


# --------------------------------------------------------------------------- plan

PlanVerb = Literal["create", "update", "upload", "skip", "delete", "route"]


@dataclass(frozen=True)
class PlanAction(_Record):
    """One resource deploy would create or change (or leave alone: ``skip``)."""

    verb: PlanVerb
    resource: str  # "s3-object", "sagemaker-model", "vertex-endpoint", "local-version", ...
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Plan(_Record):
    """What ``deploy`` would do. Computing a plan has no side effects."""

    target: str
    model: str
    version: str
    actions: tuple[PlanAction, ...]

    @property
    def changes_anything(self) -> bool:
        return any(a.verb != "skip" for a in self.actions)


# --------------------------------------------------------------------------- versions

VersionState = Literal["AVAILABLE", "CREATING", "UPDATING", "FAILED", "DELETING", "UNKNOWN"]


@dataclass(frozen=True)
class VersionRecord(_Record):
    """One deployed version of a model on a target."""

    model: str
    version: str
    state: VersionState
    is_default: bool = False
    traffic: int = 0  # percent of requests that name no version
    artifact_uri: str = ""  # where the export was uploaded
    created: str | None = None  # ISO-8601
    changed: bool = True  # False when deploy found everything already in place
    resources: dict[str, str] = field(default_factory=dict)  # provider ids, names, ARNs
    message: str = ""
