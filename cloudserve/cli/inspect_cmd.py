"""``cloudserve inspect``: what is in a SavedModel export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloudserve.cli.context import state


def inspect_export(
    ctx: typer.Context,
    export: Annotated[
        Path | None,
        typer.Argument(
            help="SavedModel directory or base path; default: export: of cloudserve.yaml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show an export's size, files, TF version and every signature's inputs and outputs.

    Reads the files only: no TensorFlow needed, nothing changed.
    """
    from cloudserve.cli import render
    from cloudserve.export import inspect
    from cloudserve.preflight import estimate_memory_mb

    cli = state(ctx)
    path = export if export is not None else cli.settings().require_export()
    info = inspect(path)
    memory_mb = estimate_memory_mb(info)
    cli.output.result(
        {"export": info.to_dict(), "memory_estimate_mb": memory_mb},
        lambda out: render.export_info(out, info, memory_mb),
    )
