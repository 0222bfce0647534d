"""Digests of local files, each computed once per file state.

``plan`` and ``deploy`` (and, inside a deploy, the content check, the bucket listing and the
upload) read the same export files; an adapter keeps one :class:`FileHashes` so each file is
hashed once however many steps ask for its digest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class FileHashes:
    """Digests of local files, each computed at most once per file state.

    A file is read again only when its size or modification time changed. Not thread-safe;
    one instance serves one adapter.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[Callable[[Path], Any], str, int, int], Any] = {}

    def get(self, path: Path, digest: Callable[[Path], T]) -> T:
        """``digest(path)``, computed once per (``digest``, path, size, modification time)."""
        stat = path.stat()
        key = (digest, str(path.absolute()), stat.st_size, stat.st_mtime_ns)
        if key not in self._known:
            self._known[key] = digest(path)
        return self._known[key]
