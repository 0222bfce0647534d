"""Text renderings of cloudserve's records (the JSON renderings are their ``to_dict``)."""

from __future__ import annotations

from collections.abc import Sequence

from cloudserve.output import Output
from cloudserve.records import ExportInfo, Finding, Plan, TensorInfo, VersionRecord
from cloudserve.units import human_bytes


def _shape(tensor: TensorInfo) -> str:
    if tensor.shape is None:
        return "unknown rank"
    return (
        "("
        + ", ".join(str(d) for d in tensor.shape)
        + ("," if len(tensor.shape) == 1 else "")
        + ")"
    )


def export_info(out: Output, info: ExportInfo, memory_mb: int) -> None:
    """Like ``saved_model_cli show --all``: where, how big, which TF, each signature's tensors."""
    version = f" (version {info.version})" if info.version is not None else ""
    out.line(f"export:      {info.path}{version}")
    if info.base_path:
        out.line(f"base path:   {info.base_path}")
    out.line(f"size:        {human_bytes(info.total_bytes)} in {info.file_count} files")
    out.line(f"tensorflow:  {info.tf_version or 'not recorded'}")
    out.line(f"tags:        {', '.join(info.tags)}")
    out.line(f"memory:      about {memory_mb} MiB to serve (estimate)")
    for name, sig in sorted(info.signatures.items()):
        out.line()
        out.line(f"signature '{name}'" + (f"  method: {sig.method}" if sig.method else ""))
        for kind, tensors in (("input", sig.inputs), ("output", sig.outputs)):
            for tname, t in sorted(tensors.items()):
                out.line(f"  {kind:<6}  {tname}: {t.dtype} {_shape(t)}  ({t.tensor_name})")


def findings(out: Output, items: Sequence[Finding]) -> None:
    """One line per finding, with its fix and source indented below."""
    if not items:
        out.line("preflight: all checks passed")
        return
    errors = sum(f.severity == "error" for f in items)
    warnings = sum(f.severity == "warning" for f in items)
    out.line(f"preflight: {errors} error(s), {warnings} warning(s)")
    for f in items:
        out.line(f"  {f.severity:<7} {f.id}: {f.message}")
        if f.fix:
            out.line(f"          fix: {f.fix}")
        if f.source:
            out.line(f"          see: {f.source}")


def plan(out: Output, p: Plan) -> None:
    """The resources a deploy would create or change."""
    out.line(f"plan: model '{p.model}' version {p.version} on target '{p.target}'")
    if not p.changes_anything:
        out.line("  nothing to change: this version is already deployed")
    out.table(
        ["action", "resource", "name", "detail"],
        [(a.verb, a.resource, a.name, a.detail) for a in p.actions],
    )


def record(out: Output, r: VersionRecord, *, verb: str) -> None:
    """One line about a version after ``verb`` ("deployed", "default is now")."""
    default = ", default" if r.is_default else ""
    unchanged = " (unchanged: already deployed)" if not r.changed else ""
    out.line(f"{verb} {r.model} version {r.version}: {r.state}{default}{unchanged}")
    if r.artifact_uri:
        out.line(f"  artifact: {r.artifact_uri}")
    if r.message:
        out.line(f"  {r.message}")


def versions(out: Output, records: Sequence[VersionRecord]) -> None:
    """A table of versions, newest first."""
    out.table(
        ["version", "state", "default", "traffic", "created", "artifact"],
        [
            (
                r.version,
                r.state,
                "yes" if r.is_default else "",
                f"{r.traffic}%",
                r.created or "",
                r.artifact_uri,
            )
            for r in records
        ],
    )
