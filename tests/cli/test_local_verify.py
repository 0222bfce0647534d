"""Verify before traffic on the local target, through real ``cloudserve`` processes and the
real runtime: a Keras 3 ``tf.saved_model.save`` export answers, a version that cannot answer
never becomes the default (with the runtime's last log lines in the error), warm-up records
are the smoke request, and the ``local`` commands print one JSON object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli.write_exports import BROKEN_MESSAGE, KERAS3_ANSWERS, KERAS3_ROWS
from tests.conftest import ROOT, export_example
from tests.support import run_local_cli

WRITER = ROOT / "tests" / "cli" / "write_exports.py"
OLD = datetime(2001, 1, 1, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    """Exports: half_plus_two (v1, an old mtime), the Keras 3 model with a warm-up record (v2),
    a model that fails every predict (v3). The runtime is stopped at the end."""
    root = tmp_path_factory.mktemp("verify")
    exports = root / "exports"
    hp = export_example("half_plus_two", exports / "hp", 1)
    os.utime(hp, (OLD, OLD))
    write = [sys.executable, str(WRITER)]
    subprocess.run([*write, "keras3", str(exports / "keras" / "2")], check=True)
    warmup = json.dumps([{"inputs": KERAS3_ROWS}])
    subprocess.run([*write, "warmup", str(exports / "keras" / "2"), warmup], check=True)
    subprocess.run([*write, "broken", str(exports / "broken" / "3")], check=True)
    yield root
    cli(root, "local", "stop")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_local_cli(cwd, "reg", *args, timeout=240)


def one_json(result: subprocess.CompletedProcess, code: int = 0) -> dict:
    assert result.returncode == code, result.stdout + result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert data["ok"] is (code == 0)
    return data


def predict(cwd: Path, rows: list) -> list:
    data = json.dumps({"instances": rows})
    return one_json(cli(cwd, "-o", "json", "predict", "--data", data))["response"]["predictions"]


def test_first_version_verified_created_now_not_at_the_export_mtime(workdir: Path):
    before = datetime.now(UTC).replace(microsecond=0)
    record = one_json(cli(workdir, "-o", "json", "deploy", "--export", "exports/hp/1"))["record"]
    assert record["is_default"] and record["changed"] is True
    assert "verified: answered a smoke request (zeros shaped like signature" in record["message"]
    assert datetime.fromisoformat(record["created"]) >= before
    listed = one_json(cli(workdir, "-o", "json", "versions", "list"))["versions"]
    assert [(v["version"], v["changed"]) for v in listed] == [("1", False)]


def test_keras3_saved_model_export_is_verified_by_its_warmup_record_and_answers(workdir: Path):
    result = cli(workdir, "-o", "json", "deploy", "--export", "exports/keras/2", "--set-default")
    record = one_json(result)["record"]
    assert record["version"] == "2" and record["is_default"] and record["state"] == "AVAILABLE"
    assert "verified: answered a smoke request (warm-up record" in record["message"]
    answers = predict(workdir, KERAS3_ROWS)
    assert [round(a[0], 4) for a in answers] == [a[0] for a in KERAS3_ANSWERS]
    log = one_json(cli(workdir, "local", "logs", "-n", "400", "--output", "json"))
    assert any("Number of warmup records read: 1" in line for line in log["lines"])


def test_version_that_cannot_answer_never_becomes_the_default(workdir: Path):
    result = cli(workdir, "-o", "json", "deploy", "--export", "exports/broken/3", "--set-default")
    error = one_json(result, code=4)["error"]
    assert error["kind"] == "provider"
    assert "version 3 of 'reg' failed its smoke request" in error["message"]
    assert "version 2 keeps serving" in error["message"] and BROKEN_MESSAGE in error["message"]
    assert error["details"] and all(line.startswith("local log: ") for line in error["details"])
    loaded = "Successfully loaded servable version {name: reg version: 3}"
    assert any(loaded in line for line in error["details"])  # the runtime's own last lines
    assert error["record"]["state"] == "FAILED" and not error["record"]["is_default"]
    assert one_json(cli(workdir, "-o", "json", "status"))["default"] == "2"
    answers = predict(workdir, KERAS3_ROWS)
    assert [round(a[0], 4) for a in answers] == [a[0] for a in KERAS3_ANSWERS]


def test_failed_smoke_request_in_text_mode(workdir: Path):
    result = cli(workdir, "deploy", "--export", "exports/broken/3", "--set-default")
    assert result.returncode == 4
    assert "error [local]: version 3 of 'reg' failed its smoke request" in result.stderr
    assert "  local log: " in result.stderr and "\nhint: fix the model" in result.stderr
    assert "Traceback" not in result.stderr


def test_local_commands_print_one_json_object(workdir: Path):
    status = one_json(cli(workdir, "-o", "json", "local", "status"))
    assert status["running"] and status["repository"] == str(workdir / "repo")
    assert [v["version"] for v in status["models"]["reg"]] == ["3", "2", "1"]
    logs = one_json(cli(workdir, "local", "logs", "--output", "json", "-n", "3"))
    assert len(logs["lines"]) == 3 and logs["log"] == str(workdir / "repo" / "runtime.log")
    follow = one_json(cli(workdir, "-o", "json", "local", "logs", "--follow"), code=2)
    assert "--follow" in follow["error"]["message"]
    stopped = one_json(cli(workdir, "local", "stop", "-o", "json"))
    assert stopped["stopped"] is True and stopped["pid"] == status["pid"]
    deadline = time.monotonic() + 30
    while Path(f"/proc/{status['pid']}").exists() and time.monotonic() < deadline:
        if "State:\tZ" in Path(f"/proc/{status['pid']}/status").read_text():
            break
        time.sleep(0.2)
    started = one_json(cli(workdir, "-o", "json", "local", "start"))
    assert started["running"] and started["pid"] != status["pid"]
    assert predict(workdir, [[1.0, 2.0, 3.0]])[0][0] == pytest.approx(9.4, abs=1e-4)


@pytest.mark.parametrize(
    "target_args",
    [
        ("-t", "aws", "--set", "targets.aws.bucket=b"),
        ("-t", "gcp", "--set", "targets.gcp.project=p", "--set", "targets.gcp.bucket=b"),
    ],
    ids=["target-aws", "target-gcp"],
)
def test_keras3_export_warns_for_managed_tf_serving_targets(workdir: Path, target_args):
    result = cli(workdir, "-o", "json", "check", *target_args, "--export", "exports/keras/2")
    data = json.loads(result.stdout)
    findings = data["findings"] if data["ok"] else data["error"]["findings"]
    (warning,) = [f for f in findings if f["id"] == "export.tf1_loading"]
    assert warning["severity"] == "warning" and "model.export(DIR)" in warning["fix"]
    assert "sequential/dense/kernel" in warning["message"] and warning["source"]


def test_keras3_export_gets_no_warning_on_local(workdir: Path):
    data = one_json(cli(workdir, "-o", "json", "check", "--export", "exports/keras/2"))
    assert "export.tf1_loading" not in {f["id"] for f in data["findings"]}


def test_version_that_fails_to_load_shows_the_runtime_log(workdir: Path):
    corrupt = workdir / "exports" / "corrupt" / "4"
    shutil.copytree(workdir / "exports" / "hp" / "1", corrupt)
    (corrupt / "variables" / "variables.data-00000-of-00001").write_bytes(b"\0" * 8)
    result = cli(workdir, "-o", "json", "deploy", "--export", "exports/corrupt/4")
    error = one_json(result, code=4)["error"]
    assert "version 4 of 'reg' failed to load" in error["message"]
    assert any(
        "Loading reg version 4 failed" in line and line.startswith("local log: ")
        for line in error["details"]
    )
    assert one_json(cli(workdir, "-o", "json", "status"))["default"] == "2"
