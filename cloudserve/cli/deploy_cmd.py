"""``cloudserve check`` and ``cloudserve deploy``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cloudserve.cli.context import state
from cloudserve.cli.options import (
    DeployVersionOption,
    ExportOption,
    ModelOption,
    SetOption,
    TargetOption,
    TimeoutOption,
)

if TYPE_CHECKING:
    from cloudserve.output import Output

TrafficOption = Annotated[
    str | None,
    typer.Option(
        "--traffic",
        metavar="V=PCT,...",
        help="Canary split of the requests that name no version, e.g. 2=10,1=90: whole "
        "percents summing to 100, between deployed versions and the one being deployed. "
        "Overrides traffic: and CLOUDSERVE_TRAFFIC. Only on targets with traffic_split.",
    ),
]


def check(
    ctx: typer.Context,
    model: ModelOption = None,
    export: ExportOption = None,
    version: DeployVersionOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
    traffic: TrafficOption = None,
) -> None:
    """Run every preflight check for deploying the export; touch nothing.

    Exit code 3 when a check finds an error.
    """
    from cloudserve import deploy, preflight
    from cloudserve.cli import render

    cli = state(ctx)
    settings = cli.settings(
        model=model, export=export, version=version, target=target, sets=sets, traffic=traffic
    )
    with cli.adapter(settings) as adapter:
        prepared = deploy.prepare(settings, adapter)
        findings = preflight.raise_on_errors(deploy.check(prepared))
    cli.output.result(
        {
            "target": adapter.name,
            "model": prepared.spec.model,
            "version": prepared.spec.version,
            "export": str(prepared.export.path),
            "settings": adapter.config.model_dump(mode="json"),
            "findings": [f.to_dict() for f in findings],
        },
        lambda out: render.findings(out, findings),
    )


def deploy(
    ctx: typer.Context,
    model: ModelOption = None,
    export: ExportOption = None,
    version: DeployVersionOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Run every check and print the plan; upload and create nothing."
        ),
    ] = False,
    set_default: Annotated[
        bool,
        typer.Option("--set-default", help="Make this version the default once it is ready."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait until the version serves."),
    ] = True,
    timeout: TimeoutOption = None,
    traffic: TrafficOption = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            "--sample",
            help="JSON predict body the new version must answer before it takes traffic "
            "(default: sample: in cloudserve.yaml, else the export's warm-up records, else "
            "zeros shaped like its signature).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the export, upload it, create the version, verify it, then route traffic.

    Before a version takes traffic it must answer a smoke request through the target's own
    predict path; if it fails, the previous default keeps serving and the exit code is 4.

    The first version of a model becomes its default; later ones only with --set-default,
    or a share of the traffic with --traffic (a canary: --traffic 2=10,1=90). Re-deploying
    the same export as the same version changes nothing, except a changed --traffic split.
    """
    from cloudserve import deploy as workflow
    from cloudserve.cli import render

    cli = state(ctx)
    out = cli.output
    settings = cli.settings(
        model=model,
        export=export,
        version=version,
        target=target,
        sets=sets,
        set_default=True if set_default else None,
        timeout=timeout,
        traffic=traffic,
        sample=sample,
    )
    with cli.adapter(settings) as adapter:
        prepared = workflow.prepare(settings, adapter)
        planned = workflow.dry_run(prepared)
        if dry_run:
            outcome = planned
        else:
            if not out.json:
                render.findings(out, planned.findings)
                render.plan(out, planned.plan)
            outcome = workflow.deploy(prepared, wait=wait, planned=planned)
    data = {
        "target": adapter.name,
        "dry_run": dry_run,
        "findings": [f.to_dict() for f in outcome.findings],
        "plan": outcome.plan.to_dict(),
        "record": outcome.record.to_dict() if outcome.record else None,
    }

    def text(out: Output) -> None:
        if outcome.record is None:
            render.findings(out, outcome.findings)
            render.plan(out, outcome.plan)
            out.line("dry run: nothing was uploaded or created")
        else:
            render.record(out, outcome.record, verb="deployed")

    out.result(data, text)
