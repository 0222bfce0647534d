"""``cloudserve predict``: send a TF Serving predict request through the target's API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudserve.cli.context import state
from cloudserve.cli.options import ModelOption, SetOption, TargetOption
from cloudserve.errors import ConfigError


def read_payload(data: str | None, file: Path | None) -> dict[str, Any]:
    """The request body from ``--data``, ``--file`` (``-`` is stdin) or piped stdin.

    Raises:
        ConfigError: none given, both given, not JSON, or not a TF Serving predict body.
    """
    if data is not None and file is not None:
        raise ConfigError("pass either --data or --file, not both", hint="choose one")
    if data is not None:
        text, origin = data, "--data"
    elif file is not None and str(file) != "-":
        try:
            text, origin = file.read_text(), str(file)
        except OSError as e:
            raise ConfigError(f"cannot read {file}: {e.strerror}", hint="check the path") from e
    elif file is not None or not sys.stdin.isatty():
        text, origin = sys.stdin.read(), "stdin"
    else:
        raise ConfigError(
            "no request body given",
            hint="pass --data '{\"instances\": [[1.0]]}', --file req.json, or pipe JSON on stdin",
        )
    try:
        payload = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{origin} is not valid JSON: {e}", hint="check the quoting") from e
    if not isinstance(payload, dict) or not ({"instances", "inputs"} & payload.keys()):
        raise ConfigError(
            f"{origin} is not a TF Serving predict body",
            hint='send an object with "instances" (row format) or "inputs" (columnar format)',
        )
    return payload


def predict(
    ctx: typer.Context,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="The JSON body, e.g. '{\"instances\": [[1.0]]}'."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the JSON body from a file ('-' for stdin)."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", "-V", help="Send to this version; default: the default one."),
    ] = None,
    model: ModelOption = None,
    target: TargetOption = None,
    sets: SetOption = None,
) -> None:
    """Send a prediction request (TF Serving REST JSON) and print the response.

    The body comes from --data, --file, or stdin when it is piped.
    """
    cli = state(ctx)
    payload = read_payload(data, file)
    settings = cli.settings(model=model, target=target, sets=sets)
    name = settings.require_model()
    with cli.adapter(settings) as adapter:
        response = adapter.predict(name, payload, version=version)
    cli.output.result(
        {"target": adapter.name, "model": name, "version": version, "response": response},
        lambda out: out.line(json.dumps(response, indent=2)),
    )
