"""What the root command's global options leave for the sub-commands, and helpers using it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cloudserve.output import Output

if TYPE_CHECKING:
    from cloudserve.adapter import Adapter, AdapterConfig
    from cloudserve.spec import Settings

#: where the state lives in ``ctx.meta`` (shared by every context of one command line;
#: ``ctx.obj`` stays free for sub-apps such as ``cloudserve local``)
STATE_KEY = "cloudserve.cli.state"


@dataclass
class CliState:
    """The global options, parsed once by the root callback (``ctx.obj``)."""

    output: Output
    config: Path | None = None
    target: str | None = None
    yes: bool = False

    def settings(
        self,
        *,
        model: str | None = None,
        export: Path | None = None,
        version: str | None = None,
        target: str | None = None,
        sets: Sequence[str] | None = None,
        set_default: bool | None = None,
        timeout: float | None = None,
        traffic: str | None = None,
        sample: Path | None = None,
    ) -> Settings:
        """Layer cloudserve.yaml, the environment and these flags (see :mod:`cloudserve.spec`).

        A command's own ``--target`` wins over the global one.
        """
        from cloudserve import spec

        flags = spec.Flags(
            model=model,
            export=export,
            version=version,
            target=target or self.target,
            set_default=set_default,
            timeout=timeout,
            traffic=traffic,
            sample=sample,
            sets=tuple(sets or ()),
        )
        return spec.load(self.config, flags)

    def attach(self, ctx: typer.Context) -> None:
        """Make this the state every context of the command line sees."""
        ctx.meta[STATE_KEY] = self

    def target_config(self, name: str) -> AdapterConfig:
        """The validated ``targets.<name>`` settings (for sub-apps of one target)."""
        from cloudserve import registry

        return self.settings().adapter_config(registry.load(name))

    @contextmanager
    def adapter(self, settings: Settings) -> Iterator[Adapter]:
        """The configured target's adapter, reporting progress while the block runs."""
        from cloudserve.deploy import make_adapter

        with self.output.progress() as progress:
            yield make_adapter(settings, progress=progress)


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of the running command line (defaults before the root ran)."""
    found = ctx.meta.get(STATE_KEY)
    return found if isinstance(found, CliState) else CliState(output=Output())
