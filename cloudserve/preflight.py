"""Preflight: every check that can run before a single byte is uploaded.

``run`` combines the checks common to every target (this module) with the target's own
(``Adapter.preflight``). Findings with severity ``error`` stop a deploy: ``raise_on_errors``
turns them into a :class:`~cloudserve.errors.PreflightError` (exit code 3).

The common rules read their numbers from ``limits/common.yaml`` and, for artifact size and file
count, from the target's own table (keys ``artifact_max_bytes`` and ``artifact_max_files``) when
it has them. Every rule only reads local files: no network, no side effects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from cloudserve import export, limits
from cloudserve.adapter import Feature
from cloudserve.errors import PreflightError
from cloudserve.records import DeploySpec, ExportInfo, Finding
from cloudserve.spec import check_traffic as check_split
from cloudserve.units import human_bytes

if TYPE_CHECKING:
    from cloudserve.adapter import Adapter

SERVING_DEFAULT = "serving_default"
COMMON = "common"
#: where the SavedModel layout these rules check is documented
SAVED_MODEL_DOC = export.SAVED_MODEL_DOC
SIGNATURE_DOC = "https://www.tensorflow.org/tfx/serving/signature_defs"
MIB = 1024 * 1024

_SHARD = re.compile(r"^variables/variables\.data-(\d+)-of-(\d+)$")


def _missing_shards(variable_files: list[str]) -> list[str]:
    """Names of ``variables.data-i-of-n`` shards the present shards say should exist but don't."""
    present: set[tuple[int, int]] = set()
    for name in variable_files:
        if m := _SHARD.match(name):
            present.add((int(m.group(1)), int(m.group(2))))
    missing: list[str] = []
    for total in sorted({n for _, n in present}):
        missing += [
            f"variables/variables.data-{i:05d}-of-{total:05d}"
            for i in range(total)
            if (i, total) not in present
        ]
    return missing


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
                source=SAVED_MODEL_DOC,
            )
        ]
    variable_files = [f for f in export.files if f.startswith("variables/")]
    if not export.has_variables:
        if export.variables_read:
            findings.append(
                Finding(
                    "export.variables",
                    "error",
                    f"the export has no variables/ directory, but its signatures read "
                    f"{len(export.variables_read)} variable(s) "
                    f"({', '.join(export.variables_read[:3])}"
                    f"{', ...' if len(export.variables_read) > 3 else ''}): it cannot load",
                    fix="copy the whole export directory (variables/ included), or re-export "
                    "the model with model.export(DIR) or tf.saved_model.save",
                    source=SAVED_MODEL_DOC,
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
                source=SAVED_MODEL_DOC,
            )
        )
    elif missing := _missing_shards(variable_files):
        findings.append(
            Finding(
                "export.incomplete",
                "error",
                f"the export is incomplete: {len(missing)} variables shard(s) missing "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})",
                fix="copy the whole export directory again, or re-export the model",
                source=SAVED_MODEL_DOC,
            )
        )
    if not export.signatures:
        findings.append(
            Finding(
                "export.signatures",
                "error",
                "the export has no signatures, so nothing can serve it",
                fix="export with signatures=... (tf.saved_model.save) or model.export()",
                source=SIGNATURE_DOC,
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
                source=SIGNATURE_DOC,
            )
        )
    return findings


def check_tf1_loading(export: ExportInfo, adapter: Adapter) -> list[Finding]:
    """Warn when the target's managed TF Serving container cannot run the export.

    TF Serving loads a SavedModel the TF1 way (restore op, then main op). A Keras 3 model
    saved with ``tf.saved_model.save`` reads variables that restore op never fills
    (:attr:`ExportInfo.variables_unrestored`): it loads, then fails every predict with
    "Could not find variable ...". cloudserve's own runtime serves it through TF2 loading.
    """
    if not export.variables_unrestored or not getattr(adapter, "tf_serving_loading", False):
        return []
    names = export.variables_unrestored
    return [
        Finding(
            "export.tf1_loading",
            "warning",
            f"TF Serving (the managed container of target '{adapter.name}') cannot run this "
            f"export: its signatures read {len(names)} variable(s) the TF1-style loader never "
            f"restores ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}); this is "
            "what tf.saved_model.save writes for a Keras 3 model",
            fix="export the Keras model with model.export(DIR) (a TF Serving export), or use "
            "--target local, whose runtime loads it with tf.saved_model.load",
            source="https://github.com/tensorflow/serving/issues/2250",
        )
    ]


