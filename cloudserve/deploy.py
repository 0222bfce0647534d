"""The deploy workflow: inspect → preflight → plan → ``adapter.deploy`` → verify → default.

The CLI's commands call these functions; they hold no printing and no prompts, so the same
workflow runs from Python (``cloudserve.deploy.deploy(settings)``) or a CI step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cloudserve import preflight, registry, verify
from cloudserve.adapter import Adapter
from cloudserve.errors import CloudserveError, DeployTimeout, NotFound, NotSupported, ProviderError
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
    sample: Path | None = None  # a user's smoke request (``--sample`` / ``sample:``)


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
    return Prepared(
        adapter=adapter,
        spec=settings.deploy_spec(export),
        export=export,
        sample=settings.project.sample,
    )


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


def current_default(adapter: Adapter, model: str) -> str | None:
    """The version serving ``model``'s traffic now; None for a new model (or none set)."""
    try:
        versions = adapter.list_versions(model)
    except NotFound:
        return None
    return next((r.version for r in versions if r.is_default), None)


def deploy(
    prepared: Prepared,
    *,
    wait: bool = True,
    timeout: float | None = None,
    planned: Outcome | None = None,
) -> Outcome:
    """Check, plan, deploy, verify, then route traffic. Nothing is uploaded when a check fails.

    When the model already has a default, the new version is deployed *without* traffic,
    must answer a smoke request (:mod:`cloudserve.verify`) sent through the target's predict
    path with ``version=V``, and only then becomes the default (when ``spec.set_default``)
    or gets its share of a ``traffic`` split (applied by deploying the spec again).
    A target that cannot reach a non-default version (``NotSupported``) gets the version as
    default first, verified right after, and rolled back to the previous default if it fails
    (the record says so). A model's first version is its default at once (nothing else
    serves) and is verified the same way.

    Blocks until the version is ready when ``wait`` is true, for at most ``timeout`` seconds
    (default: the spec's ``timeout_s``); with ``wait`` false nothing is verified and the
    record says so. Idempotent as :meth:`Adapter.deploy` is. ``planned`` is the
    :func:`dry_run` outcome when the caller already has it (to show the plan first).

    Raises:
        PreflightError: a check found an error; nothing was uploaded or created.
        ConfigError: a bad sample or warm-up file (before anything is uploaded).
        ProviderError: the target failed, or the version failed its smoke request (then the
            previous default keeps serving; the error carries the version's record, state
            ``FAILED``, and the serving container's last log lines).
        DeployTimeout, CredentialsError: from the target.
    """
    planned = planned or dry_run(prepared)
    adapter, spec, export = prepared.adapter, prepared.spec, prepared.export
    timeout = spec.timeout_s if timeout is None else timeout
    request = verify.smoke_request(
        export, sample=prepared.sample, required_signature=adapter.required_signature
    )
    previous = current_default(adapter, spec.model)
    hold_back = wait and previous not in (None, spec.version)
    adapter.progress.status(
        f"deploying {spec.model} version {spec.version} to {adapter.name}"
        + (" (no traffic until it answers a smoke request)" if hold_back else "")
    )
    try:
        record = adapter.deploy(
            replace(spec, set_default=False, traffic=None) if hold_back else spec,
            export,
            wait=wait,
            timeout=timeout,
        )
    except (ProviderError, DeployTimeout) as e:
        _attach_logs(e, adapter, spec.model, spec.version)
        raise
    if not wait:
        record = _note(record, "not verified: deployed with --no-wait")
    elif isinstance(request, str):
        adapter.progress.status(f"not verified: {request}")
        record = _note(record, f"not verified: {request}")
        if hold_back and spec.set_default:
            record = _keep_changed(
                adapter.set_default(spec.model, spec.version, timeout=timeout), record
            )
    else:
        record = _verify_and_route(adapter, spec, record, request, previous, hold_back, timeout)
    if hold_back and spec.traffic:  # the canary split, once the version has answered
        split = adapter.deploy(spec, export, wait=True, timeout=timeout)
        record = replace(
            split, changed=split.changed or record.changed, message=record.message or split.message
        )
    return Outcome(findings=planned.findings, plan=planned.plan, record=record)


def smoke_for_version(
    settings: Settings, adapter: Adapter, version: str
) -> verify.SmokeRequest | str:
    """The smoke request for an already deployed ``version``: the configured sample, else the
    configured export's (when it is that version); else why there is none.

    Raises:
        ConfigError: a bad sample or warm-up file.
    """
    if settings.project.sample is not None:
        return verify.load_sample(settings.project.sample)
    if settings.project.export is None:
        return "no --sample given and no export configured"
    try:
        export = inspect(settings.project.export)
        same = settings.resolve_version(export) == version
    except CloudserveError:
        return f"no --sample given and {settings.project.export} is not a readable export"
    if not same:
        return f"no --sample given and the configured export is not version {version}"
    return verify.smoke_request(export, required_signature=adapter.required_signature)


