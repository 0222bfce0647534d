"""``cloudserve local ...``: look after the background runtime of the local target.

The main CLI mounts :data:`app`. When it has already built the local target's settings
from cloudserve.yaml it passes them as ``ctx.obj`` (a :class:`LocalConfig`); otherwise the
defaults apply. ``--repository`` overrides either.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudserve_adapters.local.adapter import LocalAdapter
from cloudserve_adapters.local.config import LocalConfig
from cloudserve_adapters.local.runtime_process import RuntimeInfo

app = typer.Typer(
    name="local",
    help="Start, stop and inspect the local runtime (target 'local').",
    no_args_is_help=True,
)

OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="text or json", case_sensitive=False)
]


@app.callback()
def _settings(
    ctx: typer.Context,
    repository: Annotated[
        Path | None,
        typer.Option(
            "--repository",
            "-r",
            envvar="CLOUDSERVE_LOCAL_REPOSITORY",
            help="model repository root (default: targets.local.repository, else .cloudserve)",
        ),
    ] = None,
) -> None:
    config = ctx.obj if isinstance(ctx.obj, LocalConfig) else LocalConfig()
    if repository is not None:
        config = config.model_copy(update={"repository": repository})
    ctx.obj = LocalAdapter(config)


def _runtime_dict(adapter: LocalAdapter, info: RuntimeInfo | None) -> dict[str, Any]:
    return {
        "running": info is not None,
        "pid": info.pid if info else None,
        "host": info.host if info else adapter.config.host,
        "grpc_port": info.grpc_port if info else None,
        "rest_port": info.rest_port if info else None,
        "repository": str(adapter.repository.root),
        "log": str(adapter.runtime.log_file),
    }


def _print(data: dict[str, Any], output: str, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if output.lower() == "json" else text)


@app.command()
def start(ctx: typer.Context, output: OutputOption = "text") -> None:
    """Start the runtime if it is not running (blocks until it is ready)."""
    adapter: LocalAdapter = ctx.obj
    with adapter.repository.locked():
        info = adapter.runtime.ensure_running()
    _print(
        _runtime_dict(adapter, info),
        output,
        f"runtime running (pid {info.pid}): REST http://{info.host}:{info.rest_port}, "
        f"gRPC {info.host}:{info.grpc_port}",
    )


@app.command()
def stop(ctx: typer.Context, output: OutputOption = "text") -> None:
    """Stop the runtime: SIGTERM, then SIGKILL after 10 s. Succeeds when none is running."""
    adapter: LocalAdapter = ctx.obj
    info = adapter.runtime.running()
    with adapter.repository.locked():
        stopped = adapter.runtime.stop()
    text = f"runtime stopped (pid {info.pid})" if stopped and info else "runtime was not running"
    _print({"stopped": stopped, "pid": info.pid if info else None}, output, text)


@app.command()
def status(ctx: typer.Context, output: OutputOption = "text") -> None:
    """Show the runtime's pid and ports and every model's versions."""
    adapter: LocalAdapter = ctx.obj
    info = adapter.runtime.running()
    data = _runtime_dict(adapter, info)
    data["models"] = {
        name: [v.to_dict() for v in adapter.list_versions(name)] for name in adapter.model_names()
    }
    lines = [
        f"runtime: running (pid {info.pid}) since {info.started}" if info else "runtime: stopped",
    ]
    if info:
        lines.append(f"REST: http://{info.host}:{info.rest_port}")
        lines.append(f"gRPC: {info.host}:{info.grpc_port}")
    lines.append(f"repository: {adapter.repository.root}")
    for name, versions in data["models"].items():
        described = ", ".join(
            f"{v['version']} {v['state']}" + (" (default)" if v["is_default"] else "")
            for v in versions
        )
        lines.append(f"  {name}: {described or 'no versions'}")
    _print(data, output, "\n".join(lines))


@app.command()
def logs(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="lines to show")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
) -> None:
    """Print the end of runtime.log (and follow it with --follow until Ctrl-C)."""
    adapter: LocalAdapter = ctx.obj
    log_file = adapter.runtime.log_file
    tail = adapter.runtime.log_tail(lines)
    if tail:
        typer.echo(tail)
    elif not follow:
        typer.echo(f"no runtime log yet at {log_file}", err=True)
    if not follow:
        return
    position = log_file.stat().st_size if log_file.exists() else 0
    try:
        while True:
            if log_file.exists() and log_file.stat().st_size > position:
                with log_file.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                position += len(chunk)
                typer.echo(chunk.decode("utf-8", "replace"), nl=False)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
