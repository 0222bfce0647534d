"""``cloudserve delete``: remove a version or a whole model, after confirmation."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudserve.cli.context import state
from cloudserve.cli.options import ModelOption, SetOption, TargetOption
from cloudserve.errors import ConfigError
from cloudserve.output import stdin_is_interactive


def delete(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Option("--version", "-V", help="Delete only this version; default: the model."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
) -> None:
    """Delete one version (--version) or the whole model and everything it uploaded.

    Asks for confirmation on a terminal (answering no deletes nothing and exits 0); without a
    terminal (CI) it needs --yes and never prompts. Deleting what is already gone succeeds.
    """
    cli = state(ctx)
    settings = cli.settings(model=model, target=target, sets=sets)
    name = settings.require_model()
    what = f"version {version} of model '{name}'" if version else f"model '{name}' (every version)"
    if not (yes or cli.yes):
        if cli.output.json or not stdin_is_interactive():
            raise ConfigError(
                f"refusing to delete {what} without confirmation",
                hint="pass --yes to delete non-interactively",
            )
        if not cli.output.confirm(f"Delete {what} on target '{settings.target}'?"):
            cli.output.line(f"nothing deleted: you answered no for {what}")
            return
    with cli.adapter(settings) as adapter:
        removed = adapter.delete(name, version)
    cli.output.result(
        {"target": adapter.name, "model": name, "version": version, "deleted": removed},
        lambda out: out.line(
            f"deleted {what}: " + (", ".join(removed) if removed else "nothing left to delete")
        ),
    )