def set_default(
    adapter: Adapter,
    model: str,
    version: str,
    *,
    request: verify.SmokeRequest | str,
    timeout: float,
) -> VersionRecord:
    """Make ``version`` the default once it answers ``request`` (``versions set-default``).

    Verified like a deploy (see :func:`deploy`): asked by version number first, or routed,
    asked and rolled back on targets that cannot reach a version without traffic. With no
    request (``request`` is the reason) or when it already is the default, it is switched
    as asked and the record says it was not verified. Blocks until the default serves.

    Raises:
        NotFound: no such model or version.
        ProviderError: the version failed its smoke request; the previous default serves.
    """
    previous = current_default(adapter, model)
    if previous in (None, version) or isinstance(request, str):
        record = adapter.set_default(model, version, timeout=timeout)
        return _note(record, f"not verified: {request}") if isinstance(request, str) else record
    record = next((r for r in adapter.list_versions(model) if r.version == version), None)
    if record is None:
        raise NotFound(f"model '{model}' has no version {version}", provider=adapter.name)
    spec = DeploySpec(
        model=model, export=Path(), version=version, target=adapter.name, set_default=True
    )
    unchanged = replace(record, changed=False)
    return _verify_and_route(adapter, spec, unchanged, request, previous, True, timeout)


def _verify_and_route(
    adapter: Adapter,
    spec: DeploySpec,
    record: VersionRecord,
    request: verify.SmokeRequest,
    previous: str | None,
    hold_back: bool,
    timeout: float,
) -> VersionRecord:
    model, version = spec.model, spec.version
    adapter.progress.status(f"smoke request to version {version} ({request.source})")
    try:
        problem = _smoke(adapter, model, version, request)
    except NotSupported:
        if hold_back:
            return _verify_after_traffic(adapter, spec, record, request, previous, timeout)
        problem = _smoke(adapter, model, None, request)  # it is the default: reach it so
    if problem is not None:
        outcome = (
            f"takes no traffic; version {previous} keeps serving"
            if hold_back
            else "is the model's default: no other version serves it"
        )
        raise _smoke_failed(adapter, record, request, problem, outcome)
    if hold_back and spec.set_default:
        record = _keep_changed(adapter.set_default(model, version, timeout=timeout), record)
    return _note(record, f"verified: answered a smoke request ({request.source})")


#: why a target gets the fallback of verifying right after routing
_UNREACHABLE = "the target cannot send a request to a version without traffic"


def _verify_after_traffic(
    adapter: Adapter,
    spec: DeploySpec,
    record: VersionRecord,
    request: verify.SmokeRequest,
    previous: str | None,
    timeout: float,
) -> VersionRecord:
    """For targets without per-version predicts: route, verify, roll back on failure."""
    model, version = spec.model, spec.version
    if not spec.set_default:
        return _note(
            record,
            f"not verified: {_UNREACHABLE}; it is verified when it becomes the default",
        )
    adapter.progress.status(f"{_UNREACHABLE}: verifying version {version} right after routing")
    record = _keep_changed(adapter.set_default(model, version, timeout=timeout), record)
    problem = _smoke(adapter, model, None, request)
    if problem is None:
        return _note(
            record,
            f"verified right after taking traffic ({_UNREACHABLE}): answered a smoke request "
            f"({request.source})",
        )
    if previous is not None:
        adapter.set_default(model, previous, timeout=timeout)
    failed = _note(
        replace(record, is_default=False, traffic=0) if previous is not None else record,
        f"verified right after taking traffic ({_UNREACHABLE}); rolled back to version {previous}",
    )
    outcome = (
        f"was rolled back right after it took traffic; version {previous} serves again"
        if previous is not None
        else "is the model's default: no other version serves it"
    )
    raise _smoke_failed(adapter, failed, request, problem, outcome)


def _smoke(
    adapter: Adapter, model: str, version: str | None, request: verify.SmokeRequest
) -> str | None:
    """None when the version answers; else the model's error. NotSupported propagates."""
    try:
        response = adapter.predict(model, request.payload, version=version)
    except NotSupported:
        raise
    except CloudserveError as e:
        return e.message
    return verify.check_answer(response)


def _smoke_failed(
    adapter: Adapter,
    record: VersionRecord,
    request: verify.SmokeRequest,
    problem: str,
    outcome: str,
) -> ProviderError:
    failed = replace(
        record,
        state="FAILED",
        message=f"failed its smoke request ({request.source}): {problem}"
        + (f"; {record.message}" if record.message else ""),
    )
    logs = adapter.version_logs(record.model, record.version)
    return ProviderError(
        f"version {record.version} of '{record.model}' failed its smoke request and {outcome}. "
        f"The model said: {problem}",
        hint="fix the model and deploy it as a new version"
        + (
            ", or pass --sample FILE with a request it can answer"
            if "zeros" in request.source
            else ""
        )
        + (" (the serving container's last log lines are above)" if logs else ""),
        provider=adapter.name,
        record=failed,
        details=[f"{adapter.name} log: {line}" for line in logs],
    )


def _attach_logs(error: CloudserveError, adapter: Adapter, model: str, version: str) -> None:
    """Give a failed deploy the serving container's last log lines, unless it has some."""
    if not error.details:
        error.details = [
            f"{adapter.name} log: {line}" for line in adapter.version_logs(model, version)
        ]


def _note(record: VersionRecord, note: str) -> VersionRecord:
    return replace(record, message=f"{record.message}; {note}" if record.message else note)


def _keep_changed(new: VersionRecord, deployed: VersionRecord) -> VersionRecord:
    """The record after routing; ``changed`` if the deploy or the routing changed anything."""
    return replace(new, changed=new.changed or deployed.changed)
