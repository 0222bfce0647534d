"""SageMaker preflight rules: run before anything is uploaded; no network, no side effects.

Every limit comes from ``limits.yaml`` beside this module (with its source URL); the instance
types and the tag rules come from botocore's own SageMaker service model, loaded only when a
rule needs them.
"""

from __future__ import annotations

import re
from functools import cache

from cloudserve import runtime_images
from cloudserve.errors import MissingDependency
from cloudserve.limits import limit, source
from cloudserve.records import DeploySpec, ExportInfo, Finding
from cloudserve_adapters.aws import images, naming, validation
from cloudserve_adapters.aws.config import AwsConfig

T = "aws"


def _finding(rule: str, severity: str, message: str, fix: str = "", key: str = "") -> Finding:
    return Finding(f"aws.{rule}", severity, message, fix=fix, source=source(T, key) if key else "")


@cache
def instance_types() -> frozenset[str] | None:
    """botocore's ``ProductionVariantInstanceType`` enum; None when botocore is absent."""
    try:
        import botocore.session
    except ModuleNotFoundError:
        return None
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def check_names(config: AwsConfig, spec: DeploySpec) -> list[Finding]:
    """Model, endpoint-config and endpoint names: ≤63 chars, SageMaker's name pattern."""
    pattern = re.compile(limit(T, "name_pattern"))
    longest = limit(T, "name_max_chars")
    names = {
        "model and endpoint config": naming.resource_name(spec.model, spec.version),
        "composed endpoint config": naming.composed_config_name(spec.model, "0" * 64),
        "endpoint": config.endpoint_name or spec.model,
    }
    findings = []
    for what, name in names.items():
        if len(name) > longest or not pattern.fullmatch(name):
            findings.append(
                _finding(
                    "name",
                    "error",
                    f"SageMaker {what} name '{name}' is invalid: at most {longest} letters, "
                    "digits and inner hyphens",
                    fix="use a model name like 'my-model' (and endpoint_name likewise)",
                    key="name_pattern",
                )
            )
    return findings


