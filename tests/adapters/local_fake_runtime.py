"""A stand-in for ``python -m cloudserve_runtime`` in the local target's process tests.

It accepts the runtime's flags and behaves as ``--mode`` says:

* ``serve``: answer ``GET /readyz`` and ``/healthz`` with 200 until SIGTERM;
* ``ignore-term``: the same, but ignore SIGTERM (only SIGKILL ends it);
* ``crash``: print an error and exit 3 at once;
* ``missing-module``: fail the way a missing TensorFlow install does.

Starting in well under a second, it lets the tests exercise start, stop, stale pid files
and start failures without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path in ("/readyz", "/healthz")
        self.send_response(200 if ok else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest_api_port", type=int, required=True)
    args, _ = parser.parse_known_args()
    if args.mode == "crash":
        print("Error: something is wrong with the flags", flush=True)
        sys.exit(3)
    if args.mode == "missing-module":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ModuleNotFoundError: No module named 'tensorflow'", file=sys.stderr, flush=True)
        sys.exit(1)
    if args.mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fake runtime serving on {args.host}:{args.rest_api_port}", flush=True)
    HTTPServer((args.host, args.rest_api_port), _Health).serve_forever()


if __name__ == "__main__":
    main()
