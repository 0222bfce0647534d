"""Preflight: every check that can run before a single byte is uploaded.

``run`` combines the checks common to every target (this module) with the target's own
(``Adapter.preflight``). Findings with severity ``error`` stop a deploy: ``raise_on_errors``
turns them into a :class:`~cloudserve.errors.PreflightError` (exit code 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudserve.errors import PreflightError
from cloudserve.records import DeploySpec, ExportInfo, Finding

if TYPE_CHECKING:
    from cloudserve.adapter import Adapter

SERVING_DEFAULT = "serving_default"


def check_export(
    export: ExportInfo, *, required_signature: str | None = SERVING_DEFAULT
) -> list[Finding]:
    """Is the export complete, and does it have the signature the target serves?"""
    findings: list[Finding] = []
    if not export.path.is_dir():
        return [
            Finding(
                "export.missing",
                "error",
                f"export directory {export.path} is gone",
                fix="re-export the model or fix the export path",
            )
        ]
    variable_files = [f for f in export.files if f.startswith("variables/")]
    if not export.has_variables:
        findings.append(
            Finding(
                "export.variables",
                "warning",
                "the export has no variables/ directory (fine for a model without variables)",
                fix="if the model has weights, re-export it: tf.saved_model.save writes variables/",
            )
        )
    elif "variables/variables.index" in variable_files and not any(
        f.startswith("variables/variables.data-") for f in variable_files
    ):
        findings.append(
            Finding(
                "export.incomplete",
                "error",
                "variables/variables.index is there but no variables.data-* shard: "
                "the export is incomplete",
                fix="re-export the model; an interrupted copy leaves exactly this",
            )
        )
    if not export.signatures:
        findings.append(
            Finding(
                "export.signatures",
                "error",
                "the export has no signatures, so nothing can serve it",
                fix="export with signatures=... (tf.saved_model.save) or model.export()",
            )
        )
    elif required_signature and required_signature not in export.signatures:
        names = ", ".join(sorted(s for s in export.signatures if not s.startswith("__")))
        findings.append(
            Finding(
                "export.serving_default",
                "error",
                f"the target serves signature '{required_signature}', the export has only: {names}",
                fix=f"re-export with signatures={{'{required_signature}': fn}}, or use the local "
                "target, which serves any signature by name",
            )
        )
    return findings


def run(adapter: Adapter, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
    """All findings for deploying ``export`` as ``spec`` with ``adapter``. No side effects."""
    required = getattr(adapter, "required_signature", SERVING_DEFAULT)
    return check_export(export, required_signature=required) + adapter.preflight(spec, export)


def raise_on_errors(findings: list[Finding]) -> list[Finding]:
    """Raise PreflightError if any finding is an error; otherwise return the findings."""
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PreflightError(
            f"preflight failed: {first.message}{more}", hint=first.fix or None, findings=findings
        )
    return findings
