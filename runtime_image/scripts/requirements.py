"""Writes the image's pip requirement files from the `runtime` extra of pyproject.toml.

Run inside the image build (the classic builder has no RUN heredocs):
``python requirements.py PYPROJECT OUT_DIR``. It writes ``OUT_DIR/deps.txt`` (installed with
dependencies) and ``OUT_DIR/nodeps.txt`` (installed with ``--no-deps``):

- the extra's ``tensorflow`` requirement is replaced by ``$TF_PACKAGE`` (e.g. ``tensorflow-cpu``
  or ``tensorflow[and-cuda]``); ``$TF_VERSION`` pins it (``2.21.0`` exactly, ``2.21`` to the
  newest 2.21 patch); a ``TF_PACKAGE`` that already carries a version specifier is used as
  given; otherwise the extra's specifier applies;
- ``tensorflow-serving-api`` goes to ``nodeps.txt`` because it requires the ``tensorflow``
  distribution by name, which would install a second TensorFlow next to ``tensorflow-cpu``;
  it is pinned to the same minor version as ``$TF_VERSION`` when that is given.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib

_NAME = re.compile(r"([A-Za-z0-9_.-]+(?:\[[^\]]*\])?)(.*)")


def split_requirements(
    extra: list[str], tf_package: str, tf_version: str
) -> tuple[list[str], list[str]]:
    """Returns (with-dependencies, without-dependencies) requirement lines for the image."""
    with_deps: list[str] = []
    without_deps: list[str] = []
    minor = ".".join(tf_version.split(".")[:2]) if tf_version else ""
    for requirement in extra:
        name, spec = _NAME.match(requirement).groups()
        base = name.split("[")[0].lower()
        if base == "tensorflow":
            if re.search(r"[<>=!~]", tf_package):
                with_deps.append(tf_package)
            elif tf_version:
                exact = tf_version if tf_version.count(".") >= 2 else f"{tf_version}.*"
                with_deps.append(f"{tf_package}=={exact}")
            else:
                with_deps.append(tf_package + spec)
        elif base == "tensorflow-serving-api":
            without_deps.append(f"{name}=={minor}.*" if minor else requirement)
        else:
            with_deps.append(requirement)
    return with_deps, without_deps


def main(pyproject: str, out_dir: str) -> None:
    with open(pyproject, "rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["runtime"]
    with_deps, without_deps = split_requirements(
        extra, os.environ.get("TF_PACKAGE") or "tensorflow-cpu", os.environ.get("TF_VERSION", "")
    )
    for filename, lines in (("deps.txt", with_deps), ("nodeps.txt", without_deps)):
        with open(os.path.join(out_dir, filename), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(filename, " ".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
