"""The deploy workflow: inspect → preflight → plan → ``adapter.deploy``.

The CLI's commands call these functions; they hold no printing and no prompts, so the same
workflow runs from Python (``cloudserve.deploy.deploy(settings)``) or a CI step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudserve import preflight, registry
from cloudserve.adapter import Adapter
from cloudserve.export import inspect
from cloudserve.progress import Progress
from cloudserve.records import DeploySpec, ExportInfo, Finding, Plan, VersionRecord
from cloudserve.spec import Settings


@dataclass(frozen=True)
class Prepared:
    """An export inspected and resolved into a spec for one adapter; nothing checked yet."""

    adapter: Adapter
    spec: DeploySpec
    export: ExportInfo


@dataclass(frozen=True)
class Outcome:
    """What :func:`deploy` (or a dry run) found, planned and did."""

    findings: list[Finding]
    plan: Plan
    record: VersionRecord | None = None  # None for a dry run


def make_adapter(
    settings: Settings, *, progress: Progress | None = None, clients: Any | None = None
) -> Adapter:
    """The configured target's adapter with its validated settings.

    Raises:
        ConfigError: unknown target or invalid ``targets.<name>`` settings.
        NotSupported: a retired or not-yet-built target (``azure``, ``ml-v1``).
        MissingDependency: the adapter's package is not installed.
    """
    adapter_cls = registry.load(settings.target)
    return adapter_cls(settings.adapter_config(adapter_cls), clients=clients, progress=progress)


def prepare(settings: Settings, adapter: Adapter) -> Prepared:
    """Inspect the configured export and resolve the deploy spec (version included).

    Raises:
        ConfigError: no model or export configured, no SavedModel there, or no version.
    """
    export = inspect(settings.require_export())
    return Prepared(adapter=adapter, spec=settings.deploy_spec(export), export=export)


def check(prepared: Prepared) -> list[Finding]:
    """Every preflight finding (common rules, then the target's). Reads local files only."""
    return preflight.run(prepared.adapter, prepared.spec, prepared.export)


def dry_run(prepared: Prepared) -> Outcome:
    """Run every check and compute the plan; uploads and creates nothing.

    Raises:
        PreflightError: a check found an error (exit code 3).
    """
    findings = preflight.raise_on_errors(check(prepared))
    return Outcome(findings=findings, plan=prepared.adapter.plan(prepared.spec, prepared.export))


def deploy(
    prepared: Prepared,
    *,
    wait: bool = True,
    timeout: float | None = None,
    planned: Outcome | None = None,
) -> Outcome:
    """Check, plan, then deploy. Nothing is uploaded when a check fails.

    Blocks until the version is ready when ``wait`` is true, for at most ``timeout`` seconds
    (default: the spec's ``timeout_s``). Idempotent as :meth:`Adapter.deploy` is. ``planned``
    is the :func:`dry_run` outcome when the caller already has it (to show the plan first).

    Raises:
        PreflightError: a check found an error; nothing was uploaded or created.
        DeployTimeout, ProviderError, CredentialsError: from the target.
    """
    planned = planned or dry_run(prepared)
    adapter = prepared.adapter
    adapter.progress.status(
        f"deploying {prepared.spec.model} version {prepared.spec.version} to {adapter.name}"
    )
    record = adapter.deploy(
        prepared.spec,
        prepared.export,
        wait=wait,
        timeout=prepared.spec.timeout_s if timeout is None else timeout,
    )
    return Outcome(findings=planned.findings, plan=planned.plan, record=record)
