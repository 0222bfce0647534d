"""Model server configuration: the text-proto ``ModelServerConfig`` and the per-model settings.

TF Serving's rules (spec §4): only ``model_config_list`` is served, model names are unique,
``base_path`` is absolute, the platform is ``tensorflow``. ``${VAR}`` placeholders are kept
literally, as TF Serving does. An empty ``model_platform`` is taken to mean ``tensorflow``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from cloudserve_runtime.errors import invalid_argument

ModelServerConfig = model_server_config_pb2.ModelServerConfig
PLATFORM = "tensorflow"
PARSE_ERROR_PREFIX = "Error parsing text-format tensorflow.serving.ModelServerConfig"


@dataclass(frozen=True)
class VersionPolicy:
    """Which version directories are aspired.

    Attributes:
        kind: ``"latest"``, ``"all"`` or ``"specific"``.
        num_versions: for ``latest``, how many of the highest versions (≥ 1).
        versions: for ``specific``, the version numbers.
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def select(self, available: list[int]) -> set[int]:
        """Returns the aspired subset of the version numbers found on disk."""
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return self.versions.intersection(available)
        return set(sorted(available)[-self.num_versions:])


@dataclass(frozen=True)
class ModelSettings:
    """One served model as configured.

    Attributes:
        name: model name used in requests.
        base_path: absolute directory holding numeric version sub-directories.
        policy: the version policy.
        labels: version label -> version number.
    """

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict)


def parse_config_text(text: str) -> model_server_config_pb2.ModelServerConfig:
    """Parses a text-format ModelServerConfig.

    Raises:
        ServingError: INVALID_ARGUMENT whose message starts with TF Serving's
            ``Error parsing text-format tensorflow.serving.ModelServerConfig``.
    """
    config = ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise invalid_argument(f"{PARSE_ERROR_PREFIX}: {exc}") from None
    return config


def read_config_file(path: str) -> model_server_config_pb2.ModelServerConfig:
    """Reads and parses ``path``; errors are ServingError INVALID_ARGUMENT."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise invalid_argument(f"Could not read model config file {path}: {exc}") from None
    return parse_config_text(text)


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """Returns the config TF Serving builds from ``--model_name``/``--model_base_path``."""
    config = ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name = name
    entry.base_path = base_path
    entry.model_platform = PLATFORM
    return config


def _policy(proto: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = proto.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy(kind="all")
    if kind == "specific":
        return VersionPolicy(kind="specific", versions=frozenset(policy.specific.versions))
    num = policy.latest.num_versions if kind == "latest" else 1
    return VersionPolicy(kind="latest", num_versions=max(1, num))


def models_from_config(config: model_server_config_pb2.ModelServerConfig) -> list[ModelSettings]:
    """Validates a ModelServerConfig and returns its models in config order.

    Raises:
        ServingError: INVALID_ARGUMENT for a config TF Serving would reject.
    """
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument(
            "ServerModelConfig type not supported. Only ModelConfigList is currently supported"
        )
    models: list[ModelSettings] = []
    seen: set[str] = set()
    for proto in config.model_config_list.config:
        if not proto.name:
            raise invalid_argument("Model config entry has no name")
        if proto.name in seen:
            raise invalid_argument(
                f"Illegal to list model {proto.name} multiple times in config list"
            )
        seen.add(proto.name)
        if not (os.path.isabs(proto.base_path) or "://" in proto.base_path):
            raise invalid_argument(
                f"Expected model {proto.name} to have an absolute path or URI; "
                f"got base_path()={proto.base_path}"
            )
        if proto.model_platform not in ("", PLATFORM):
            raise invalid_argument(
                f"Model {proto.name} has model_platform {proto.model_platform!r}; "
                f"only {PLATFORM!r} is served"
            )
        models.append(
            ModelSettings(
                name=proto.name, base_path=proto.base_path, policy=_policy(proto),
                labels=dict(proto.version_labels),
            )
        )
    return models

