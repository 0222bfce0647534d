"""The provider-adapter contract every deploy target implements.

An adapter turns the portable verbs (plan, deploy, set-default, predict, rollback, delete)
into one provider's API calls. The CLI and the core only ever talk to this class.

Rules for implementers:

* Import the provider SDK lazily (inside methods or a ``sdk.py`` helper), never at module
  import time; a missing SDK raises :class:`~cloudserve.errors.MissingDependency`.
* Receive SDK clients through one seam: the ``clients`` argument (a factory object the
  adapter defines). Tests pass a factory pointed at emulators; nothing patches methods.
* Provider-only settings live in the adapter's pydantic ``config_class`` (built from
  ``targets.<name>`` of cloudserve.yaml), never as new methods on this base class.
* Translate SDK exceptions at the boundary: ``raise ProviderError(...) from e``.
* "Default version" means one thing everywhere: *the version that receives all traffic
  when a request names no version*.
"""

from __future__ import annotations

import abc
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from cloudserve.errors import NotSupported
from cloudserve.progress import NullProgress, Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, VersionRecord


class Feature(StrEnum):
    """Optional capabilities. An adapter lists what it supports in ``features``."""

    GPU = "gpu"
    AUTOSCALING = "autoscaling"
    SERVERLESS = "serverless"
    TRAFFIC_SPLIT = "traffic_split"  # canary: several versions share traffic
    MODEL_REGISTRY = "model_registry"
    CUSTOM_IMAGE = "custom_image"  # serve with a user-given container image


class AdapterConfig(BaseModel):
    """Base of every adapter's typed settings. Unknown keys are an error (typos surface)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Adapter(abc.ABC):
    """One deploy target.

    Args:
        config: the target's validated settings (an instance of ``config_class``).
        clients: the SDK client factory seam; ``None`` builds real clients lazily.
        progress: where long operations report progress.
    """

    #: registry name, e.g. "aws"; also the key under ``targets:`` in cloudserve.yaml
    name: ClassVar[str]
    #: the pydantic model for this target's settings
    config_class: ClassVar[type[AdapterConfig]]
    #: optional features this adapter offers
    features: ClassVar[frozenset[Feature]] = frozenset()
    #: the extra that installs this adapter's SDK ("aws", "gcp"); None if it needs none
    extra: ClassVar[str | None] = None
    #: the signature the target's serving stack calls; None when any signature can be served
    required_signature: ClassVar[str | None] = "serving_default"
    #: True when the target serves exports with a managed TF Serving container, which loads
    #: them TF1-style (preflight warns about exports only TF2 loading can run)
    tf_serving_loading: ClassVar[bool] = False

    def __init__(
        self,
        config: AdapterConfig,
        *,
        clients: Any | None = None,
        progress: Progress | None = None,
    ):
        self.config = config
        self.clients = clients
        self.progress: Progress = progress or NullProgress()

    # ------------------------------------------------------------------ features

    def require(self, *features: Feature) -> None:
        """Raise :class:`NotSupported` naming every feature in ``features`` this target lacks."""
        missing = [f.value for f in features if f not in self.features]
        if missing:
            raise NotSupported(
                f"target '{self.name}' does not support: {', '.join(missing)}",
                hint="supported here: "
                + (", ".join(sorted(f.value for f in self.features)) or "none"),
                provider=self.name,
            )

    def ensure_deployable(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Run every preflight check and raise PreflightError on an error finding.

        ``deploy`` implementations call this first, so bad input is refused before any
        upload even when the adapter is used without the CLI.
        """
        from cloudserve import preflight

        return preflight.raise_on_errors(preflight.run(self, spec, export))

    def instance_memory_mb(self) -> int | None:
        """Memory of one serving instance as configured, for the memory preflight rule.

        None when the target has no fixed instance size (the default).
        """
        return None

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The serving container's last ``lines`` log lines for ``version``, oldest first,
        from the target's own log service (runtime log, ``docker logs``, pod logs, CloudWatch
        Logs, Cloud Logging, Azure deployment logs).

        Called when a version fails to become ready or fails its smoke request, so the error
        can show why. Never raises for a missing log: returns ``[]`` when the target keeps
        none or it cannot be read (the default).
        """
        return []

    # ------------------------------------------------------------------ contract

    @abc.abstractmethod
    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Target-specific checks of the export and settings. No network, no side effects.

        The core runs its own common checks too; this returns only this target's findings.
        """

    @abc.abstractmethod
    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What :meth:`deploy` would create or change. Reads provider state; writes nothing."""

    @abc.abstractmethod
    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Upload the export and create the version's resources.

        Idempotent: deploying the same export as the same version again changes nothing and
        returns a record with ``changed=False``. Deploying *different* content under an
        existing version number raises :class:`~cloudserve.errors.ConfigError`.

        The new version becomes the default only if ``spec.set_default`` is true or the model
        has no default yet. If making it the default fails, the previous default keeps
        serving and the error says so.

        Blocks until the version is ready when ``wait`` is true, for at most ``timeout``
        seconds (then :class:`~cloudserve.errors.DeployTimeout`).
        """

    @abc.abstractmethod
    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Route all traffic that names no version to ``version``. Blocks until it serves.

        Idempotent. Raises NotFound for an unknown model or version; on failure the previous
        default keeps serving.
        """

    @abc.abstractmethod
    def list_versions(self, model: str) -> list[VersionRecord]:
        """Every version of ``model`` on the target, newest first. NotFound if no model."""

    @abc.abstractmethod
    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """Send a TF Serving REST predict body; return the parsed JSON response.

        ``version=None`` goes to the default version. Payloads over the target's request
        limit are refused locally before anything is sent.
        """

    @abc.abstractmethod
    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make the previous default version the default again (see :meth:`set_default`).

        Raises NotFound when there is no earlier default to go back to.
        """

    @abc.abstractmethod
    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Remove one version, or the whole model when ``version`` is None.

        Idempotent: deleting what is already gone succeeds and returns ``[]``. Refuses
        (ConfigError) to delete the default version while other versions remain. Returns
        the names of the resources removed.
        """
