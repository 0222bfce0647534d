"""``cloudserve init``: write a commented cloudserve.yaml."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudserve.cli.context import state
from cloudserve.cli.options import ExportOption, ModelOption, TargetOption
from cloudserve.errors import ConfigError

HEADER = """\
# cloudserve.yaml: what `cloudserve deploy` deploys, and where.
# Precedence: this file < CLOUDSERVE_* environment variables < --set PATH=VALUE < flags.
# `cloudserve targets` lists every target setting; README.md has the full reference.

# Model name on the target. 3-32 letters, digits and '-', starting with a letter, is valid
# on every target.
model: {model}

# The SavedModel directory (holding saved_model.pb), or a base path holding numeric version
# directories (the highest one is deployed). Relative to this file.
export: {export}

# The version to deploy as. Default: the number in the export directory's name.
# version: 1

# Where to deploy: local (cloudserve's runtime on this machine), aws (SageMaker), gcp (Vertex AI).
target: {target}

# Make every newly deployed version the default at once (a model's first version always is).
set_default: false

# Canary: split the requests that name no version (whole percents summing to 100) between the
# version being deployed and deployed ones; only on targets with traffic_split.
# traffic: {{"2": 10, "1": 90}}

# Seconds to wait for the target (deploys, default-version switches).
timeout: 1800

# Labels put on the resources the target creates.
tags: {{}}

# Settings of each target, checked against the target's schema before anything happens.
targets:
"""


def _comment_lines(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 96 - len(indent))]


def target_block(name: str, settings: list[dict[str, Any]], *, active: bool) -> list[str]:
    """The ``targets.<name>`` block: every setting commented out with its default.

    The active target's key is left uncommented so its settings only need un-commenting.
    """
    lines = [f"  {name}:" if active else f"  # {name}:"]
    names = [s["name"] for s in settings]
    for row in settings:
        depth = row["name"].count(".")
        indent = "    " + "  " * depth
        leaf = row["name"].rsplit(".", 1)[-1]
        has_children = any(n.startswith(row["name"] + ".") for n in names)
        note = "(required) " if row["required"] else ""
        if row["description"] or note:
            lines += _comment_lines(f"{note}{row['description']}", indent)
        value = "" if has_children else " " + json.dumps(row["default"])
        if row["required"] and not has_children:
            value = " ..."
        lines.append(f"{indent}# {leaf}:{value}")
    if len(lines) == 1 and active:
        lines[0] = f"  {name}: {{}}"
    return lines


def render_template(model: str, export: str, target: str) -> str:
    """The text of a new cloudserve.yaml for ``target``, documenting every installed target."""
    from cloudserve import registry
    from cloudserve.cli.target_info import settings_of
    from cloudserve.errors import CloudserveError

    text = HEADER.format(model=model, export=json.dumps(export), target=target)
    lines: list[str] = []
    names = sorted(registry.available(), key=lambda n: (n != target, n))
    for name in names:
        try:
            settings = settings_of(registry.load(name).config_class)
        except CloudserveError:
            settings = []
            if name != target:
                continue
        lines += target_block(name, settings, active=name == target)
    return text + "\n".join(lines) + "\n"


def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="File to write; default: --config or ./cloudserve.yaml."),
    ] = None,
    model: ModelOption = None,
    export: ExportOption = None,
    target: TargetOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented cloudserve.yaml with every setting of every installed target."""
    from cloudserve import registry

    cli = state(ctx)
    dest = path or cli.config or Path("cloudserve.yaml")
    if dest.exists() and not force:
        raise ConfigError(f"{dest} already exists", hint="pass --force to overwrite it")
    name = registry.canonical_name(target or cli.target or "local")
    text = render_template(model or "my-model", str(export or "./export"), name)
    dest.write_text(text)
    cli.output.result(
        {"path": str(dest), "target": name},
        lambda out: out.line(
            f"wrote {dest} (target: {name}); edit it, then run `cloudserve check`"
        ),
    )
