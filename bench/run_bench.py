"""Runtime throughput and latency against a naive Flask server and a bare-HTTP floor.

One command, everything on loopback::

    python bench/run_bench.py            # full run (about 5 minutes on 2 cores)
    python bench/run_bench.py --quick    # smoke run, 2-second phases
    python bench/run_bench.py --sweep    # compare batching parameters on the MLP

For each model (bench_mlp, bench_cnn, exported with examples/export_models.py into a temporary
directory) it starts, one at a time:

* ``runtime``: ``python -m cloudserve_runtime`` with ``--enable_batching`` and the batching file
  below;
* ``naive``: bench/naive_flask_server.py, threaded Flask calling the model once per request;
* ``floor``: bench/floor_server.py, uvicorn + uvloop + httptools answering a constant;

and drives each with wrk (bench/wrk_post.lua, one row per request): a warm-up, a measured run at
64 connections and a measured run at 1 connection. Server RSS (the process tree's VmRSS) is read
after the runs. It also measures the model's in-process throughput (batches of 64 through the
runtime's session path, no HTTP). It prints a markdown table and PASS/FAIL target checks on the
MLP, and writes everything as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk_post.lua"
EXPORT_SCRIPT = ROOT / "examples" / "export_models.py"
MODEL_NAME = "m"
READY_TIMEOUT_S = 180.0

# Tuned with `--sweep` on the 2-core bench machine (bench/README.md): 64 connections each send
# one row, so batches never exceed 64 rows. With a timeout of 0 a batch is whatever piled up
# while the batch thread was busy; one batch thread with single-threaded TF ops leaves the
# second core to the event loop, which is the bottleneck (a 64-row MLP batch takes ~0.45 ms).
BATCHING_PARAMETERS = """\
max_batch_size { value: 64 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 1 }
"""
RUNTIME_ARGS = ("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1")

SWEEP_BASE = "max_enqueued_batches { value: 64 }\n"
SWEEP = (
    # (label, batching file body, extra runtime flags)
    ("64, 0 us, 2 threads", "max_batch_size { value: 64 }\nnum_batch_threads { value: 2 }", ()),
    (
        "64, 0 us, 2 threads, intra/inter-op 1",
        "max_batch_size { value: 64 }\nnum_batch_threads { value: 2 }",
        RUNTIME_ARGS,
    ),
    (
        "64, 0 us, 1 thread, intra/inter-op 1",
        "max_batch_size { value: 64 }\nnum_batch_threads { value: 1 }",
        RUNTIME_ARGS,
    ),
    (
        "64, 1000 us, 1 thread, intra/inter-op 1",
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 1000 }\n"
        "num_batch_threads { value: 1 }",
        RUNTIME_ARGS,
    ),
    (
        "64, 2000 us, 1 thread, intra/inter-op 1",
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 1 }",
        RUNTIME_ARGS,
    ),
    (
        "128, 2000 us, 2 threads, intra/inter-op 1",
        "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 2 }",
        RUNTIME_ARGS,
    ),
)

MODELS = {"mlp": "bench_mlp", "cnn": "bench_cnn"}


@dataclass(frozen=True)
class Durations:
    """Seconds for each wrk phase."""

    warmup: float
    measured: float
    single: float


@dataclass
class LoadResult:
    """One wrk run against one server."""

    server: str
    model: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float = 0.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine_info() -> dict[str, object]:
    """CPU count, CPU model and memory of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.MULTILINE).group(1))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(total_kb / 2**20, 1),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0],
    }


