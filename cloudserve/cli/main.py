"""The root ``cloudserve`` command: global options, command registration, errors → exit codes.

Every command module imports its heavy dependencies inside the command function, so
``cloudserve --help`` imports no TensorFlow, no cloud SDK and no pydantic.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from cloudserve import __version__
from cloudserve.cli import (
    delete_cmd,
    deploy_cmd,
    init_cmd,
    inspect_cmd,
    predict_cmd,
    serve_cmd,
    targets_cmd,
    versions_cmd,
)
from cloudserve.cli.context import CliState, state
from cloudserve.errors import EXIT_INTERNAL, CloudserveError
from cloudserve.output import Output

#: the local target's own sub-commands (stop, status, logs), registered when installed
LOCAL_CLI = "cloudserve_adapters.local.cli"
#: ``cloudserve image build|push``, imported only when that command runs
IMAGE_CLI = "cloudserve.cli.image_cmd"
#: root options that no command defines, accepted after the command too (hoisted before it);
#: the value says whether the option takes a value
GLOBAL_ONLY = {
    "--output": True,
    "-o": True,
    "--config": True,
    "-c": True,
    "--verbose": False,
    "-v": False,
}
#: commands whose arguments are passed on untouched
PASS_THROUGH = ("serve",)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _json_requested(args: Sequence[str]) -> bool:
    """Was JSON output asked for? Used before the options are parsed (usage errors)."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg in ("--output=json", "-ojson"):
            return True
        if arg in ("--output", "-o") and i + 1 < len(args) and args[i + 1] == "json":
            return True
    return os.environ.get("CLOUDSERVE_OUTPUT") == "json"


def _usage_error_json(error: typer.TyperException) -> None:
    Output("json").write_json(
        {
            "ok": False,
            "error": {
                "kind": "usage",
                "message": error.format_message(),
                "hint": "run with --help for usage",
                "provider": None,
                "exit_code": error.exit_code,
            },
        }
    )


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move root-only options given after the command (``deploy --output json``) before it.

    Only options no command defines are moved (``--output/-o``, ``--config/-c``,
    ``--verbose/-v``), never past ``--`` and never for ``serve``, which passes its arguments
    to the runtime.
    """
    args = list(args)
    root_with_value = {"--target", "-t", *(k for k, v in GLOBAL_ONLY.items() if v)}
    i = 0
    while i < len(args) and args[i].startswith("-"):  # the root's own options
        i += 2 if args[i] in root_with_value else 1
    if i >= len(args) or args[i] in PASS_THROUGH:
        return args
    head, tail, moved = args[: i + 1], args[i + 1 :], []
    rest: list[str] = []
    j = 0
    while j < len(tail):
        arg = tail[j]
        if arg == "--":
            rest += tail[j:]
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if name in GLOBAL_ONLY and (arg == name or "=" in arg or not arg.startswith("--")):
            takes_value = GLOBAL_ONLY[name]
            if takes_value and arg == name and j + 1 < len(tail):
                moved += [arg, tail[j + 1]]
                j += 2
                continue
            if takes_value or arg == name:
                moved.append(arg)
                j += 1
                continue
        rest.append(arg)
        j += 1
    return [*moved, *head, *rest]


def _without_flag_placeholders(command: Any) -> Any:
    """Boolean flags show no ``<bool>`` value placeholder in ``--help`` (they take none)."""
    get_params = command.get_params

    def params(ctx: typer.Context) -> list[Any]:
        found = get_params(ctx)
        for param in found:
            if getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None
        return found

    command.get_params = params
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _without_flag_placeholders(sub)
    return command


class CloudserveGroup(TyperGroup):
    """The root group: turns every error into one message and its documented exit code."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None
        return params

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        if "local" not in names and _local_cli_installed():
            names.append("local")
        if "image" not in names:
            names.append("image")
        return names

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name == "local" and _local_cli_installed():
            local_app = importlib.import_module(LOCAL_CLI).app
            command = typer.main.get_group(local_app)
            command.name = "local"
        if command is None and cmd_name == "image":
            command = typer.main.get_group(importlib.import_module(IMAGE_CLI).image_app)
            command.name = "image"
        if command is not None and not getattr(command, "_cloudserve_quiet_flags", False):
            _without_flag_placeholders(command)
            command._cloudserve_quiet_flags = True
        return command

    def make_context(self, info_name: str | None, args: list[str], **extra: Any) -> typer.Context:
        try:
            return super().make_context(info_name, args, **extra)
        except typer.TyperException as e:
            if _json_requested(args):
                _usage_error_json(e)
            raise

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CloudserveError as e:
            _output(ctx).error(e, traceback=traceback.format_exc())
            raise typer.Exit(e.exit_code) from None
        except typer.TyperException as e:  # usage errors below the root options
            if _output(ctx).json or str(ctx.params.get("output")) == OutputFormat.json:
                _usage_error_json(e)
            raise
        except (typer.Exit, typer.Abort, KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as e:  # a bug: say so in one line, traceback with --verbose
            internal = CloudserveError(
                f"internal error: {type(e).__name__}: {e}",
                hint="run again with --verbose for the traceback, and please report it",
            )
            internal.kind = "internal"
            _output(ctx).error(internal, traceback=traceback.format_exc())
            raise typer.Exit(EXIT_INTERNAL) from None


def _output(ctx: typer.Context) -> Output:
    return state(ctx).output


def _local_cli_installed() -> bool:
    try:
        return importlib.util.find_spec(LOCAL_CLI) is not None
    except ModuleNotFoundError:
        return False


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cloudserve {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=CloudserveGroup,
    name="cloudserve",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="cloudserve.yaml to read (default: $CLOUDSERVE_CONFIG, else ./cloudserve.yaml).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Target for every command: local, aws, gcp."),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output", "-o", envvar="CLOUDSERVE_OUTPUT", help="text, or one JSON object."
        ),
    ] = OutputFormat.text,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and more detail.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Answer yes to confirmations (delete).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Put a TensorFlow SavedModel into production on SageMaker, Vertex AI or cloudserve's own runtime: check it against the target's limits, upload it, create the version, set the default version, roll back, predict.

    Exit codes: 0 ok, 2 usage or config, 3 preflight failed, 4 provider error, 5 timeout, 6 credentials, 7 not supported, 8 not found, 1 internal error.
    """  # noqa: E501 (typer re-wraps paragraphs; a line break would show)
    cli = CliState(
        output=Output(output.value, verbose=verbose), config=config, target=target, yes=yes
    )
    cli.attach(ctx)
    if ctx.invoked_subcommand == "local":
        ctx.obj = cli.target_config("local")


app.command("inspect")(inspect_cmd.inspect_export)
app.command("check")(deploy_cmd.check)
app.command("deploy")(deploy_cmd.deploy)
app.command("predict")(predict_cmd.predict)
app.add_typer(versions_cmd.versions_app, name="versions")
app.command("rollback")(versions_cmd.rollback)
app.command("status")(versions_cmd.status)
app.command("delete")(delete_cmd.delete)
app.command("targets")(targets_cmd.targets)
app.command("init")(init_cmd.init)
app.command(
    "serve",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(serve_cmd.serve)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``cloudserve`` console script. Exits with the command's exit code."""
    app(args=list(sys.argv[1:] if argv is None else argv), prog_name="cloudserve")
