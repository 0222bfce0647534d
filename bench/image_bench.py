"""The runtime image, measured: size, cold and warm build, start-to-ready, in-container throughput.

Not a test. Run as root on a machine with Debian's docker.io and debootstrap
(``bash scripts/install-test-deps.sh``)::

    python bench/image_bench.py            # about 10 minutes on 2 cores
    python bench/image_bench.py --quick    # short load phases, no cold build

It starts its own Docker engine the way the tests do (``tests/dockerd.py``) and measures:

* **cold build**: on a fresh engine data root (temporary, removed afterwards; the debootstrap
  base image is imported first and not counted), ``cloudserve.runtime_images.build`` from
  scratch; every later phase runs on that engine too (``--quick``: on the tests' cached engine);
* **warm build**: the same build again (every layer cached);
* **image size**: the built image's uncompressed size;
* **start-to-ready**: ``docker run`` of the image on the bench MLP until the model's status says
  AVAILABLE (median of 3 starts);
* **throughput**: the same runtime command (bench/run_bench.py's batching parameters and flags)
  outside Docker and inside the container (host network), driven by wrk with one row per
  request at 64 connections, one after the other in the same run.

Results are printed as markdown and written to ``bench/results/image-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run_bench import (  # noqa: E402
    BATCHING_PARAMETERS,
    MODEL_NAME,
    RESULTS,
    RUNTIME_ARGS,
    Server,
    export_model,
    free_port,
    load_result,
    run_wrk,
    running_server,
    runtime_command,
    write_bodies,
)
from tests.dockerd import (  # noqa: E402
    CACHE,
    DockerEngine,
    build_runtime_image,
    ensure_base_image,
    missing_parts,
    start_engine,
)


def fresh_engine(work: Path) -> DockerEngine:
    """An engine on an empty data root (its own lock: runs beside the tests' engine), with the
    debootstrap base imported (not counted in the cold build)."""
    cache = work / "cold-cache"
    cache.mkdir()
    tarball = CACHE / "debian-bookworm-minbase.tar"
    if tarball.is_file():
        (cache / tarball.name).symlink_to(tarball)
    engine = start_engine(cache)
    ensure_base_image(engine, cache)
    return engine


def start_to_ready(engine: DockerEngine, image: str, model_dir: Path, runs: int) -> list[float]:
    """Seconds from ``docker run`` to the model's status answering AVAILABLE."""
    client = engine.client()
    times = []
    for _ in range(runs):
        rest = free_port()
        started = time.monotonic()
        container = client.containers.run(
            image,
            [f"--port={free_port()}", f"--rest_api_port={rest}"],
            environment={"MODEL_NAME": MODEL_NAME},
            volumes={str(model_dir.parent): {"bind": f"/models/{MODEL_NAME}", "mode": "ro"}},
            network_mode="host",
            detach=True,
        )
        try:
            url = f"http://127.0.0.1:{rest}/v1/models/{MODEL_NAME}"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if b"AVAILABLE" in response.read():
                            break
                except OSError:
                    pass
                if time.monotonic() - started > 180:
                    raise RuntimeError(container.logs().decode()[-2000:])
                time.sleep(0.05)
            times.append(round(time.monotonic() - started, 2))
        finally:
            container.remove(force=True)
    return times


def throughput(
    engine: DockerEngine, image: str, model_dir: Path, work: Path, seconds: float
) -> dict[str, dict[str, float]]:
    """wrk at 64 connections against the runtime outside, then inside the container."""
    bodies = write_bodies("mlp", work)
    batching = work / "batching.txt"
    batching.write_text(BATCHING_PARAMETERS)
    results = {}
    port, grpc = free_port(), free_port()
    outside = Server(
        name="outside",
        command=runtime_command(model_dir.parent, batching, port, grpc, RUNTIME_ARGS),
        port=port,
        path=f"/v1/models/{MODEL_NAME}:predict",
        body=bodies.tfserving,
    )
    with running_server(outside, work / "outside.log"):
        run_wrk(outside.url, bodies.tfserving, 64, min(5.0, seconds))
        summary = run_wrk(outside.url, bodies.tfserving, 64, seconds)
        results["outside"] = asdict(load_result("outside", "mlp", 64, summary))
    port, grpc = free_port(), free_port()
    container = engine.client().containers.run(
        image,
        [
            f"--port={grpc}",
            f"--rest_api_port={port}",
            "--host=127.0.0.1",
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={model_dir.parent}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            *RUNTIME_ARGS,
        ],  # fmt: skip
        volumes={str(work): {"bind": str(work), "mode": "ro"}},
        network_mode="host",
        detach=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict"
        body = bodies.tfserving.read_bytes()
        deadline = time.monotonic() + 180
        while True:
            try:
                request = urllib.request.Request(url, data=body)
                with urllib.request.urlopen(request, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(container.logs().decode()[-2000:]) from None
                time.sleep(0.25)
        run_wrk(url, bodies.tfserving, 64, min(5.0, seconds))
        summary = run_wrk(url, bodies.tfserving, 64, seconds)
        results["inside"] = asdict(load_result("inside", "mlp", 64, summary))
    finally:
        container.remove(force=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, no cold build")
    args = parser.parse_args(argv)
    reason = missing_parts()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    seconds = 4.0 if args.quick else 15.0
    report: dict[str, object] = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"image-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"

    def save() -> None:  # after every phase, so an interrupted run keeps what it measured
        out.write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory(prefix="image-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        engine = start_engine() if args.quick else fresh_engine(work)
        try:
            image = build_runtime_image(engine)
            if not args.quick:
                report["cold_build"] = {"seconds": image.seconds}
            report["warm_build_s"] = build_runtime_image(engine).seconds  # every layer cached
            save()
            report["image"] = {"id": image.id, "size_bytes": image.size, "tf": image.tf_version}
            model_dir = export_model("bench_mlp", work / "mlp")
            for path in [work, work / "mlp", *(work / "mlp").rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            report["start_to_ready_s"] = start_to_ready(engine, image.id, model_dir, 3)
            save()
            report["throughput"] = throughput(engine, image.id, model_dir, work, seconds)
        finally:
            engine.stop()
    rps = report["throughput"]  # type: ignore[index]
    inside, outside = rps["inside"]["requests_per_s"], rps["outside"]["requests_per_s"]
    report["inside_vs_outside"] = round(inside / outside, 3)
    save()
    cold = report.get("cold_build", {})
    print("| measure | value |\n|---|---|")
    print(f"| image size | {report['image']['size_bytes'] / 1e9:.2f} GB |")  # type: ignore[index]
    if cold:
        print(f"| cold build | {cold['seconds']:.0f} s |")  # type: ignore[index]
    print(f"| warm build | {report['warm_build_s']:.1f} s |")
    starts = report["start_to_ready_s"]
    print(f"| start-to-ready (median of 3) | {statistics.median(starts):.1f} s |")  # type: ignore[arg-type]
    print(f"| MLP req/s outside Docker (64 conn) | {outside:.0f} |")
    print(f"| MLP req/s in the container (64 conn) | {inside:.0f} ({inside / outside:.0%}) |")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
