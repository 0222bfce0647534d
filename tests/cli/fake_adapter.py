"""An in-memory adapter for CLI plumbing tests (registered as target ``fake``).

Its state lives on the class, so several CLI invocations in one test see the same "cloud";
the ``fake_target`` fixture resets it. ``UPLOADS`` records every upload, so tests can prove
that a dry run or a failed preflight uploaded nothing. ``BROKEN`` versions load but fail
every predict (with log lines), ``PREDICTS`` records every predict as (version asked, version
that answered), and ``DEFAULT_ONLY`` makes it a target that cannot send a request to a
version without traffic (``predict(version=...)`` raises NotSupported).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from cloudserve.adapter import Adapter, AdapterConfig, Feature
from cloudserve.errors import ConfigError, NotFound, NotSupported, ProviderError
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, PlanAction, VersionRecord


class FakeServerless(AdapterConfig):
    memory_mb: Literal[1024, 2048, 3072] = Field(default=1024, description="Worker memory.")


class FakeConfig(AdapterConfig):
    """Settings of the fake target."""

    region: str = Field(default="test-1", description="Region of the fake cloud.")
    project: str | None = Field(default=None, description="A string that may look numeric.")
    memory_mb: int | None = Field(default=None, description="Memory of one instance.")
    api_token: str | None = Field(default=None, description="A credential (never printed).")
    kms_key_id: str | None = Field(default=None, description="A key id (not a secret).")
    serverless: FakeServerless | None = Field(default=None, description="Serverless mode.")


class FakeAdapter(Adapter):
    """A fake cloud kept in memory."""

    name = "fake"
    config_class = FakeConfig
    features = frozenset({Feature.TRAFFIC_SPLIT})

    MODELS: ClassVar[dict[str, dict[str, Any]]] = {}
    UPLOADS: ClassVar[list[str]] = []
    BROKEN: ClassVar[set[str]] = set()
    PREDICTS: ClassVar[list[tuple[str | None, str]]] = []
    DEFAULT_ONLY: ClassVar[list[bool]] = [False]

    @classmethod
    def reset(cls) -> None:
        cls.MODELS.clear()
        cls.UPLOADS.clear()
        cls.BROKEN.clear()
        cls.PREDICTS.clear()
        cls.DEFAULT_ONLY[0] = False

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        if version in self.BROKEN:
            return [f"loading {model}/{version}", "Could not find variable dense/bias"][-lines:]
        return []

    def instance_memory_mb(self) -> int | None:
        return self.config.memory_mb

    def _model(self, model: str) -> dict[str, Any]:
        if model not in self.MODELS:
            raise NotFound(f"model '{model}' not found", provider=self.name)
        return self.MODELS[model]

    def _record(self, model: str, version: str, *, changed: bool = True) -> VersionRecord:
        state = self._model(model)
        is_default = state["default"] == version
        return VersionRecord(
            model=model,
            version=version,
            state="AVAILABLE",
            is_default=is_default,
            traffic=100 if is_default else 0,
            artifact_uri=f"fake://{model}/{version}",
            changed=changed,
        )

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        if self.config.region == "nowhere":
            return [Finding("fake.region", "error", "region 'nowhere' does not exist", fix="x")]
        return []

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        versions = self.MODELS.get(spec.model, {}).get("versions", {})
        verb = "skip" if spec.version in versions else "create"
        return Plan(
            target=self.name,
            model=spec.model,
            version=spec.version,
            actions=(PlanAction(verb, "fake-version", f"{spec.model}/{spec.version}"),),
        )

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        self.ensure_deployable(spec, export)
        state = self.MODELS.setdefault(spec.model, {"versions": {}, "default": None, "past": []})
        digest = str(export.path)
        if spec.version in state["versions"]:
            if state["versions"][spec.version] != digest:
                raise ConfigError(f"version {spec.version} exists with other content")
            return self._record(spec.model, spec.version, changed=False)
        self.progress.transfer(
            f"{spec.model}/{spec.version}", export.total_bytes, export.total_bytes
        )
        self.UPLOADS.append(f"{spec.model}/{spec.version}")
        state["versions"][spec.version] = digest
        if spec.set_default or state["default"] is None:
            self._switch(spec.model, spec.version)
        record = self._record(spec.model, spec.version)
        return record if wait else VersionRecord(**{**record.to_dict(), "state": "CREATING"})

    def _switch(self, model: str, version: str) -> None:
        state = self._model(model)
        if state["default"] not in (None, version):
            state["past"].append(state["default"])
        state["default"] = version

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        if version not in self._model(model)["versions"]:
            raise NotFound(f"version {version} of '{model}' not found", provider=self.name)
        self._switch(model, version)
        return self._record(model, version)

    def list_versions(self, model: str) -> list[VersionRecord]:
        versions = self._model(model)["versions"]
        return [self._record(model, v) for v in sorted(versions, key=int, reverse=True)]

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        state = self._model(model)
        if version is not None and self.DEFAULT_ONLY[0] and version != state["default"]:
            raise NotSupported("the fake cannot reach a version without traffic")
        chosen = version or state["default"]
        if chosen not in state["versions"]:
            raise NotFound(f"version {chosen} of '{model}' not found", provider=self.name)
        self.PREDICTS.append((version, chosen))
        if chosen in self.BROKEN:
            raise ProviderError(
                "Could not find variable dense/bias", http_status=400, provider=self.name
            )
        answer = payload.get("instances", payload.get("inputs"))
        return {"predictions": answer, "served_by": chosen}

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        state = self._model(model)
        if not state["past"]:
            raise NotFound(f"'{model}' has no earlier default", provider=self.name)
        state["default"] = state["past"].pop()
        return self._record(model, state["default"])

    def delete(self, model: str, version: str | None = None) -> list[str]:
        if model not in self.MODELS:
            return []
        if version is None:
            del self.MODELS[model]
            return [model]
        state = self.MODELS[model]
        if version not in state["versions"]:
            return []
        if state["default"] == version and len(state["versions"]) > 1:
            raise ConfigError("cannot delete the default version while others remain")
        del state["versions"][version]
        return [f"{model}/{version}"]
