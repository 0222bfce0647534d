"""Human-readable quantities for messages."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """``512`` → ``"512 B"``, ``12318`` → ``"12.0 KiB"``, ``3 * 2**30`` → ``"3.0 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
