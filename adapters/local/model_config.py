"""The runtime's model config file: a text-format TF Serving ``ModelServerConfig``.

The file is the source of truth for what the local target serves: which versions of each
model are loaded (a ``specific`` version policy, so a version is served exactly while it is
listed) and which version the ``default`` label points at (cloudserve's runtime routes
requests that name no version to that label).

The protobuf classes come from ``tensorflow-serving-api``; the modules used here do not
import TensorFlow, so reading and writing the file stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cloudserve.errors import ConfigError, MissingDependency
from cloudserve_adapters.local.repository import write_atomic

DEFAULT_LABEL = "default"


def _protos() -> tuple[Any, Any]:
    """(text_format, model_server_config_pb2), or MissingDependency naming the extra."""
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2
    except ModuleNotFoundError as e:
        raise MissingDependency("tensorflow-serving-api", "runtime", provider="local") from e
    return text_format, model_server_config_pb2


@dataclass(frozen=True)
class ModelEntry:
    """One served model.

    Attributes:
        name: the model name requests use.
        base_path: absolute directory of its numeric version directories.
        versions: the versions the runtime should load, ascending.
        default: the version the ``default`` label points at, or None.
        other_labels: any other version labels, kept as found in the file.
    """

    name: str
    base_path: str
    versions: tuple[int, ...] = ()
    default: int | None = None
    other_labels: dict[str, int] = field(default_factory=dict)

    def with_version(self, version: int) -> ModelEntry:
        return replace(self, versions=tuple(sorted({*self.versions, version})))

    def without_version(self, version: int) -> ModelEntry:
        return replace(self, versions=tuple(v for v in self.versions if v != version))

    def with_default(self, version: int | None) -> ModelEntry:
        return replace(self, default=version)


@dataclass(frozen=True)
class ServedModels:
    """Every model in the config file, in file order."""

    models: tuple[ModelEntry, ...] = ()

    def get(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def put(self, entry: ModelEntry) -> ServedModels:
        """A copy with ``entry`` replacing the model of the same name (or appended)."""
        if self.get(entry.name) is None:
            return ServedModels((*self.models, entry))
        return ServedModels(tuple(entry if m.name == entry.name else m for m in self.models))

    def remove(self, name: str) -> ServedModels:
        return ServedModels(tuple(m for m in self.models if m.name != name))

    # ------------------------------------------------------------------ proto

    def to_proto(self) -> Any:
        """The ``ModelServerConfig`` message."""
        _, pb2 = _protos()
        config = pb2.ModelServerConfig()
        config_list = config.model_config_list
        config_list.SetInParent()  # an empty list is still a model_config_list
        for model in self.models:
            entry = config_list.config.add()
            entry.name = model.name
            entry.base_path = model.base_path
            entry.model_platform = "tensorflow"
            entry.model_version_policy.specific.versions.extend(model.versions)
            labels = dict(model.other_labels)
            if model.default is not None:
                labels[DEFAULT_LABEL] = model.default
            for key in sorted(labels):
                entry.version_labels[key] = labels[key]
        return config

    def to_text(self) -> str:
        """The config file's text."""
        text_format, _ = _protos()
        header = "# Written by cloudserve (target local); changes go through `cloudserve deploy`.\n"
        return header + text_format.MessageToString(self.to_proto())

    @classmethod
    def from_text(cls, text: str) -> ServedModels:
        """Parse a config file's text. Raises ConfigError when it is not a model list."""
        text_format, pb2 = _protos()
        config = pb2.ModelServerConfig()
        try:
            text_format.Parse(text, config)
        except text_format.ParseError as e:
            raise ConfigError(f"cannot parse the model config: {e}", provider="local") from e
        if config.WhichOneof("config") == "custom_model_config":
            raise ConfigError("the model config holds no model_config_list", provider="local")
        models = []
        for entry in config.model_config_list.config:
            labels = dict(entry.version_labels)
            default = labels.pop(DEFAULT_LABEL, None)
            policy = entry.model_version_policy
            specific = policy.specific if policy.HasField("specific") else None
            versions = tuple(sorted(specific.versions)) if specific else ()
            models.append(ModelEntry(entry.name, entry.base_path, versions, default, labels))
        return cls(tuple(models))


def read(path: Path) -> ServedModels:
    """The models in the config file at ``path`` (none when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ServedModels()
    return ServedModels.from_text(text)


def write(path: Path, served: ServedModels) -> None:
    """Replace the config file atomically, so a polling runtime never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, served.to_text())
