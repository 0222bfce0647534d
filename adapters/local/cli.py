"""``cloudserve local ...``: look after the background runtime of the local target.

The main CLI mounts :data:`app`. When it has already built the local target's settings
from cloudserve.yaml it passes them as ``ctx.obj`` (a :class:`LocalConfig`); otherwise the
defaults apply. ``--repository`` overrides either. Results go through the root command's
output (``cloudserve -o json local status`` prints one JSON object).

This module imports only typer at import time, so listing the commands (``cloudserve
--help``) does not load the adapter, pydantic or httpx.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cloudserve.cli.context import state

if TYPE_CHECKING:
    from cloudserve.output import Output
    from cloudserve_adapters.local.adapter import LocalAdapter
    from cloudserve_adapters.local.runtime_process import RuntimeInfo

app = typer.Typer(
    name="local",
    help="Start, stop and inspect the local runtime (target 'local').",
    no_args_is_help=True,
)


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
    from cloudserve_adapters.local.adapter import LocalAdapter
    from cloudserve_adapters.local.config import LocalConfig

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


def _lines(*lines: str):
    def text(out: Output) -> None:
        for line in lines:
            out.line(line)

    return text


@app.command()
def start(ctx: typer.Context) -> None:
    """Start the runtime if it is not running (blocks until it is ready)."""
    adapter: LocalAdapter = ctx.obj
    with adapter.repository.locked():
        info = adapter.runtime.ensure_running()
    state(ctx).output.result(
        _runtime_dict(adapter, info),
        _lines(
            f"runtime running (pid {info.pid}): REST http://{info.host}:{info.rest_port}, "
            f"gRPC {info.host}:{info.grpc_port}"
        ),
    )


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the runtime: SIGTERM, then SIGKILL after 10 s. Succeeds when none is running."""
    adapter: LocalAdapter = ctx.obj
    info = adapter.runtime.running()
    with adapter.repository.locked():
        stopped = adapter.runtime.stop()
    text = f"runtime stopped (pid {info.pid})" if stopped and info else "runtime was not running"
    state(ctx).output.result({"stopped": stopped, "pid": info.pid if info else None}, _lines(text))


@app.command()
def status(ctx: typer.Context) -> None:
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
    state(ctx).output.result(data, _lines(*lines))


@app.command()
def logs(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="lines to show")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new lines (text output only)")
    ] = False,
) -> None:
    """Print the end of runtime.log (and follow it with --follow until Ctrl-C)."""
    from cloudserve.errors import ConfigError

    adapter: LocalAdapter = ctx.obj
    out = state(ctx).output
    if follow and out.json:
        raise ConfigError(
            "--follow prints lines as they come; it cannot go with --output json",
            hint="drop --follow to get the last lines as one JSON object",
        )
    log_file = adapter.runtime.log_file
    tail = adapter.runtime.log_tail(lines).splitlines()
    if out.json:
        out.result({"log": str(log_file), "exists": log_file.exists(), "lines": tail}, _lines())
        return
    if tail:
        typer.echo("\n".join(tail))
    elif not follow:
        out.note(f"no runtime log yet at {log_file}")
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
