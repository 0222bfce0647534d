"""Options shared by several commands (typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name (overrides model: in cloudserve.yaml)."),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        help="Target: local, aws, gcp (or an alias). Overrides target: and CLOUDSERVE_TARGET.",
    ),
]
ExportOption = Annotated[
    Path | None,
    typer.Option(
        "--export",
        "-e",
        help="SavedModel directory, or a base path holding numeric version directories.",
    ),
]
DeployVersionOption = Annotated[
    str | None,
    typer.Option(
        "--version",
        "-V",
        help="Version number to deploy as; default: the export directory's number.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="PATH=VALUE",
        help="Override any cloudserve.yaml value by its dotted path, e.g. "
        "targets.aws.instance_type=ml.m5.large. Repeatable.",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout", min=1, help="Seconds to wait for the target (default: timeout: or 1800)."
    ),
]