def check_layout(config: AwsConfig, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
    """model.tar.gz layout: ``<int > 0>/saved_model.pb``; ``code/`` only from a directory."""
    findings = []
    if not spec.version.isdigit() or int(spec.version) <= 0:
        findings.append(
            _finding(
                "version",
                "error",
                f"version '{spec.version}' cannot be TF Serving's version directory in "
                "model.tar.gz: it must be an integer > 0 (version 0 fails to load)",
                fix="deploy with --version 1 (or another positive integer)",
            )
        )
    if "saved_model.pb" not in export.files:
        findings.append(
            _finding(
                "layout",
                "error",
                "the export has no saved_model.pb at its top level, so the tarball would have "
                "no <version>/saved_model.pb",
                fix="pass the SavedModel directory itself (the one holding saved_model.pb)",
            )
        )
    if config.code_dir is not None and not (config.code_dir / "inference.py").is_file():
        findings.append(
            _finding(
                "code_dir",
                "warning" if config.code_dir.is_dir() else "error",
                f"code_dir {config.code_dir} has no inference.py; the container ignores code/ "
                "without it",
                fix="put inference.py (and requirements.txt) in code_dir, or drop code_dir",
            )
        )
    return findings


def check_required(config: AwsConfig) -> list[Finding]:
    """A bucket and a well-formed execution role ARN."""
    findings = []
    if not config.bucket:
        findings.append(
            _finding(
                "bucket",
                "error",
                "no S3 bucket configured for model.tar.gz",
                fix="set targets.aws.bucket (and create_bucket: true to have cloudserve create it)",
            )
        )
    if not config.role_arn:
        findings.append(
            _finding(
                "role_arn",
                "error",
                "no execution role: SageMaker needs one to pull the image and the model",
                fix="set targets.aws.role_arn: arn:aws:iam::<account>:role/<SageMaker role>",
            )
        )
    elif not re.fullmatch(limit(T, "role_arn_pattern"), config.role_arn):
        findings.append(
            _finding(
                "role_arn",
                "error",
                f"role_arn '{config.role_arn}' is not an IAM role ARN",
                fix="use arn:aws:iam::<12-digit account>:role/<name>",
                key="role_arn_pattern",
            )
        )
    return findings


def check_instances(config: AwsConfig) -> list[Finding]:
    """Real-time variants: a known instance type, count ≥ 1, sane autoscaling bounds."""
    if config.serverless is not None:
        return []
    findings = []
    known = instance_types()
    if known is None:
        findings.append(
            _finding("instance_type", "info", "instance type not checked: botocore not installed")
        )
    elif config.instance_type not in known:
        family = config.instance_type.split(".")[1:2]
        close = sorted(t for t in known if t.split(".")[1:2] == family)
        findings.append(
            _finding(
                "instance_type",
                "error",
                f"'{config.instance_type}' is not a SageMaker inference instance type",
                fix="choose one of: " + (", ".join(close[:8]) or "ml.m5.large, ml.c5.xlarge, ..."),
            )
        )
    if config.instance_count < limit(T, "instance_count_min"):
        findings.append(
            _finding(
                "instance_count",
                "error",
                f"instance_count {config.instance_count} is below 1",
                fix="set instance_count: 1 or more",
                key="instance_count_min",
            )
        )
    if config.max_instances is not None and not (1 <= config.min_instances <= config.max_instances):
        findings.append(
            _finding(
                "scaling",
                "error",
                f"autoscaling needs 1 <= min_instances ({config.min_instances}) <= "
                f"max_instances ({config.max_instances})",
                fix="raise max_instances or lower min_instances",
            )
        )
    if config.max_instances is not None and config.target_invocations_per_instance <= 0:
        findings.append(
            _finding(
                "scaling",
                "error",
                "target_invocations_per_instance must be positive",
                fix="set it to the invocations per minute one instance handles (e.g. 70)",
            )
        )
    return findings


def check_serverless(config: AwsConfig, export: ExportInfo) -> list[Finding]:
    """Serverless: memory size, concurrency bounds, CPU only, the 5 GB disk."""
    serverless = config.serverless
    if serverless is None:
        return []
    findings = []
    sizes = limit(T, "serverless_memory_mb")
    if serverless.memory_mb not in sizes:
        findings.append(
            _finding(
                "serverless.memory",
                "error",
                f"serverless memory_mb {serverless.memory_mb} is not one of {sizes}",
                fix="pick one of " + ", ".join(map(str, sizes)),
                key="serverless_memory_mb",
            )
        )
    top = limit(T, "serverless_max_concurrency")
    if not 1 <= serverless.max_concurrency <= top:
        findings.append(
            _finding(
                "serverless.max_concurrency",
                "error",
                f"serverless max_concurrency {serverless.max_concurrency} is outside 1-{top}",
                fix=f"set max_concurrency between 1 and {top}",
                key="serverless_max_concurrency",
            )
        )
    provisioned = serverless.provisioned_concurrency
    if provisioned is not None and not 1 <= provisioned <= serverless.max_concurrency:
        findings.append(
            _finding(
                "serverless.provisioned",
                "error",
                f"provisioned_concurrency {provisioned} must be between 1 and max_concurrency "
                f"({serverless.max_concurrency})",
                fix="lower provisioned_concurrency or raise max_concurrency",
                key="serverless_max_concurrency",
            )
        )
    gpu_asked = "instance_type" in config.model_fields_set
    if gpu_asked and images.processor(config.instance_type) == "gpu":
        findings.append(
            _finding(
                "serverless.gpu",
                "error",
                f"serverless endpoints have no GPUs, but instance_type is {config.instance_type}",
                fix="drop serverless for a GPU real-time endpoint, or drop the GPU instance_type",
                key="serverless_memory_mb",
            )
        )
    disk = limit(T, "serverless_disk_bytes")
    if export.total_bytes > disk:
        findings.append(
            _finding(
                "serverless.disk",
                "error",
                f"the export is {export.total_bytes} bytes; a serverless endpoint has {disk} "
                "bytes of disk for the archive and its extraction",
                fix="serve it from a real-time endpoint (drop serverless)",
                key="serverless_disk_bytes",
            )
        )
    return findings


def check_tags(config: AwsConfig, spec: DeploySpec) -> list[Finding]:
    """User tags against botocore's TagKey/TagValue (pattern, length), the reserved ``aws:``
    and ``cloudserve:`` prefixes, and the 50-tag limit (with cloudserve's own tags)."""
    tags = {**config.tags, **spec.tags}
    if not tags:
        return []
    try:
        validation.service_model("sagemaker")
    except MissingDependency as e:
        return [_finding("tags", "info", f"tags not checked: {e.message}", fix=e.hint)]
    findings = []
    for key, value in tags.items():
        problems = validation.shape_violations("sagemaker", "TagKey", key, f"tag key {key!r}")
        problems += validation.shape_violations(
            "sagemaker", "TagValue", value, f"tag {key!r} value"
        )
        if key.lower().startswith(("aws:", "cloudserve:")):
            problems.append(f"tag key {key!r} uses a reserved prefix (aws:, cloudserve:)")
        for problem in problems:
            findings.append(
                _finding(
                    "tags",
                    "error",
                    f"SageMaker would refuse the tags: {problem}",
                    fix="tags allow letters, digits, spaces and _ . : / = + - @ (keys 1-128, "
                    "values up to 256 characters); e.g. team: ml-platform",
                    key="tag_value_max_chars",
                )
            )
    own = 4  # cloudserve:model, :version, :sha256 or :default-history
    top = validation.service_model("sagemaker").shape_for("TagList").metadata["max"]
    if len(tags) + own > top:
        findings.append(
            _finding(
                "tags",
                "error",
                f"{len(tags)} tags plus cloudserve's {own} exceed SageMaker's {top} per resource",
                fix=f"keep at most {top - own} tags",
            )
        )
    return findings


def check_variants(config: AwsConfig, spec: DeploySpec) -> list[Finding]:
    """A traffic split: whole percents summing to 100 over 1-10 variants, real-time only."""
    count = max(1, len(spec.traffic or {}))
    if count > limit(T, "variants_max"):
        return [
            _finding(
                "variants",
                "error",
                f"{count} versions share traffic; an endpoint config holds at most "
                f"{limit(T, 'variants_max')} variants",
                fix="split traffic between fewer versions",
                key="variants_max",
            )
        ]
    if count > 1 and config.serverless is not None:
        return [
            _finding(
                "variants",
                "error",
                "serverless endpoints serve a single production variant: no traffic split",
                fix="drop traffic:, or serve from a real-time endpoint",
                key="serverless_memory_mb",
            )
        ]
    if spec.traffic and (
        sum(spec.traffic.values()) != 100 or any(p < 0 for p in spec.traffic.values())
    ):
        return [
            _finding(
                "variants",
                "error",
                f"traffic {spec.traffic} must give each version a percent >= 0, summing to 100",
                fix="e.g. traffic: {'1': 90, '2': 10}",
            )
        ]
    return []


def check_image(config: AwsConfig, export: ExportInfo) -> list[Finding]:
    """Is there an AWS TF Serving image for the export's TF version? (skipped with ``image``)."""
    if config.image:
        longest = limit(T, "image_max_chars")
        if len(config.image) > longest or not re.fullmatch(r"\S+", config.image):
            return [
                _finding(
                    "image",
                    "error",
                    f"image '{config.image}' is not a valid image URI (≤{longest} chars)",
                    fix="use <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
                    key="image_max_chars",
                )
            ]
        return []
    proc = "cpu" if config.serverless else images.processor(config.instance_type)
    if proc == "neuron":
        return [
            _finding(
                "image",
                "error",
                f"{config.instance_type} is an Inferentia/Trainium instance: the TensorFlow "
                "Serving image cannot run there (it needs a Neuron-compiled model and a Neuron "
                "container)",
                fix="choose a CPU or GPU instance_type (e.g. ml.m5.large, ml.g5.xlarge), or set "
                "image: to a Neuron serving image for a Neuron-compiled export",
            )
        ]
    choice = images.resolve(export.tf_minor, config.region, proc)
    if choice is None:
        pushed = images.pushed_runtime(export.tf_minor, config.region, proc)
        if pushed is not None:
            return [
                _finding(
                    "image",
                    "info",
                    f"no AWS image serves TF {export.tf_version}; serving with the cloudserve "
                    f"runtime image {pushed.reference}",
                )
            ]
        flavour = " Graviton" if proc == "graviton" else ""
        minor = export.tf_minor
        return [
            _finding(
                "image",
                "error",
                f"no AWS{flavour} TensorFlow Serving image serves TF {export.tf_version} "
                f"(newest: {images.newest(proc)}) and no cloudserve runtime image was pushed "
                f"to ECR in {config.region}",
                fix=runtime_images.push_command(
                    "aws",
                    variant="gpu" if proc == "gpu" else "cpu",
                    tf_version=f"{minor[0]}.{minor[1]}" if minor else None,
                )
                + ", or "
                + images.runtime_image_hint()
                if proc in ("cpu", "gpu")
                else images.runtime_image_hint(),
            )
        ]
    if export.tf_version is None:
        return [
            _finding(
                "image",
                "warning",
                f"the export does not record its TF version; serving with {choice.uri}",
                fix="set image: to pin the serving image",
            )
        ]
    if not choice.exact:
        return [
            _finding(
                "image",
                "warning",
                f"no AWS image for TF {export.tf_version}; serving with the next newer one, "
                f"{choice.uri}",
                fix="re-export with a TF version AWS serves, or " + images.runtime_image_hint(),
            )
        ]
    return [_finding("image", "info", f"serving image: {choice.uri}")]


def check_payload(config: AwsConfig) -> list[Finding]:
    """States the request size limit predict enforces for this endpoint kind."""
    key = "serverless_payload_bytes" if config.serverless else "payload_bytes"
    return [
        _finding(
            "payload",
            "info",
            f"predict requests over {limit(T, key)} bytes are refused; use async inference or "
            "batch transform for larger inputs",
            key=key,
        )
    ]


def run(config: AwsConfig, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
    """Every SageMaker finding for deploying ``export`` as ``spec``."""
    return [
        *check_names(config, spec),
        *check_layout(config, spec, export),
        *check_required(config),
        *check_instances(config),
        *check_serverless(config, export),
        *check_variants(config, spec),
        *check_tags(config, spec),
        *check_image(config, export),
        *check_payload(config),
    ]
