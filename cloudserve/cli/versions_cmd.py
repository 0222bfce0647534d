"""Version commands: ``versions list``, ``versions set-default``, ``rollback``, ``status``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cloudserve.cli.context import state
from cloudserve.cli.options import ModelOption, SetOption, TargetOption, TimeoutOption
from cloudserve.output import Output

if TYPE_CHECKING:
    from cloudserve.records import VersionRecord

versions_app = typer.Typer(
    help="List a model's versions and choose the default one.", no_args_is_help=True
)


def unchanged(records: list[VersionRecord]) -> list[VersionRecord]:
    """Records a reading command shows: it changed none of them (``changed`` false)."""
    return [replace(r, changed=False) for r in records]


@versions_app.command("list")
def list_versions(
    ctx: typer.Context,
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
) -> None:
    """Every version of the model on the target, newest first."""
    from cloudserve.cli import render

    cli = state(ctx)
    settings = cli.settings(model=model, target=target, sets=sets)
    name = settings.require_model()
    with cli.adapter(settings) as adapter:
        records = unchanged(adapter.list_versions(name))
    cli.output.result(
        {"target": adapter.name, "model": name, "versions": [r.to_dict() for r in records]},
        lambda out: render.versions(out, records),
    )


@versions_app.command("set-default")
def set_default(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The version that gets all default traffic.")],
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
    timeout: TimeoutOption = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            "--sample",
            help="JSON predict body VERSION must answer before it takes traffic (default: "
            "sample: in cloudserve.yaml, else the configured export's, when it is VERSION).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Route all requests that name no version to VERSION; waits until it serves.

    VERSION first answers a smoke request (as in deploy); if it fails, the previous default
    keeps serving and the exit code is 4. Without a request to send, the record says so.
    """
    from cloudserve import deploy as workflow
    from cloudserve.cli import render

    cli = state(ctx)
    settings = cli.settings(model=model, target=target, sets=sets, timeout=timeout, sample=sample)
    name = settings.require_model()
    with cli.adapter(settings) as adapter:
        request = workflow.smoke_for_version(settings, adapter, version)
        record = workflow.set_default(
            adapter, name, version, request=request, timeout=settings.project.timeout
        )
    cli.output.result(
        {"target": adapter.name, "model": name, "record": record.to_dict()},
        lambda out: render.record(out, record, verb="default is now"),
    )


def rollback(
    ctx: typer.Context,
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Make the previous default version the default again."""
    from cloudserve.cli import render

    cli = state(ctx)
    settings = cli.settings(model=model, target=target, sets=sets, timeout=timeout)
    name = settings.require_model()
    with cli.adapter(settings) as adapter:
        record = adapter.rollback(name, timeout=settings.project.timeout)
    cli.output.result(
        {"target": adapter.name, "model": name, "record": record.to_dict()},
        lambda out: render.record(out, record, verb="rolled back: default is now"),
    )


def status(
    ctx: typer.Context,
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
) -> None:
    """The model's default version and the state of each version on the target."""
    from cloudserve.cli import render

    cli = state(ctx)
    settings = cli.settings(model=model, target=target, sets=sets)
    name = settings.require_model()
    with cli.adapter(settings) as adapter:
        records = unchanged(adapter.list_versions(name))
    default = next((r.version for r in records if r.is_default), None)

    def text(out: Output) -> None:
        out.line(f"model '{name}' on target '{adapter.name}': default version {default or 'none'}")
        render.versions(out, records)

    cli.output.result(
        {
            "target": adapter.name,
            "model": name,
            "default": default,
            "versions": [r.to_dict() for r in records],
        },
        text,
    )
