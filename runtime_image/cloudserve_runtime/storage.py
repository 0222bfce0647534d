"""Finding version directories under a model's base path, and telling when one is complete.

A version directory is a child whose name parses as a non-negative integer (``00000123`` is
version 123). A directory that is still being written must not be loaded, so the manager loads a
version only once it is *stable*: ``saved_model.pb`` (or ``saved_model.pbtxt``) exists and the
directory's fingerprint (every file's relative path, size and mtime) is identical on two
observations taken at least :data:`STABILITY_INTERVAL_S` apart. Writers that copy into place
then rename are picked up on the second look; slow writers are waited for.
"""

from __future__ import annotations

import os

STABILITY_INTERVAL_S = 0.5
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

Fingerprint = tuple[tuple[str, int, int], ...]


class BasePathError(Exception):
    """The base path cannot be listed (missing, not a directory, unreadable)."""


def list_versions(model_name: str, base_path: str) -> dict[int, str]:
    """Returns version number -> directory path for the numeric children of ``base_path``.

    When two names parse to the same number (``1`` and ``01``) the one sorting first wins.

    Raises:
        BasePathError: with TF Serving's ``Could not find base path …`` text.
    """
    try:
        names = sorted(os.listdir(base_path))
    except OSError as exc:
        raise BasePathError(
            f"Could not find base path {base_path} for servable {model_name} with error "
            f"{exc.strerror or exc}"
        ) from None
    versions: dict[int, str] = {}
    for name in names:
        if not name.isdigit():
            continue
        path = os.path.join(base_path, name)
        if os.path.isdir(path):
            versions.setdefault(int(name), path)
    return versions


def fingerprint(path: str) -> Fingerprint | None:
    """Returns the fingerprint of a version directory, or None while it has no saved_model file.

    Files that vanish during the walk make the result differ from the next one, which is what a
    directory being written should do.
    """
    if not any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES):
        return None
    entries: list[tuple[str, int, int]] = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                entries.append((os.path.relpath(full, path), -1, -1))
                continue
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))
