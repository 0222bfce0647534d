"""How long `cloudserve --help` takes as a fresh process (target: under 0.5 s).

    python bench/cli_help.py [--runs 21]

Prints the median and the fastest of the runs, and the modules the help imports that it
should not need (the local adapter, pydantic, httpx, TensorFlow, cloud SDKs).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

UNNEEDED = ("cloudserve_adapters.local.adapter", "pydantic", "httpx", "tensorflow", "boto3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    exe = shutil.which("cloudserve") or sys.exit("install cloudserve first (pip install -e .)")
    subprocess.run([exe, "--help"], capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    probe = (
        "import sys\nfrom cloudserve.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {UNNEEDED!r} if m in sys.modules], file=sys.stderr)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    print(
        f"cloudserve --help: median {statistics.median(times) * 1000:.0f} ms, "
        f"fastest {min(times) * 1000:.0f} ms over {args.runs} runs"
    )
    print(f"imported but not needed: {loaded.stderr.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
