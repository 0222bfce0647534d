"""The deploy spec: ``cloudserve.yaml`` layered with environment variables and flags.

Sources, lowest precedence first:

1. the file: ``--config PATH``, else ``$CLOUDSERVE_CONFIG``, else ``./cloudserve.yaml`` if it
   exists. A relative ``export:`` or ``sample:`` in the file, and a relative path in a target
   setting typed as a path (``targets.local.repository``), is relative to the file's directory.
2. environment variables: ``CLOUDSERVE_MODEL``, ``CLOUDSERVE_EXPORT``, ``CLOUDSERVE_VERSION``,
   ``CLOUDSERVE_TARGET``, ``CLOUDSERVE_TIMEOUT``, ``CLOUDSERVE_SET_DEFAULT``,
   ``CLOUDSERVE_TRAFFIC``; and target settings
   as ``CLOUDSERVE_<TARGET>__<FIELD>[__<SUBFIELD>...]`` (``CLOUDSERVE_AWS__INSTANCE_TYPE``,
   ``CLOUDSERVE_AWS__SERVERLESS__MEMORY_MB``), names matched case-insensitively.
3. ``--set dotted.path=value`` flags, in order (``--set targets.aws.instance_type=ml.m5.large``).
4. explicit flags (``--model``, ``--export``, ``--version``, ``--target``, ``--traffic``, ...).

Values from the environment and ``--set`` are JSON when they parse as JSON (``2048``, ``true``,
``[1, 2]``, ``null``), otherwise plain strings. Wherever a setting expects a string, a number is
taken as its digits (``project: 12345``).

``traffic`` (a canary split, version -> percent) is replaced whole by a higher layer, never
merged key by key, and may also be written ``2=10,1=90`` wherever a string is accepted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from cloudserve import registry
from cloudserve.adapter import Adapter, AdapterConfig
from cloudserve.errors import CloudserveError, ConfigError, PreflightError
from cloudserve.records import DeploySpec, ExportInfo, Finding

M = TypeVar("M", bound=BaseModel)

CONFIG_FILE = "cloudserve.yaml"
#: where every target's settings are listed (also `cloudserve targets`)
SETTINGS_DOC = "README.md#cloudserveyaml-reference"
ENV_PREFIX = "CLOUDSERVE_"
DEFAULT_TARGET = "local"

#: top-level environment variables and the spec key each one sets
ENV_KEYS = {
    "CLOUDSERVE_MODEL": "model",
    "CLOUDSERVE_EXPORT": "export",
    "CLOUDSERVE_VERSION": "version",
    "CLOUDSERVE_TARGET": "target",
    "CLOUDSERVE_TIMEOUT": "timeout",
    "CLOUDSERVE_SET_DEFAULT": "set_default",
    "CLOUDSERVE_TRAFFIC": "traffic",
}
#: top-level keys whose environment value is parsed as JSON (else kept as the string)
_JSON_ENV_KEYS = ("timeout", "set_default", "traffic")
#: top-level keys a higher layer replaces whole instead of merging into
_REPLACED_KEYS = ("traffic",)

_VERSION = re.compile(r"[1-9][0-9]*")


def parse_traffic(text: str) -> dict[str, int]:
    """``"2=10,1=90"`` as ``{"2": 10, "1": 90}``.

    Raises:
        ValueError: an item is not ``VERSION=PERCENT`` with an integer percent, or a version
            appears twice. The message says what is wrong (no value checks beyond the form).
    """
    split: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        version, sep, percent = (p.strip() for p in item.partition("="))
        if not sep or not version or not re.fullmatch(r"[0-9]+", percent):
            raise ValueError(
                f"{item!r} is not VERSION=PERCENT (write e.g. 2=10,1=90, whole percents)"
            )
        if version in split:
            raise ValueError(f"version {version} appears twice")
        split[version] = int(percent)
    return split


def check_traffic(split: Mapping[str, int]) -> dict[str, int]:
    """Validate a canary split: positive-integer versions, whole percents 0-100, sum 100.

    Returns it as a plain dict. Raises ValueError saying what is wrong.
    """
    for version, percent in split.items():
        if not _VERSION.fullmatch(version):
            raise ValueError(f"version {version!r} is not a positive integer without leading zeros")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"version {version}: {percent!r} is not a whole percent 0-100")
    total = sum(split.values())
    if total != 100:
        shown = ",".join(f"{v}={p}" for v, p in split.items())
        raise ValueError(f"percents must sum to 100, got {total} ({shown or 'empty'})")
    return dict(split)


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


def check_traffic_versions(
    traffic: Mapping[str, int], *, deploying: str, available: Sequence[str] | set[str]
) -> None:
    """Refuse a split naming a version that is neither being deployed nor deployed already.

    Adapters call this with the versions the target can route to (for a canary, versions
    that are deployed and serving), before changing anything.

    Raises:
        ConfigError: naming the unknown versions and the ones that can take traffic.
    """
    known = {deploying, *available}
    unknown = sorted((v for v in traffic if v not in known), key=_version_order)
    if unknown:
        can = ", ".join(sorted(known, key=_version_order))
        raise ConfigError(
            f"traffic: version(s) {', '.join(unknown)} are not deployed (can take traffic: {can})",
            hint="split traffic only between deployed versions and the one being deployed "
            "(cloudserve versions list)",
        )


class ProjectFile(BaseModel):
    """The schema of ``cloudserve.yaml`` (after layering). Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    model: str | None = Field(default=None, description="Model name on the target.")
    export: Path | None = Field(default=None, description="SavedModel directory (or base path).")
    version: str | None = Field(
        default=None, description="Version number; default: the export directory's number."
    )
    target: str | None = Field(default=None, description="Target name; default: local.")
    set_default: bool = Field(
        default=False, description="Make each deployed version the default once it is ready."
    )
    timeout: float = Field(default=1800.0, gt=0, description="Seconds to wait for the target.")
    traffic: dict[str, StrictInt] | None = Field(
        default=None,
        description="Canary split of the requests that name no version: version -> whole "
        "percent, summing to 100, e.g. {'2': 10, '1': 90} (or '2=10,1=90'). Only on targets "
        "with the traffic_split feature; versions must be deployed or the one being deployed.",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Labels put on resources.")
    sample: Path | None = Field(
        default=None,
        description="JSON file with a predict body each new version must answer before it "
        "takes traffic (default: the export's warm-up records, else zeros shaped like its "
        "signature).",
    )
    targets: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="Per-target settings, validated by each adapter."
    )

    @field_validator("traffic", mode="before")
    @classmethod
    def _traffic_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_traffic(value)
            except ValueError as e:
                raise PydanticCustomError("traffic", str(e)) from None
        return value

    @field_validator("traffic")
    @classmethod
    def _traffic_split(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is None:
            return None
        try:
            return check_traffic(value)
        except ValueError as e:
            raise PydanticCustomError("traffic", str(e)) from None


@dataclass(frozen=True)
class Flags:
    """Values given on the command line; None means "not given"."""

    model: str | None = None
    export: Path | None = None
    version: str | None = None
    target: str | None = None
    set_default: bool | None = None
    timeout: float | None = None
    traffic: str | None = None  # "2=10,1=90"
    sample: Path | None = None
    sets: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Settings:
    """The layered, validated deploy settings. Built by :func:`load`."""

    project: ProjectFile
    config_path: Path | None

    @property
    def target(self) -> str:
        """The canonical target name (aliases resolved); ``local`` when none is configured.

        Raises:
            NotSupported: for a retired or not-yet-built target (``azure``, ``ml-v1``).
            ConfigError: for an unknown target name.
        """
        return registry.canonical_name(self.project.target or DEFAULT_TARGET)

    def require_model(self) -> str:
        """The model name, or a ConfigError saying where to set it."""
        if not self.project.model:
            raise ConfigError(
                "no model name given",
                hint="set model: in cloudserve.yaml, CLOUDSERVE_MODEL, or pass --model NAME",
            )
        return self.project.model

    def require_export(self) -> Path:
        """The export path, or a ConfigError saying where to set it."""
        if self.project.export is None:
            raise ConfigError(
                "no export path given",
                hint="set export: in cloudserve.yaml, CLOUDSERVE_EXPORT, or pass --export DIR",
            )
        return self.project.export

    def resolve_version(self, export: ExportInfo) -> str:
        """The explicit version, else the number in the export directory's name."""
        if self.project.version:
            return self.project.version
        if export.version is not None:
            return str(export.version)
        raise ConfigError(
            f"cannot tell the version of {export.path}: its directory name is not a number",
            hint="pass --version N, or set version: in cloudserve.yaml",
        )

    def deploy_spec(self, export: ExportInfo) -> DeploySpec:
        """The :class:`DeploySpec` for deploying ``export`` with these settings.

        Raises:
            ConfigError: ``set_default`` together with a ``traffic`` split that does not give
                the deployed version 100%.
        """
        version = self.resolve_version(export)
        traffic = self.project.traffic
        if traffic is not None and self.project.set_default and traffic.get(version) != 100:
            raise ConfigError(
                f"traffic: set_default sends all traffic to version {version}; it cannot go "
                f"with the split {traffic}",
                hint="drop --set-default (and set_default:) for a canary, or drop the split",
            )
        return DeploySpec(
            model=self.require_model(),
            export=export.path,
            version=version,
            target=self.target,
            set_default=self.project.set_default,
            traffic=dict(traffic) if traffic is not None else None,
            tags=dict(self.project.tags),
            timeout_s=self.project.timeout,
        )

    def target_settings(self, name: str) -> dict[str, Any]:
        """The raw ``targets.<name>`` mapping; keys written as an alias of ``name`` count too."""
        merged: dict[str, Any] = {}
        for key, value in self.project.targets.items():
            if key == name or registry.ALIASES.get(key.lower()) == name:
                merged = _merge(merged, value or {})
        return merged

    def adapter_config(self, adapter_cls: type[Adapter]) -> AdapterConfig:
        """Validate ``targets.<name>`` with the adapter's ``config_class``.

        Raises:
            ConfigError: naming every invalid field by its full path
                (``targets.aws.serverless.memory_mb: Input should be 1024, 2048, ...``).
        """
        return validate_config(
            adapter_cls.config_class,
            self.target_settings(adapter_cls.name),
            prefix=f"targets.{adapter_cls.name}",
        )


# --------------------------------------------------------------------------- validation


def _error_lines(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in error.errors():
        path = ".".join([*([prefix] if prefix else []), *(str(p) for p in item["loc"])])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling; `cloudserve targets` lists them)"
        lines.append(f"{path}: {message}")
    return lines


def _set_path(data: dict[str, Any], path: Sequence[str | int], value: Any) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def validate_config(model_cls: type[M], data: Mapping[str, Any], *, prefix: str) -> M:
    """Validate ``data`` with ``model_cls``; numbers given where strings are expected are
    taken as their digits. Errors become one ConfigError naming each field path.
    Input values are never echoed (they may be secrets)."""
    data = json.loads(json.dumps(data, default=str))
    try:
        return model_cls.model_validate(data)
    except ValidationError as first:
        retry = False
        for item in first.errors():
            value = item.get("input")
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if item["type"] == "string_type" and is_number:
                _set_path(data, item["loc"], str(value))
                retry = True
        error = first
        if retry:
            try:
                return model_cls.model_validate(data)
            except ValidationError as second:
                error = second
    lines = _error_lines(error, prefix)
    if prefix and all(item["type"] == "missing" for item in error.errors()):
        raise _missing_settings(error, prefix) from None
    what = f"'{prefix}'" if prefix else "cloudserve.yaml"
    raise ConfigError(
        f"invalid settings in {what}: " + "; ".join(lines),
        hint="`cloudserve targets` lists every setting with its type and default"
        if prefix
        else "`cloudserve init` writes a commented cloudserve.yaml",
    ) from None


def _missing_settings(error: ValidationError, prefix: str) -> PreflightError:
    """Required target settings not given: one preflight finding each (exit code 3), the
    same way on every target, before anything is sent."""
    findings = []
    for item in error.errors():
        path = ".".join([prefix, *(str(p) for p in item["loc"])])
        env = ENV_PREFIX + "__".join(str(p) for p in [prefix.split(".", 1)[1], *item["loc"]])
        findings.append(
            Finding(
                "settings.missing",
                "error",
                f"{path} is required and not set",
                fix=f"set {path} in cloudserve.yaml, --set {path}=VALUE or {env.upper()}",
                source=SETTINGS_DOC,
            )
        )
    return PreflightError(
        f"preflight failed: {findings[0].message}"
        + (f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""),
        findings=findings,
    )


# --------------------------------------------------------------------------- layering


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def parse_value(text: str) -> Any:
    """An environment or ``--set`` value: JSON when it parses as JSON, else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assign(data: dict[str, Any], path: Sequence[str], value: Any, *, origin: str) -> None:
    node = data
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"{origin}: '{key}' holds a value, not a mapping of settings",
                hint="check the dotted path",
            )
        node = child
    node[path[-1]] = value


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read: explicit, else $CLOUDSERVE_CONFIG, else ./cloudserve.yaml."""
    if explicit is not None:
        return explicit
    if env.get("CLOUDSERVE_CONFIG"):
        return Path(env["CLOUDSERVE_CONFIG"])
    default = Path(CONFIG_FILE)
    return default if default.is_file() else None


def read_file(path: Path) -> dict[str, Any]:
    """Parse a cloudserve.yaml; relative ``export`` paths become relative to its directory."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist", hint="run `cloudserve init` to write one"
        ) from None
    except yaml.YAMLError as e:
        # str(e) quotes the offending line, which may hold a secret: say only where and what.
        parts = []
        for text, mark in (
            (getattr(e, "context", None), getattr(e, "context_mark", None)),
            (getattr(e, "problem", None) or type(e).__name__, getattr(e, "problem_mark", None)),
        ):
            if text:
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                parts.append(f"{text}{where}")
        raise ConfigError(
            f"{path} is not valid YAML: {': '.join(parts)}", hint="fix the file at that place"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings", hint="see `cloudserve init`")
    base = path.absolute().parent
    for key in ("export", "sample"):
        if isinstance(data.get(key), str):
            data[key] = _relative_to(base, data[key])
    targets = data.get("targets")
    if isinstance(targets, dict):
        for name, settings in targets.items():
            if isinstance(settings, dict):
                _resolve_path_settings(base, str(name), settings)
    return data


def _relative_to(base: Path, value: str) -> str:
    return value if Path(value).expanduser().is_absolute() else str(base / value)


def _resolve_path_settings(base: Path, target: str, settings: dict[str, Any]) -> None:
    """Make the target's path-typed settings (its config class says which) file-relative."""
    try:
        config_class = registry.load(registry.canonical_name(target)).config_class
    except CloudserveError:
        return  # an unknown or unavailable target: validating it later says so
    for key, info in config_class.model_fields.items():
        value = settings.get(key)
        if isinstance(value, str) and "Path" in str(info.annotation):
            settings[key] = _relative_to(base, value)


def env_layer(env: Mapping[str, str], target_names: Sequence[str]) -> dict[str, Any]:
    """Settings from ``CLOUDSERVE_*`` variables. Variables of unknown targets are ignored
    (other tools, like the runtime, read ``CLOUDSERVE_*`` variables of their own)."""
    data: dict[str, Any] = {}
    known = {name.lower().replace("-", "_"): name for name in target_names}
    known.update({alias.replace("-", "_"): name for alias, name in registry.ALIASES.items()})
    for var, raw in sorted(env.items()):
        upper = var.upper()
        if upper in ENV_KEYS:
            key = ENV_KEYS[upper]
            data[key] = parse_value(raw) if key in _JSON_ENV_KEYS else raw
            continue
        if not upper.startswith(ENV_PREFIX) or "__" not in upper:
            continue
        target, *path = var[len(ENV_PREFIX) :].lower().split("__")
        if target in known and path and all(path):
            _assign(data, ["targets", known[target], *path], parse_value(raw), origin=var)
    return data


def set_layer(items: Sequence[str]) -> dict[str, Any]:
    """Settings from ``--set dotted.path=value`` flags, later ones winning."""
    data: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(k.strip() for k in keys):
            shown = re.match(r"[\w.-]*", path.strip()).group()  # never the value: it may be secret
            raise ConfigError(
                f"--set {shown or '...'}: not of the form dotted.path=value (value not shown)",
                hint="e.g. --set targets.aws.instance_type=ml.m5.large",
            )
        _assign(data, [k.strip() for k in keys], parse_value(raw), origin=f"--set {path}")
    return data


def flag_layer(flags: Flags) -> dict[str, Any]:
    """Settings from explicit flags (those not given are left out)."""
    values = {
        "model": flags.model,
        "export": str(flags.export) if flags.export is not None else None,
        "version": flags.version,
        "target": flags.target,
        "set_default": flags.set_default,
        "timeout": flags.timeout,
        "traffic": flags.traffic,
        "sample": str(flags.sample) if flags.sample is not None else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _layer_over(data: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """``layer`` merged over ``data``; keys in ``_REPLACED_KEYS`` are replaced whole."""
    base = {k: v for k, v in data.items() if not (k in _REPLACED_KEYS and k in layer)}
    return _merge(base, layer)


def load(
    config: Path | None = None,
    flags: Flags | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Layer file < environment < ``--set`` < flags and validate the result.

    Raises:
        ConfigError: the file is missing (when named) or invalid, a ``--set`` is malformed, or
            a value has the wrong type (the message names its path).
    """
    env = os.environ if env is None else env
    flags = flags or Flags()
    path = find_config_file(config, env)
    data = read_file(path) if path is not None else {}
    for layer in (
        env_layer(env, list(registry.available())),
        set_layer(flags.sets),
        flag_layer(flags),
    ):
        data = _layer_over(data, layer)
    project = validate_config(ProjectFile, data, prefix="")
    return Settings(project=project, config_path=path)