def export_model(name: str, out: Path) -> Path:
    """Export ``name`` with examples/export_models.py; return the version directory."""
    subprocess.run(
        [sys.executable, str(EXPORT_SCRIPT), name, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / "1"


def request_body(model: str) -> bytes:
    """A TF Serving row-format predict body with one row of seeded random features."""
    rng = np.random.default_rng(7)
    shape = (32,) if model == "mlp" else (32, 32, 3)
    row = np.round(rng.random(shape, dtype=np.float32), 4).tolist()
    return json.dumps({"instances": [row]}).encode()


def process_tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and all its descendants, in MiB."""
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except FileNotFoundError:
            continue
        found = re.search(r"^VmRSS:\s*(\d+)", status, re.MULTILINE)
        total_kb += int(found.group(1)) if found else 0
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            pending.extend(int(child) for child in task.read_text().split())
    return total_kb / 1024


def post(url: str, body: bytes, timeout: float = 10.0) -> dict:
    """POST a JSON body; return the decoded JSON answer (raises on non-2xx)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def running_server(name: str, command: list[str], url: str, body: bytes, log: Path) -> Iterator:
    """Start a server process, wait until ``url`` answers ``body`` with 200, stop it at the end.

    Yields:
        (process, first prediction body).

    Raises:
        RuntimeError: if the server exits or is not ready within READY_TIMEOUT_S.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        answer = None
        while answer is None:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s; see {log}")
            try:
                answer = post(url, body, timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        yield process, answer
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def run_wrk(url: str, body_file: Path, connections: int, seconds: float) -> dict[str, float]:
    """Run wrk (one thread) against ``url``; return its BENCH_JSON summary."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    done = subprocess.run(
        command,
        env=dict(os.environ, BENCH_BODY_FILE=str(body_file)),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    found = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")
    return json.loads(found.group(1))


def load_result(server: str, model: str, connections: int, summary: dict) -> LoadResult:
    errors = sum(value for key, value in summary.items() if key.startswith("errors_"))
    return LoadResult(
        server=server,
        model=model,
        connections=connections,
        requests_per_s=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=int(errors),
    )


def measure_server(
    server: str,
    model: str,
    command: list[str],
    port: int,
    body_file: Path,
    work: Path,
    durations: Durations,
    *,
    single: bool = True,
) -> tuple[list[LoadResult], object]:
    """Warm up, measure at 64 connections (and at 1), read RSS; return results and answer."""
    url = f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict"
    log = RESULTS / "logs" / f"{server}-{model}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {server}: starting", flush=True)
    with running_server(server, command, url, body_file.read_bytes(), log) as (process, answer):
        run_wrk(url, body_file, 64, durations.warmup)
        results = [load_result(server, model, 64, run_wrk(url, body_file, 64, durations.measured))]
        if single:
            run_wrk(url, body_file, 1, min(durations.warmup, 2))
            summary = run_wrk(url, body_file, 1, durations.single)
            results.append(load_result(server, model, 1, summary))
        rss = process_tree_rss_mb(process.pid)
    for result in results:
        result.rss_mb = rss
        print(
            f"  {server}: {result.connections} conn {result.requests_per_s:.0f} req/s "
            f"p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms rss {rss:.0f} MB",
            flush=True,
        )
    return results, answer


def runtime_command(model_dir: Path, batching_file: Path, port: int, extra: tuple[str, ...]):
    grpc_port = free_port()
    return [
        sys.executable, "-m", "cloudserve_runtime", f"--port={grpc_port}",
        f"--rest_api_port={port}", "--host=127.0.0.1", f"--model_name={MODEL_NAME}",
        f"--model_base_path={model_dir}", "--enable_batching",
        f"--batching_parameters_file={batching_file}", *extra,
    ]  # fmt: skip


def inprocess_throughput(version_dir: Path, threads: int, seconds: float) -> dict[str, float]:
    """Rows/s of batches of 64 run back to back through the runtime's session path."""
    done = subprocess.run(
        [
            sys.executable, str(BENCH / "inprocess_throughput.py"), str(version_dir),
            "--batch", "64", "--seconds", str(seconds), "--threads", str(threads),
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def target_checks(results: list[LoadResult]) -> list[dict[str, object]]:
    """The MLP targets, each with PASS/FAIL and the numbers behind it."""
    by_key = {(r.server, r.model, r.connections): r for r in results}
    runtime = by_key[("runtime", "mlp", 64)]
    naive = by_key[("naive", "mlp", 64)]
    floor = by_key[("floor", "mlp", 64)]
    runtime_1 = by_key.get(("runtime", "mlp", 1))
    naive_1 = by_key.get(("naive", "mlp", 1))
    checks = [
        (
            "runtime req/s >= 15x naive req/s (64 conn)",
            runtime.requests_per_s >= 15 * naive.requests_per_s,
            f"{runtime.requests_per_s:.0f} vs {naive.requests_per_s:.0f} "
            f"= {runtime.requests_per_s / naive.requests_per_s:.1f}x",
        ),
        (
            "runtime req/s >= 0.5x floor req/s (64 conn)",
            runtime.requests_per_s >= 0.5 * floor.requests_per_s,
            f"{runtime.requests_per_s:.0f} vs {floor.requests_per_s:.0f} "
            f"= {runtime.requests_per_s / floor.requests_per_s:.2f}x",
        ),
        (
            "runtime p99 <= 15 ms (64 conn)",
            runtime.p99_ms <= 15,
            f"{runtime.p99_ms:.2f} ms",
        ),
        (
            "runtime RSS <= naive RSS + 150 MB",
            runtime.rss_mb <= naive.rss_mb + 150,
            f"{runtime.rss_mb:.0f} MB vs {naive.rss_mb:.0f} MB",
        ),
    ]
    if runtime_1 and naive_1:
        checks.insert(
            3,
            (
                "runtime p50 <= naive p50 (1 conn)",
                runtime_1.p50_ms <= naive_1.p50_ms,
                f"{runtime_1.p50_ms:.2f} ms vs {naive_1.p50_ms:.2f} ms",
            ),
        )
    checks.append(
        (
            "no errors in any MLP run",
            all(r.errors == 0 for r in results if r.model == "mlp"),
            ", ".join(
                f"{r.server}/{r.connections}: {r.errors}" for r in results if r.model == "mlp"
            ),
        )
    )
    return [{"target": t, "pass": ok, "numbers": numbers} for t, ok, numbers in checks]


def markdown_table(results: list[LoadResult], inprocess: dict[str, dict[str, float]]) -> str:
    lines = [
        "| server | model | connections | req/s | p50 ms | p99 ms | RSS MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.model} | {r.connections} | {r.requests_per_s:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.rss_mb:.0f} | {r.errors} |"
        )
    for model, numbers in inprocess.items():
        lines.append(
            f"| in-process, batches of 64 (rows/s) | {model} | – | {numbers['rows_per_s']:,.0f} "
            f"| – | – | – | – |"
        )
    return "\n".join(lines)


def checks_table(checks: list[dict[str, object]]) -> str:
    lines = ["| target (MLP) | result | numbers |", "|---|---|---|"]
    for check in checks:
        verdict = "PASS" if check["pass"] else "FAIL"
        lines.append(f"| {check['target']} | {verdict} | {check['numbers']} |")
    return "\n".join(lines)


def run_sweep(work: Path, durations: Durations) -> list[dict[str, object]]:
    """Runtime on the MLP at 64 connections under each SWEEP configuration."""
    version_dir = export_model(MODELS["mlp"], work / "bench_mlp")
    body_file = work / "mlp.json"
    body_file.write_bytes(request_body("mlp"))
    rows = []
    for label, text, extra in SWEEP:
        batching_file = work / "sweep_batching.txt"
        batching_file.write_text(
            text.replace("} ", "}\n") + "\nmax_enqueued_batches { value: 64 }\n"
        )
        port = free_port()
        print(f"sweep: {label}", flush=True)
        command = runtime_command(version_dir.parent, batching_file, port, extra)
        results, _ = measure_server(
            "runtime", "mlp", command, port, body_file, work, durations, single=False
        )
        rows.append({"config": label, **asdict(results[0])})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables; write bench/results/*.json. Returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2-second phases (smoke run)")
    parser.add_argument("--sweep", action="store_true", help="compare batching parameters")
    parser.add_argument(
        "--models", default="mlp,cnn", help="comma-separated subset of: mlp, cnn (default both)"
    )
    parser.add_argument(
        "--servers",
        default="runtime,naive,floor",
        help="comma-separated subset of: runtime, naive, floor (default all)",
    )
    args = parser.parse_args(argv)
    durations = Durations(2, 2, 2) if args.quick else Durations(5, 15, 10)
    machine = machine_info()
    print(f"machine: {machine}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    with tempfile.TemporaryDirectory(prefix="cloudserve-bench-") as tmp:
        work = Path(tmp)
        if args.sweep:
            sweep = run_sweep(work, Durations(3, 8, 0) if not args.quick else durations)
            print("\n| config | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
            for row in sweep:
                print(
                    f"| {row['config']} | {row['requests_per_s']:,.0f} | {row['p50_ms']:.2f} "
                    f"| {row['p99_ms']:.2f} |"
                )
            (RESULTS / f"sweep-{stamp}.json").write_text(
                json.dumps({"machine": machine, "sweep": sweep}, indent=2)
            )
            return 0

        batching_file = work / "batching_parameters.txt"
        batching_file.write_text(BATCHING_PARAMETERS)
        results: list[LoadResult] = []
        inprocess: dict[str, dict[str, float]] = {}
        answers: dict[str, dict[str, object]] = {}
        for model in args.models.split(","):
            print(f"model {model}:", flush=True)
            version_dir = export_model(MODELS[model], work / MODELS[model])
            body_file = work / f"{model}.json"
            body_file.write_bytes(request_body(model))
            answers[model] = {}
            servers = {
                "runtime": lambda port, v=version_dir: runtime_command(
                    v.parent, batching_file, port, RUNTIME_ARGS
                ),
                "naive": lambda port, v=version_dir: [
                    sys.executable,
                    str(BENCH / "naive_flask_server.py"),
                    f"--model_dir={v}",
                    f"--model_name={MODEL_NAME}",
                    f"--port={port}",
                ],  # fmt: skip
                "floor": lambda port: [
                    sys.executable,
                    str(BENCH / "floor_server.py"),
                    f"--port={port}",
                ],  # fmt: skip
            }
            for server in args.servers.split(","):
                make_command = servers[server]
                port = free_port()
                measured, answer = measure_server(
                    server, model, make_command(port), port, body_file, work, durations
                )
                results.extend(measured)
                answers[model][server] = answer
            inprocess[model] = inprocess_throughput(
                version_dir, threads=1, seconds=durations.measured / 3
            )
            print(f"  in-process: {inprocess[model]['rows_per_s']:.0f} rows/s", flush=True)

        same_answers = all(
            np.allclose(
                a["runtime"]["predictions"], a["naive"]["predictions"], rtol=1e-4, atol=1e-5
            )
            for a in answers.values()
            if "runtime" in a and "naive" in a
        )
        table = markdown_table(results, inprocess)
        complete = "mlp" in answers and len(answers["mlp"]) == 3
        checks = target_checks(results) if complete else []
        print()
        print(table)
        print()
        print(checks_table(checks))
        print(f"\nruntime and naive predictions agree: {same_answers}")
        print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")
        (RESULTS / f"bench-{stamp}.json").write_text(
            json.dumps(
                {
                    "machine": machine,
                    "durations_s": asdict(durations),
                    "batching_parameters": BATCHING_PARAMETERS,
                    "runtime_args": list(RUNTIME_ARGS),
                    "results": [asdict(r) for r in results],
                    "inprocess": inprocess,
                    "checks": checks,
                    "runtime_and_naive_predictions_agree": bool(same_answers),
                    "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
