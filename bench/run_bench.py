"""Runtime throughput and latency against a naive Flask server, a bare-HTTP floor and PyTriton.

One command, everything on loopback::

    python bench/run_bench.py                   # full run (about 10 minutes on 2 cores)
    python bench/run_bench.py --quick           # smoke run, 2-second phases
    python bench/run_bench.py --baseline HEAD~3 # also run the runtime of that git revision
    python bench/run_bench.py --sweep           # compare batching parameters on the MLP

For each model (bench_mlp, bench_cnn, exported with examples/export_models.py into a temporary
directory) it starts, one at a time:

* ``runtime``: ``python -m cloudserve_runtime`` with ``--enable_batching`` and the batching file
  below (``runtime@REV`` is the same for the ``--baseline`` revision's runtime code);
* ``naive``: bench/naive_flask_server.py, threaded Flask calling the model once per request;
* ``floor``: bench/floor_server.py, uvicorn + uvloop + httptools, ``orjson.loads`` of the body and
  a constant answer;
* ``pytriton``: bench/pytriton_server.py (PyPI ``nvidia-pytriton``, in a virtualenv the bench
  makes under bench/results/), Triton's HTTP front end with dynamic batching, KServe v2 protocol;

and drives each with wrk (bench/wrk_post.lua, one row per request): a warm-up, a measured run at
64 connections and a measured run at 1 connection. The runtime's gRPC Predict is driven with
h2load (nghttp2-client) at 64 connections, one stream each, against its REST API measured the same
way (h2load ``--h1``). Every server's answer to the request is checked against the runtime's.
Server RSS (the process tree's VmRSS) is read after the runs. A stall phase then sends 30 MB
predict requests back to back to the runtime while one client times ``/healthz`` and small
predicts. It prints markdown tables and PASS/FAIL target checks and writes everything as JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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
ROW_SHAPES = {"mlp": (32,), "cnn": (32, 32, 3)}
SERVERS = ("runtime", "naive", "floor", "pytriton")
PYTRITON_PACKAGE = "nvidia-pytriton==0.7.0"
PYTRITON_VENV = RESULTS / "pytriton-venv"
GRPC_PATH = "/tensorflow.serving.PredictionService/Predict"
STALL_BODY_MB = 30
STALL_SECONDS = 12.0


@dataclass(frozen=True)
class Durations:
    """Seconds for each load phase."""

    warmup: float
    measured: float
    single: float


@dataclass
class LoadResult:
    """One load run against one server."""

    server: str
    model: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float = 0.0
    protocol: str = "REST"
    tool: str = "wrk"
    mean_ms: float = 0.0


@dataclass
class Bodies:
    """One seeded row of a model's features in each wire format."""

    row: np.ndarray
    tfserving: Path
    kserve: Path
    grpc_frame: Path
    grpc_request: bytes = field(repr=False, default=b"")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "missing"
    return (done.stdout or done.stderr).strip().split("\n")[0]


def machine_info() -> dict[str, object]:
    """CPU count, CPU model, memory, load and tool versions of this machine."""
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
        "wrk": _version(["wrk", "--version"]),
        "h2load": _version(["h2load", "--version"]),
    }


def need_tools() -> None:
    """Exits with the install command when wrk or h2load is missing."""
    missing = [
        package
        for command, package in (("wrk", "wrk"), ("h2load", "nghttp2-client"))
        if subprocess.run(["sh", "-c", f"command -v {command}"], capture_output=True).returncode
    ]
    if missing:
        sys.exit(f"bench needs: apt-get install {' '.join(missing)}")


