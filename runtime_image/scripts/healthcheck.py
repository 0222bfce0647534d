"""The image's HEALTHCHECK: GET the runtime's ``/readyz`` on the port it really listens on.

Usage: ``python healthcheck.py http://127.0.0.1:8501/readyz``. The URL's port is the default;
the REST port the server runs with wins: it is read from the server's command line
(``/proc/1/cmdline``) with the SageMaker ``serve`` argument and Vertex's ``AIP_*`` variables
applied the way the server applies them, so the check follows ``serve`` (8080),
``AIP_HTTP_PORT`` and an appended ``--rest_api_port``. Exit status 0 when ready, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
import urllib.request

from cloudserve_runtime.hosting import hosting_argv

SERVER_MODULE = "cloudserve_runtime"


def rest_port(cmdline: list[str], environ: dict[str, str]) -> int | None:
    """The ``--rest_api_port`` the server process uses, or None when it sets none."""
    if SERVER_MODULE not in cmdline:
        return None
    flags = hosting_argv(cmdline[cmdline.index(SERVER_MODULE) + 1 :], environ)
    port = None
    for index, token in enumerate(flags):
        if token.startswith("--rest_api_port="):
            port = token.split("=", 1)[1]
        elif token == "--rest_api_port" and index + 1 < len(flags):
            port = flags[index + 1]
    return int(port) if port and port.isdigit() else None


def main(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            cmdline = [arg.decode() for arg in handle.read().split(b"\0") if arg]
        port = rest_port(cmdline, dict(os.environ))
    except Exception:  # noqa: BLE001 - fall back to the URL as given
        port = None
    if port:
        parts = parts._replace(netloc=f"{parts.hostname}:{port}")
    try:
        with urllib.request.urlopen(urllib.parse.urlunsplit(parts), timeout=2) as response:
            return 0 if response.status == 200 else 1
    except Exception as error:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"not ready: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
