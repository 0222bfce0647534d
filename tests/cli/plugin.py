"""Builds an installed-looking distribution whose entry point names a cloudserve adapter."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import FAKE_ENTRY


def install_plugin(site: Path, name: str = "plugged", entry: str = FAKE_ENTRY) -> Path:
    """Write ``cloudserve_plugin-1.0.dist-info`` into ``site`` (a sys.path entry)."""
    dist = site / "cloudserve_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cloudserve-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[cloudserve.adapters]\n{name} = {entry}\n")
    return dist
