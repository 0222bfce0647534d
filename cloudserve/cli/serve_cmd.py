"""``cloudserve serve``: run the cloudserve runtime (the TF-Serving-compatible model server)."""

from __future__ import annotations

import typer

from cloudserve.errors import MissingDependency


def serve(ctx: typer.Context) -> None:
    """Run the cloudserve runtime; every argument is passed to it unchanged.

    `cloudserve serve --help` shows the runtime's own options. Needs the runtime extra.
    """
    try:
        from cloudserve_runtime.server import main as server_main
    except ModuleNotFoundError as e:
        raise MissingDependency(e.name or "cloudserve_runtime", "runtime") from e
    raise typer.Exit(server_main(list(ctx.args)) or 0)