def check_artifact_limits(export: ExportInfo, target: str) -> list[Finding]:
    """Export size and file count against ``artifact_max_bytes``/``artifact_max_files`` of the
    target's limits table; a target without those keys has no such limit to check."""
    table = limits.table(target)
    findings: list[Finding] = []
    if "artifact_max_bytes" in table:
        cap = int(limits.limit(target, "artifact_max_bytes"))
        if export.total_bytes > cap:
            findings.append(
                Finding(
                    "export.size",
                    "error",
                    f"the export is {human_bytes(export.total_bytes)}; target '{target}' "
                    f"accepts at most {human_bytes(cap)}",
                    fix="shrink the model (quantize, prune, drop unused assets) or use a target "
                    "without this limit (--target local)",
                    source=limits.source(target, "artifact_max_bytes"),
                )
            )
    if "artifact_max_files" in table:
        cap = int(limits.limit(target, "artifact_max_files"))
        if export.file_count > cap:
            findings.append(
                Finding(
                    "export.files",
                    "error",
                    f"the export has {export.file_count} files; target '{target}' accepts at "
                    f"most {cap}",
                    fix="remove unneeded files from assets/, or re-export with fewer "
                    "variables shards",
                    source=limits.source(target, "artifact_max_files"),
                )
            )
    return findings


