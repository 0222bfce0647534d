"""The one error hierarchy of cloudserve.

Every expected failure is a :class:`CloudserveError` subclass. Each class carries the
process exit code the CLI uses for it, so CI steps can branch on the code:

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     unexpected internal error (a bug: run again with --verbose)
2     usage or configuration error (bad flag, bad cloudserve.yaml)
3     preflight failed: nothing was uploaded or created
4     the provider (cloud API, runtime) reported an error
5     timed out waiting for the provider
6     credentials missing or rejected
7     asked for something the target does not support
8     a model, version or resource was not found
====  ==========================================================

Adapters translate SDK exceptions at their boundary (``raise ProviderError(...) from e``)
so the CLI never has to know a cloud SDK's exception types.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1


class CloudserveError(Exception):
    """Base class of every error cloudserve expects and explains.

    Args:
        message: one line saying what went wrong.
        hint: one line saying what to do about it; without one the class's
            ``default_hint`` applies, so an error never comes without a hint.
        provider: the target that raised it, when there is one.
        details: more lines shown below the message, e.g. the serving container's last log
            lines (:meth:`cloudserve.adapter.Adapter.version_logs`).
    """

    exit_code: int = 1
    kind: str = "error"
    default_hint: str = "run again with --verbose for details"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        provider: str | None = None,
        details: list[str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.provider = provider
        self.details = list(details or [])

    def to_dict(self) -> dict[str, object]:
        """The stable JSON shape printed under ``--output json``."""
        return {
            "kind": self.kind,
            "message": self.message,
            "hint": self.hint,
            "provider": self.provider,
            "exit_code": self.exit_code,
            "details": list(self.details),
        }


class ConfigError(CloudserveError):
    """A flag, environment variable or cloudserve.yaml value is invalid or missing."""

    exit_code = 2
    kind = "config"
    default_hint = (
        "fix the flag or cloudserve.yaml setting named above (`cloudserve init` "
        "writes a commented cloudserve.yaml)"
    )


class MissingDependency(ConfigError):
    """An optional extra (a cloud SDK, TensorFlow) is not installed."""

    kind = "missing_dependency"

    def __init__(self, package: str, extra: str, *, provider: str | None = None):
        super().__init__(
            f"{package} is not installed",
            hint=f"pip install 'cloudserve[{extra}]'",
            provider=provider,
        )


class PreflightError(CloudserveError):
    """One or more preflight findings of severity ``error``; nothing was uploaded."""

    exit_code = 3
    kind = "preflight"
    default_hint = "fix the errors above, then run `cloudserve check` again; nothing was uploaded"

    def __init__(self, message: str, *, findings: list | None = None, **kw):
        super().__init__(message, **kw)
        self.findings = list(findings or [])

    def to_dict(self) -> dict[str, object]:
        d = super().to_dict()
        d["findings"] = [f.to_dict() for f in self.findings]
        return d


class ProviderError(CloudserveError):
    """The target's API (or the local runtime) reported a failure.

    ``record`` is the version's :class:`~cloudserve.records.VersionRecord` when the failure
    concerns one version (a smoke request it failed: state ``FAILED`` and why).
    """

    exit_code = 4
    kind = "provider"
    default_hint = "the target's own message is above; run again with --verbose for details"

    def __init__(
        self, message: str, *, http_status: int | None = None, record: object = None, **kw
    ):
        super().__init__(message, **kw)
        self.http_status = http_status
        self.record = record

    def to_dict(self) -> dict[str, object]:
        d = super().to_dict()
        if self.record is not None:
            d["record"] = self.record.to_dict()  # type: ignore[attr-defined]
        return d


class DeployTimeout(CloudserveError):
    """A wait for the provider (upload, long-running operation, endpoint update) timed out."""

    exit_code = 5
    kind = "timeout"
    default_hint = "raise --timeout, or run the same command again: it is idempotent"


class CredentialsError(CloudserveError):
    """Credentials are missing, expired or rejected. Never includes the credential itself."""

    exit_code = 6
    kind = "credentials"
    default_hint = (
        "log in with the target's own tool (aws sso login, gcloud auth "
        "application-default login, az login) or set its credential variables"
    )


class NotSupported(CloudserveError):
    """The target does not offer the feature that was asked for."""

    exit_code = 7
    kind = "not_supported"
    default_hint = "`cloudserve targets` lists what each target supports"


class NotFound(CloudserveError):
    """The model, version or resource named does not exist on the target."""

    exit_code = 8
    kind = "not_found"
    default_hint = "`cloudserve versions list` and `cloudserve status` show what exists"
