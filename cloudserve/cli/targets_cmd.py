"""``cloudserve targets``: the installed adapters and every setting they take."""

from __future__ import annotations

import json
from typing import Any

import typer

from cloudserve.cli.context import state
from cloudserve.output import Output


def targets(ctx: typer.Context) -> None:
    """The installed targets, their features and every setting of targets.<name>."""
    from cloudserve import registry
    from cloudserve.cli.target_info import describe

    cli = state(ctx)
    rows = [describe(name, entry) for name, entry in sorted(registry.available().items())]
    cli.output.result({"targets": rows}, lambda out: _text(out, rows))


def _text(out: Output, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        aliases = f" (aliases: {', '.join(row['aliases'])})" if row["aliases"] else ""
        out.line(f"target {row['name']}{aliases}  [{row['entry_point']}]")
        if not row["installed"]:
            out.line(f"  not available: {row['error']}")
            out.line()
            continue
        if row["description"]:
            out.line(f"  {row['description']}")
        if row["extra"]:
            state_ = "installed" if row["sdk_installed"] else f"missing: {row['install']}"
            out.line(f"  SDK ({row['extra']} extra): {state_}")
        out.line(f"  features: {', '.join(row['features']) or 'none'}")
        out.table(
            ["setting", "type", "default", "description"],
            [
                (
                    s["name"],
                    s["type"],
                    "(required)" if s["required"] else json.dumps(s["default"]),
                    s["description"],
                )
                for s in row["settings"]
            ],
        )
        out.line()