def export_model(name: str, out: Path) -> Path:
    """Export ``name`` with examples/export_models.py; return the version directory."""
    subprocess.run(
        [sys.executable, str(EXPORT_SCRIPT), name, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / "1"


def feature_row(model: str) -> np.ndarray:
    """One row of seeded random features rounded to 4 decimals (8 bytes a value in JSON)."""
    rng = np.random.default_rng(7)
    return np.round(rng.random(ROW_SHAPES[model]), 4)


def request_body(model: str) -> bytes:
    """A TF Serving row-format predict body with one row (253 B for the MLP, 25 KB the CNN)."""
    return json.dumps({"instances": [feature_row(model).tolist()]}).encode()


def grpc_request(row: np.ndarray) -> bytes:
    """A serialized PredictRequest for ``m`` with the row as ``x`` (float32 tensor_content)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    batch = row[None].astype("<f4")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in batch.shape]
            ),
            tensor_content=batch.tobytes(),
        )
    )
    return request.SerializeToString()


def write_bodies(model: str, work: Path) -> Bodies:
    """Writes the model's request in TF Serving JSON, KServe v2 JSON and as one gRPC frame."""
    row = feature_row(model)
    tfserving = work / f"{model}.json"
    tfserving.write_bytes(request_body(model))
    kserve = work / f"{model}-v2.json"
    kserve.write_bytes(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, *row.shape],
                        "datatype": "FP32",
                        "data": row.ravel().tolist(),
                    }
                ]
            }
        ).encode()
    )
    message = grpc_request(row)
    frame = work / f"{model}.grpc"
    frame.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    return Bodies(row, tfserving, kserve, frame, message)


def process_tree_rss_mb(pid: int, key: str = "VmRSS") -> float:
    """``key`` (VmRSS, or VmHWM for the peak) of ``pid`` and all its descendants, in MiB."""
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except FileNotFoundError:
            continue
        found = re.search(rf"^{key}:\s*(\d+)", status, re.MULTILINE)
        total_kb += int(found.group(1)) if found else 0
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(FileNotFoundError):
                pending.extend(int(child) for child in task.read_text().split())
    return total_kb / 1024


def post(url: str, body: bytes, timeout: float = 10.0) -> dict:
    """POST a JSON body; return the decoded JSON answer (raises on non-2xx)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Server:
    """How to start one server and reach its predict route."""

    name: str
    command: list[str]
    port: int
    path: str
    body: Path
    env: dict[str, str] = field(default_factory=dict)
    grpc_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@contextlib.contextmanager
def running_server(server: Server, log: Path) -> Iterator:
    """Start a server process, wait until its predict route answers 200, stop it at the end.

    Yields:
        (process, first prediction body).

    Raises:
        RuntimeError: if the server exits or is not ready within READY_TIMEOUT_S.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **server.env)
    body = server.body.read_bytes()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            server.command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        answer = None
        while answer is None:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT_S:.0f} s; {log}")
            try:
                answer = post(server.url, body, timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        yield process, answer
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def run_wrk(url: str, body_file: Path, connections: int, seconds: float) -> dict[str, float]:
    """Run wrk (one thread) against ``url``; return its BENCH_JSON summary."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
        "--latency", "-s", str(WRK_SCRIPT), url,
    ]  # fmt: skip
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


_H2_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_h2load(
    url: str, body_file: Path, seconds: float, warmup: float, *, grpc: bool
) -> dict[str, float]:
    """h2load at 64 connections, one stream each (gRPC headers, or HTTP/1.1 with ``--h1``).

    Returns req/s, mean latency (ms) and the count of requests that did not succeed.
    """
    command = ["h2load", "-c64", "-m1", f"-D{max(1, round(seconds))}",
               f"--warm-up-time={max(1, round(warmup))}", "-d", str(body_file)]  # fmt: skip
    if grpc:
        command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    else:
        command += ["--h1", "-H", "content-type: application/json"]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + warmup + 60
    )
    out = done.stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    if rate is None or counts is None:
        raise RuntimeError(f"no summary from h2load:\n{out}\n{done.stderr}")
    return {
        "requests_per_s": float(rate.group(1)),
        "mean_ms": float(mean.group(1)) * _H2_TIME[mean.group(2)] if mean else 0.0,
        "errors": int(counts.group(2)) - int(counts.group(3)),
    }


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
        mean_ms=summary["mean_us"] / 1000,
    )


def grpc_predict(port: int, message: bytes) -> list[float]:
    """One gRPC Predict with the bench's request; the ``y`` output's values."""
    import grpc
    from tensorflow_serving.apis import predict_pb2

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(GRPC_PATH, request_serializer=None, response_deserializer=None)
        response = predict_pb2.PredictResponse.FromString(call(message, timeout=30))
    (output,) = response.outputs.values()
    return list(output.float_val)


def measure_server(
    server: Server, model: str, bodies: Bodies, durations: Durations, *, single: bool = True
) -> tuple[list[LoadResult], object]:
    """Warm up, measure at 64 connections (and at 1; gRPC and h2load REST for a runtime), read
    RSS; return the results and the server's first answer."""
    log = RESULTS / "logs" / f"{server.name}-{model}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {server.name}: starting", flush=True)
    results = []
    with running_server(server, log) as (process, answer):
        run_wrk(server.url, server.body, 64, durations.warmup)
        summary = run_wrk(server.url, server.body, 64, durations.measured)
        results.append(load_result(server.name, model, 64, summary))
        if single:
            run_wrk(server.url, server.body, 1, min(durations.warmup, 2))
            summary = run_wrk(server.url, server.body, 1, durations.single)
            results.append(load_result(server.name, model, 1, summary))
        if server.grpc_port is not None:
            answer = {"rest": answer, "grpc": grpc_predict(server.grpc_port, bodies.grpc_request)}
            for grpc, url, body in (
                (True, f"http://127.0.0.1:{server.grpc_port}{GRPC_PATH}", bodies.grpc_frame),
                (False, server.url, server.body),
            ):
                numbers = run_h2load(url, body, durations.measured, durations.warmup, grpc=grpc)
                results.append(LoadResult(
                    server=server.name, model=model, connections=64,
                    requests_per_s=numbers["requests_per_s"], p50_ms=0.0, p99_ms=0.0,
                    errors=int(numbers["errors"]), protocol="gRPC" if grpc else "REST",
                    tool="h2load", mean_ms=numbers["mean_ms"],
                ))  # fmt: skip
            answer["grpc_after"] = grpc_predict(server.grpc_port, bodies.grpc_request)
        rss = process_tree_rss_mb(process.pid)
    for result in results:
        result.rss_mb = rss
        print(
            f"  {server.name}: {result.protocol}/{result.tool} {result.connections} conn "
            f"{result.requests_per_s:.0f} req/s p50 {result.p50_ms:.2f} ms p99 "
            f"{result.p99_ms:.2f} ms mean {result.mean_ms:.2f} ms rss {rss:.0f} MB",
            flush=True,
        )
    return results, answer