def _bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def estimate_memory_mb(export: ExportInfo) -> int:
    """Memory one serving process needs for ``export``, in MiB (a documented heuristic).

    ``baseline + graph_factor x saved_model.pb bytes + variables_factor x variables bytes``,
    with the factors from ``limits/common.yaml``.
    """
    graph = export.path / export.saved_model_file
    graph_bytes = graph.stat().st_size if graph.is_file() else 0
    variables_bytes = _bytes_under(export.path / "variables")
    needed = (
        limits.limit(COMMON, "memory_graph_factor") * graph_bytes
        + limits.limit(COMMON, "memory_variables_factor") * variables_bytes
    )
    return int(limits.limit(COMMON, "memory_baseline_mb") + -(-needed // MIB))


def check_memory(export: ExportInfo, instance_memory_mb: int | None) -> list[Finding]:
    """The model's memory needs against one serving instance's memory (when the target has one).

    An error when the weights alone plus the baseline cannot fit; a warning when the estimate
    (:func:`estimate_memory_mb`) exceeds ``memory_warn_fraction`` of the instance.
    """
    if not instance_memory_mb:
        return []
    baseline = limits.limit(COMMON, "memory_baseline_mb")
    floor_mb = baseline + -(-_bytes_under(export.path / "variables") // MIB)
    estimate = estimate_memory_mb(export)
    fix = "choose a bigger instance (more memory) in targets.<target> of cloudserve.yaml"
    if floor_mb > instance_memory_mb:
        return [
            Finding(
                "memory.insufficient",
                "error",
                f"the model's weights alone need about {floor_mb} MiB with the serving process; "
                f"one instance has {instance_memory_mb} MiB",
                fix=fix,
                source=limits.source(COMMON, "memory_baseline_mb"),
            )
        ]
    if estimate > limits.limit(COMMON, "memory_warn_fraction") * instance_memory_mb:
        return [
            Finding(
                "memory.estimate",
                "warning",
                f"the model needs about {estimate} MiB while loading; one instance has "
                f"{instance_memory_mb} MiB, so startup health checks may fail",
                fix=fix,
                source=limits.source(COMMON, "memory_variables_factor"),
            )
        ]
    return []


def check_model_name(name: str) -> list[Finding]:
    """A model name every target can put in a URL, and a warning when it is not portable."""
    pattern = limits.limit(COMMON, "model_name_pattern")
    max_chars = limits.limit(COMMON, "model_name_max_chars")
    if not re.fullmatch(pattern, name) or len(name) > max_chars:
        return [
            Finding(
                "name.invalid",
                "error",
                f"model name '{name}' is not valid: use 1-{max_chars} letters, digits, '.', "
                "'_' or '-', starting with a letter or digit",
                fix="set another model name (model: in cloudserve.yaml, or --model)",
                source=limits.source(COMMON, "model_name_pattern"),
            )
        ]
    if not re.fullmatch(limits.limit(COMMON, "portable_name_pattern"), name):
        return [
            Finding(
                "name.portable",
                "warning",
                f"model name '{name}' is not valid on every target (Azure ML allows 3-32 "
                "letters, digits and '-', starting with a letter)",
                fix="a name like 'my-model-1' works everywhere",
                source=limits.source(COMMON, "portable_name_pattern"),
            )
        ]
    return []


def check_version(version: str) -> list[Finding]:
    """The version is a positive integer, as TF Serving version directories must be."""
    if re.fullmatch(limits.limit(COMMON, "version_pattern"), version):
        return []
    return [
        Finding(
            "version.format",
            "error",
            f"version '{version}' is not a positive integer without leading zeros",
            fix="pass --version N (e.g. --version 3), or export into a numeric directory",
            source=limits.source(COMMON, "version_pattern"),
        )
    ]


def check_tf_version(export: ExportInfo) -> list[Finding]:
    """The export records the TensorFlow version that wrote it (targets pick images by it)."""
    if export.tf_version:
        return []
    return [
        Finding(
            "export.tf_version",
            "warning",
            "the export does not record the TensorFlow version that wrote it, so the serving "
            "image cannot be matched to it",
            fix="re-export with TensorFlow 2.x (tf.saved_model.save records it)",
            source=SAVED_MODEL_DOC,
        )
    ]


def check_traffic(spec: DeploySpec, *, rule: str, source: str) -> list[Finding]:
    """A canary split is whole percentages summing to 100, and not combined with set_default.

    The CLI validates the split when it reads the settings (:func:`cloudserve.spec.check_traffic`);
    targets with :attr:`Feature.TRAFFIC_SPLIT` repeat it here, under their own ``rule`` and
    ``source``, for specs built in Python.
    """
    if spec.traffic is None:
        return []
    findings: list[Finding] = []
    try:
        check_split(spec.traffic)
    except ValueError as e:
        findings.append(
            Finding(
                rule,
                "error",
                f"traffic split {spec.traffic}: {e}",
                fix="e.g. --traffic 1=90,2=10",
                source=source,
            )
        )
    if spec.set_default and spec.traffic.get(spec.version) != 100:
        findings.append(
            Finding(
                rule,
                "error",
                "set_default sends all traffic to the new version; it cannot go with a split",
                fix="drop --set-default for a canary, or drop the traffic split",
                source=source,
            )
        )
    return findings


def check_common(adapter: Adapter, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
    """Every rule common to all targets, in a stable order."""
    required = getattr(adapter, "required_signature", SERVING_DEFAULT)
    findings = check_export(export, required_signature=required)
    if export.path.is_dir():
        findings += check_artifact_limits(export, adapter.name)
        findings += check_memory(export, adapter.instance_memory_mb())
        findings += check_tf_version(export)
        findings += check_tf1_loading(export, adapter)
    return findings + check_model_name(spec.model) + check_version(spec.version)


def run(adapter: Adapter, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
    """All findings for deploying ``export`` as ``spec`` with ``adapter``. No side effects.

    Raises:
        NotSupported: ``spec.traffic`` asks for a canary split on a target without
            :attr:`Feature.TRAFFIC_SPLIT` (exit code 7).
    """
    if spec.traffic is not None:
        adapter.require(Feature.TRAFFIC_SPLIT)
    return check_common(adapter, spec, export) + adapter.preflight(spec, export)


def raise_on_errors(findings: list[Finding]) -> list[Finding]:
    """Raise PreflightError if any finding is an error; otherwise return the findings."""
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PreflightError(f"preflight failed: {first.message}{more}", findings=findings)
    return findings