def runtime_command(
    model_dir: Path, batching_file: Path | None, port: int, grpc_port: int, extra: tuple[str, ...]
) -> list[str]:
    batching = (
        ["--enable_batching", f"--batching_parameters_file={batching_file}"]
        if batching_file is not None
        else []
    )
    return [
        sys.executable, "-m", "cloudserve_runtime", f"--port={grpc_port}",
        f"--rest_api_port={port}", "--host=127.0.0.1", f"--model_name={MODEL_NAME}",
        f"--model_base_path={model_dir}", *batching, *extra,
    ]  # fmt: skip


def baseline_source(revision: str, work: Path) -> Path:
    """Extracts ``revision``'s runtime package; returns the directory to put on PYTHONPATH."""
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "runtime_image/cloudserve_runtime"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "runtime_image"


def pytriton_python() -> Path:
    """The interpreter of the PyTriton virtualenv, made (once) under bench/results/."""
    python = PYTRITON_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PYTRITON_VENV} with {PYTRITON_PACKAGE} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(PYTRITON_VENV)],
            check=True,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PYTRITON_PACKAGE], check=True, timeout=900
        )
    return python


def make_servers(
    names: list[str],
    version_dir: Path,
    bodies: Bodies,
    batching_file: Path,
    baseline: tuple[str, Path] | None,
) -> list[Server]:
    """The servers to measure for one model, in order."""
    predict = f"/v1/models/{MODEL_NAME}:predict"
    servers = []
    for name in names:
        port = free_port()
        if name == "runtime":
            grpc_port = free_port()
            command = runtime_command(
                version_dir.parent, batching_file, port, grpc_port, RUNTIME_ARGS
            )
            servers.append(
                Server("runtime", command, port, predict, bodies.tfserving, grpc_port=grpc_port)
            )
            if baseline is not None:
                port, grpc_port = free_port(), free_port()
                command = runtime_command(
                    version_dir.parent, batching_file, port, grpc_port, RUNTIME_ARGS
                )
                servers.append(
                    Server(
                        f"runtime@{baseline[0]}",
                        command,
                        port,
                        predict,
                        bodies.tfserving,
                        {"PYTHONPATH": str(baseline[1])},
                        grpc_port=grpc_port,
                    )
                )
        elif name == "naive":
            command = [
                sys.executable,
                str(BENCH / "naive_flask_server.py"),
                f"--model_dir={version_dir}",
                f"--model_name={MODEL_NAME}",
                f"--port={port}",
            ]
            servers.append(Server(name, command, port, predict, bodies.tfserving))
        elif name == "floor":
            command = [sys.executable, str(BENCH / "floor_server.py"), f"--port={port}"]
            servers.append(Server(name, command, port, predict, bodies.tfserving))
        elif name == "pytriton":
            command = [
                str(pytriton_python()),
                str(BENCH / "pytriton_server.py"),
                f"--model_dir={version_dir}",
                f"--model_name={MODEL_NAME}",
                f"--http_port={port}",
                f"--grpc_port={free_port()}",
                f"--metrics_port={free_port()}",
            ]
            # Triton's Python-backend stub loads libpython: the interpreter's own, not the OS's.
            env = {"LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR"))}
            servers.append(
                Server(name, command, port, f"/v2/models/{MODEL_NAME}/infer", bodies.kserve, env)
            )
        else:
            raise SystemExit(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    return servers  # fmt: skip


def predictions_of(server: str, answer: object) -> np.ndarray:
    """The answer's predictions as an array, whatever the protocol."""
    if isinstance(answer, dict) and "rest" in answer:
        answer = answer["rest"]
    assert isinstance(answer, dict)
    if server == "pytriton":
        (output,) = answer["outputs"]
        return np.asarray(output["data"], dtype=np.float64).reshape(output["shape"])
    return np.asarray(answer["predictions"], dtype=np.float64)


def check_answers(answers: dict[str, object]) -> dict[str, bool]:
    """Each server's (and the runtime's gRPC) answer against the runtime's REST answer."""
    reference = predictions_of("runtime", answers["runtime"])
    agree = {}
    for server, answer in answers.items():
        if server == "floor":
            continue
        got = predictions_of(server, answer)
        agree[server] = got.shape == reference.shape and bool(
            np.allclose(got, reference, rtol=1e-4, atol=1e-5)
        )
        if isinstance(answer, dict) and "grpc" in answer:
            for key in ("grpc", "grpc_after"):
                values = np.asarray(answer[key]).reshape(reference.shape)
                agree[f"{server} {key}"] = bool(
                    np.allclose(values, reference, rtol=1e-4, atol=1e-5)
                )
    return agree


# ---------------------------------------------------------------------------------------------
# Stall phase: small requests while 30 MB requests are being processed
# ---------------------------------------------------------------------------------------------


def large_body(model: str, megabytes: int) -> bytes:
    """A row-format predict body of about ``megabytes`` MB (copies of the bench row)."""
    row = json.dumps(feature_row(model).tolist())
    count = megabytes * 1_000_000 // (len(row) + 2)
    return ('{"instances": [' + ", ".join([row] * count) + "]}").encode()


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def stall_run(port: int, big: bytes, small: bytes, seconds: float) -> dict[str, object]:
    """Large predicts back to back on one connection; /healthz and small predicts, one at a time,
    on another. Latencies of the small requests that overlapped a large one are summarised."""
    predict = f"/v1/models/{MODEL_NAME}:predict"
    headers = {"Content-Type": "application/json"}
    windows: list[tuple[float, float, int]] = []
    stop = time.monotonic() + seconds

    def send_large() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while time.monotonic() < stop:
            started = time.monotonic()
            connection.request("POST", predict, body=big, headers=headers)
            response = connection.getresponse()
            response.read()
            windows.append((started, time.monotonic(), response.status))
        connection.close()

    sender = threading.Thread(target=send_large)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    timings: list[tuple[str, float, float, int]] = []
    sender.start()
    while sender.is_alive():
        for kind, method, path, body in (
            ("healthz", "GET", "/healthz", None),
            ("predict", "POST", predict, small),
        ):
            started = time.monotonic()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            timings.append((kind, started, time.monotonic(), response.status))
    sender.join()
    connection.close()
    summary: dict[str, object] = {
        "large_requests": len(windows),
        "large_mean_s": round(float(np.mean([e - s for s, e, _ in windows])), 3)
        if windows else 0.0,
        "large_statuses": sorted({status for _, _, status in windows}),
    }  # fmt: skip
    for kind in ("healthz", "predict"):
        waits = [
            (end - start) * 1000
            for name, start, end, status in timings
            if name == kind and any(s < end and start < e for s, e, _ in windows)
        ]
        summary[kind] = {
            "count": len(waits),
            "p50_ms": round(_percentile(waits, 50), 2),
            "p99_ms": round(_percentile(waits, 99), 2),
            "max_ms": round(max(waits, default=0.0), 2),
            "errors": sum(1 for name, _, _, status in timings if name == kind and status != 200),
        }
    return summary


def measure_stall(
    servers: list[Server], work: Path, seconds: float
) -> dict[str, dict[str, object]]:
    """The stall phase for each runtime server (MLP, no batching; see bench/README.md)."""
    big = large_body("mlp", STALL_BODY_MB)
    small = request_body("mlp")
    results = {}
    for server in servers:
        log = RESULTS / "logs" / f"{server.name}-stall.log"
        print(f"stall phase: {server.name} ({len(big) / 1e6:.1f} MB requests)", flush=True)
        with running_server(server, log) as (process, _):
            summary = stall_run(server.port, big, small, seconds)
            summary["peak_rss_mb"] = round(process_tree_rss_mb(process.pid, "VmHWM"), 1)
        print(f"  {json.dumps(summary)}", flush=True)
        results[server.name] = summary
    return results


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


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


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def target_checks(
    results: list[LoadResult], stall: dict[str, dict[str, object]], baseline: str | None
) -> list[dict[str, object]]:
    """The targets, each with PASS/FAIL and the numbers behind it (missing data: skipped)."""
    by_key = {(r.server, r.model, r.connections, r.protocol, r.tool): r for r in results}

    def get(
        server: str, model: str, connections: int = 64, protocol: str = "REST", tool: str = "wrk"
    ) -> LoadResult | None:
        return by_key.get((server, model, connections, protocol, tool))  # fmt: skip

    checks: list[tuple[str, bool, str]] = []
    runtime_cnn, floor_cnn, triton_cnn = (
        get("runtime", "cnn"),
        get("floor", "cnn"),
        get("pytriton", "cnn"),
    )
    if runtime_cnn and floor_cnn:
        checks.append((
            "1. CNN 64 conn: runtime >= 0.6x floor", runtime_cnn.requests_per_s
            >= 0.6 * floor_cnn.requests_per_s, f"{runtime_cnn.requests_per_s:.0f} vs "
            f"{floor_cnn.requests_per_s:.0f} = "
            f"{_ratio(runtime_cnn.requests_per_s, floor_cnn.requests_per_s)}",
        ))  # fmt: skip
    if runtime_cnn and triton_cnn:
        checks.append((
            "1. CNN 64 conn: runtime >= 1.5x PyTriton", runtime_cnn.requests_per_s
            >= 1.5 * triton_cnn.requests_per_s, f"{runtime_cnn.requests_per_s:.0f} vs "
            f"{triton_cnn.requests_per_s:.0f} = "
            f"{_ratio(runtime_cnn.requests_per_s, triton_cnn.requests_per_s)}",
        ))  # fmt: skip
    runtime_mlp, floor_mlp = get("runtime", "mlp"), get("floor", "mlp")
    if runtime_mlp and floor_mlp:
        checks.append((
            "2. MLP 64 conn: runtime >= 0.5x floor", runtime_mlp.requests_per_s
            >= 0.5 * floor_mlp.requests_per_s, f"{runtime_mlp.requests_per_s:.0f} vs "
            f"{floor_mlp.requests_per_s:.0f} = "
            f"{_ratio(runtime_mlp.requests_per_s, floor_mlp.requests_per_s)}",
        ))  # fmt: skip
    if runtime_mlp:
        checks.append(("2. MLP 64 conn: runtime p99 <= 8 ms", runtime_mlp.p99_ms <= 8,
                       f"{runtime_mlp.p99_ms:.2f} ms"))  # fmt: skip
    single, single_before = get("runtime", "mlp", 1), get(f"runtime@{baseline}", "mlp", 1)
    if single and single_before:
        checks.append((
            f"2. MLP 1 conn: runtime p50 <= runtime@{baseline} p50",
            single.p50_ms <= single_before.p50_ms,
            f"{single.p50_ms:.3f} ms vs {single_before.p50_ms:.3f} ms",
        ))  # fmt: skip
    if "runtime" in stall:
        summary = stall["runtime"]
        for kind in ("healthz", "predict"):
            numbers = summary[kind]
            assert isinstance(numbers, dict)
            checks.append((
                f"3. {kind} p99 while 30 MB requests are processed <= 100 ms",
                bool(numbers["count"]) and numbers["p99_ms"] <= 100 and not numbers["errors"],
                f"p99 {numbers['p99_ms']} ms, max {numbers['max_ms']} ms, "
                f"{numbers['count']} requests, {numbers['errors']} errors",
            ))  # fmt: skip
    for model in ("mlp", "cnn"):
        grpc, rest = get("runtime", model, 64, "gRPC", "h2load"), get("runtime", model)
        rest_h2 = get("runtime", model, 64, "REST", "h2load")
        if grpc and rest:
            checks.append((
                f"4. {model.upper()}: runtime gRPC (h2load) >= REST (wrk)",
                grpc.requests_per_s >= rest.requests_per_s and not grpc.errors,
                f"{grpc.requests_per_s:.0f} vs {rest.requests_per_s:.0f} = "
                f"{_ratio(grpc.requests_per_s, rest.requests_per_s)}; REST with h2load --h1: "
                f"{rest_h2.requests_per_s if rest_h2 else 0:.0f}",
            ))  # fmt: skip
        naive = get("naive", model)
        if rest and naive:
            checks.append((
                f"5. {model.upper()}: runtime RSS <= naive RSS + 150 MB",
                rest.rss_mb <= naive.rss_mb + 150,
                f"{rest.rss_mb:.0f} MB vs {naive.rss_mb:.0f} MB",
            ))  # fmt: skip
    checks.append((
        "no errors in any run", all(r.errors == 0 for r in results),
        ", ".join(f"{r.server}/{r.model}/{r.protocol}: {r.errors}" for r in results if r.errors)
        or "0 everywhere",
    ))  # fmt: skip
    return [{"target": t, "pass": ok, "numbers": numbers} for t, ok, numbers in checks]


def markdown_table(results: list[LoadResult], inprocess: dict[str, dict[str, float]]) -> str:
    lines = [
        "| server | model | protocol (tool) | connections | req/s | p50 ms | p99 ms | mean ms "
        "| RSS MB | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p50 = f"{r.p50_ms:.2f}" if r.tool == "wrk" else "–"
        p99 = f"{r.p99_ms:.2f}" if r.tool == "wrk" else "–"
        lines.append(
            f"| {r.server} | {r.model} | {r.protocol} ({r.tool}) | {r.connections} | "
            f"{r.requests_per_s:,.0f} | {p50} | {p99} | {r.mean_ms:.2f} | {r.rss_mb:.0f} | "
            f"{r.errors} |"
        )
    for model, numbers in inprocess.items():
        lines.append(
            f"| in-process, batches of 64 (rows/s) | {model} | – | – | "
            f"{numbers['rows_per_s']:,.0f} | – | – | – | – | – |"
        )
    return "\n".join(lines)


def stall_table(stall: dict[str, dict[str, object]]) -> str:
    lines = [
        "| server | large requests (mean s) | healthz p50 / p99 / max ms | predict p50 / p99 / "
        "max ms | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for server, s in stall.items():
        h, p = s["healthz"], s["predict"]
        assert isinstance(h, dict) and isinstance(p, dict)
        lines.append(
            f"| {server} | {s['large_requests']} ({s['large_mean_s']}) | "
            f"{h['p50_ms']} / {h['p99_ms']} / {h['max_ms']} | "
            f"{p['p50_ms']} / {p['p99_ms']} / {p['max_ms']} | {s['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def checks_table(checks: list[dict[str, object]]) -> str:
    lines = ["| target | result | numbers |", "|---|---|---|"]
    for check in checks:
        verdict = "PASS" if check["pass"] else "FAIL"
        lines.append(f"| {check['target']} | {verdict} | {check['numbers']} |")
    return "\n".join(lines)


def run_sweep(work: Path, durations: Durations) -> list[dict[str, object]]:
    """Runtime on the MLP at 64 connections under each SWEEP configuration."""
    version_dir = export_model(MODELS["mlp"], work / "bench_mlp")
    bodies = write_bodies("mlp", work)
    rows = []
    for label, text, extra in SWEEP:
        batching_file = work / "sweep_batching.txt"
        batching_file.write_text(
            text.replace("} ", "}\n") + "\nmax_enqueued_batches { value: 64 }\n"
        )
        port = free_port()
        print(f"sweep: {label}", flush=True)
        command = runtime_command(version_dir.parent, batching_file, port, free_port(), extra)
        server = Server("runtime", command, port, f"/v1/models/{MODEL_NAME}:predict",
                        bodies.tfserving)  # fmt: skip
        results, _ = measure_server(server, "mlp", bodies, durations, single=False)
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
        default=",".join(SERVERS),
        help=f"comma-separated subset of: {', '.join(SERVERS)} (default all)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the runtime code of this git revision (e.g. HEAD~2) as runtime@REV",
    )
    parser.add_argument("--no-stall", action="store_true", help="skip the 30 MB stall phase")
    args = parser.parse_args(argv)
    need_tools()
    durations = Durations(1, 2, 2) if args.quick else Durations(3, 10, 5)
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

        baseline = (args.baseline, baseline_source(args.baseline, work)) if args.baseline else None
        batching_file = work / "batching_parameters.txt"
        batching_file.write_text(BATCHING_PARAMETERS)
        results: list[LoadResult] = []
        inprocess: dict[str, dict[str, float]] = {}
        agreement: dict[str, dict[str, bool]] = {}
        names = args.servers.split(",")
        for model in args.models.split(","):
            print(f"model {model}:", flush=True)
            version_dir = export_model(MODELS[model], work / MODELS[model])
            bodies = write_bodies(model, work)
            answers: dict[str, object] = {}
            for server in make_servers(names, version_dir, bodies, batching_file, baseline):
                measured, answer = measure_server(server, model, bodies, durations)
                results.extend(measured)
                answers[server.name] = answer
            if "runtime" in answers:
                agreement[model] = check_answers(answers)
            inprocess[model] = inprocess_throughput(
                version_dir, threads=1, seconds=durations.measured / 3
            )
            print(f"  in-process: {inprocess[model]['rows_per_s']:.0f} rows/s", flush=True)

        stall: dict[str, dict[str, object]] = {}
        if not args.no_stall and "runtime" in names:
            version_dir = work / MODELS["mlp"] / "1"
            if not version_dir.exists():
                version_dir = export_model(MODELS["mlp"], work / MODELS["mlp"])
            stall_servers = []
            for name, env in (("runtime", {}), *(
                ((f"runtime@{baseline[0]}", {"PYTHONPATH": str(baseline[1])}),)
                if baseline else ()
            )):  # fmt: skip
                port = free_port()
                command = runtime_command(
                    version_dir.parent,
                    None,
                    port,
                    free_port(),
                    ("--rest_api_max_body_bytes=67108864",),
                )
                stall_servers.append(Server(name, command, port,
                                            f"/v1/models/{MODEL_NAME}:predict",
                                            work / "mlp.json", env))  # fmt: skip
            (work / "mlp.json").write_bytes(request_body("mlp"))
            stall = measure_stall(stall_servers, work, STALL_SECONDS if not args.quick else 4.0)

        table = markdown_table(results, inprocess)
        checks = target_checks(results, stall, args.baseline)
        print()
        print(table)
        if stall:
            print()
            print(stall_table(stall))
        print()
        print(checks_table(checks))
        print(f"\nanswers agree with the runtime's REST answer: {json.dumps(agreement)}")
        print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")
        (RESULTS / f"bench-{stamp}.json").write_text(
            json.dumps(
                {
                    "machine": machine,
                    "durations_s": asdict(durations),
                    "batching_parameters": BATCHING_PARAMETERS,
                    "runtime_args": list(RUNTIME_ARGS),
                    "baseline": args.baseline,
                    "results": [asdict(r) for r in results],
                    "stall": stall,
                    "inprocess": inprocess,
                    "checks": checks,
                    "answers_agree": agreement,
                    "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
