"""CLI plumbing against the in-memory ``fake`` target: JSON schema, exit codes, dry run,
version commands, predict input, delete confirmation."""

from __future__ import annotations

import json
import sys
import types

import pytest

from cloudserve import output


@pytest.fixture
def project(isolated, fake_target, export_copy):
    """A cloudserve.yaml deploying half_plus_two as model 'hp' to the fake target."""
    export_copy("1")
    export_copy("2")
    (isolated / "cloudserve.yaml").write_text("model: hp\nexport: hp/1\ntarget: fake\n")
    return isolated


def test_deploy_json_schema(cli, project, fake_target):
    data = cli.json("deploy")
    assert set(data) == {"ok", "target", "dry_run", "findings", "plan", "record"}
    assert data["target"] == "fake" and data["dry_run"] is False
    assert data["plan"]["actions"][0]["verb"] == "create"
    record = data["record"]
    assert record["model"] == "hp" and record["version"] == "1"
    assert record["is_default"] and record["state"] == "AVAILABLE"
    assert fake_target.UPLOADS == ["hp/1"]


def test_redeploy_is_unchanged(cli, project, fake_target):
    cli.json("deploy")
    data = cli.json("deploy")
    assert data["plan"]["actions"][0]["verb"] == "skip"
    assert data["record"]["changed"] is False
    assert fake_target.UPLOADS == ["hp/1"]


def test_dry_run_touches_nothing(cli, project, fake_target):
    data = cli.json("deploy", "--dry-run")
    assert data["dry_run"] is True and data["record"] is None
    assert data["plan"]["actions"] == [
        {"verb": "create", "resource": "fake-version", "name": "hp/1", "detail": ""}
    ]
    assert fake_target.UPLOADS == [] and fake_target.MODELS == {}


def test_dry_run_text(cli, project, fake_target):
    result = cli("deploy", "--dry-run")
    assert result.exit_code == 0
    assert "dry run: nothing was uploaded or created" in result.stdout
    assert "create" in result.stdout and "hp/1" in result.stdout


def test_preflight_error_stops_deploy_before_upload(cli, project, fake_target):
    data = cli.json("deploy", "--set", "targets.fake.region=nowhere", code=3)
    error = data["error"]
    assert error["kind"] == "preflight" and error["exit_code"] == 3
    assert [f["id"] for f in error["findings"] if f["severity"] == "error"] == ["fake.region"]
    assert fake_target.UPLOADS == []


def test_preflight_error_text_is_one_line_plus_findings(cli, project):
    result = cli("deploy", "--set", "targets.fake.region=nowhere")
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: preflight failed: region 'nowhere'")
    assert any("fake.region" in line for line in lines)
    assert lines[-1].startswith("hint: ")
    assert "Traceback" not in result.stderr


def test_verbose_shows_traceback(cli, project):
    result = cli("--verbose", "deploy", "--set", "targets.fake.region=nowhere")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_versions_set_default_predict_rollback(cli, project, fake_target):
    cli.json("deploy")
    second = cli.json("deploy", "--export", "hp/2")
    assert second["record"]["version"] == "2" and not second["record"]["is_default"]

    listed = cli.json("versions", "list")
    assert [v["version"] for v in listed["versions"]] == ["2", "1"]
    assert set(listed) == {"ok", "target", "model", "versions"}

    switched = cli.json("versions", "set-default", "2")
    assert switched["record"]["is_default"] and switched["record"]["traffic"] == 100

    answer = cli.json("predict", "--data", '{"instances": [[1.0]]}')
    assert answer == {
        "ok": True,
        "target": "fake",
        "model": "hp",
        "version": None,
        "response": {"predictions": [[1.0]], "served_by": "2"},
    }
    pinned = cli.json("predict", "--version", "1", "--data", '{"instances": [[1.0]]}')
    assert pinned["response"]["served_by"] == "1"

    status = cli.json("status")
    assert status["default"] == "2" and len(status["versions"]) == 2

    rolled = cli.json("rollback")
    assert rolled["record"]["version"] == "1" and rolled["record"]["is_default"]


def test_deploy_set_default_flag(cli, project):
    cli.json("deploy")
    data = cli.json("deploy", "--export", "hp/2", "--set-default")
    assert data["record"]["is_default"]


def test_no_wait_returns_before_ready(cli, project):
    data = cli.json("deploy", "--no-wait")
    assert data["record"]["state"] == "CREATING"


def test_not_found_exit_code(cli, project):
    data = cli.json("versions", "list", code=8)
    assert data["error"]["kind"] == "not_found"
    assert cli.json("rollback", code=8)["error"]["exit_code"] == 8


def test_predict_reads_file_and_stdin(cli, project, tmp_path):
    cli.json("deploy")
    body = tmp_path / "req.json"
    body.write_text('{"instances": [[2.0]]}')
    assert cli.json("predict", "--file", body)["response"]["predictions"] == [[2.0]]
    piped = cli.json("predict", input='{"inputs": {"x": [[3.0]]}}')
    assert piped["response"]["served_by"] == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{not json"], "not valid JSON"),
        (["--data", "[1, 2]"], "not a TF Serving predict body"),
        (["--data", "{}", "--file", "x.json"], "either --data or --file"),
        (["--file", "missing.json"], "cannot read"),
    ],
)
def test_predict_bad_input_is_a_config_error(cli, project, args, message):
    data = cli.json("predict", *args, code=2)
    assert message in data["error"]["message"]


def test_delete_refuses_without_yes_when_not_interactive(cli, project, fake_target):
    cli.json("deploy")
    data = cli.json("delete", code=2)
    assert "without confirmation" in data["error"]["message"]
    assert data["error"]["hint"] == "pass --yes to delete non-interactively"
    assert "hp" in fake_target.MODELS


def test_delete_with_yes(cli, project, fake_target):
    cli.json("deploy")
    cli.json("deploy", "--export", "hp/2")
    data = cli.json("delete", "--version", "2", "--yes")
    assert data["deleted"] == ["hp/2"] and data["version"] == "2"
    assert cli.json("--yes", "delete")["deleted"] == ["hp"]
    assert cli.json("delete", "--yes")["deleted"] == []


def test_delete_asks_on_a_terminal(cli, project, fake_target, monkeypatch):
    cli.json("deploy")
    monkeypatch.setattr("cloudserve.cli.delete_cmd.stdin_is_interactive", lambda: True)
    declined = cli("delete", input="n\n")
    assert declined.exit_code == 0 and "hp" in fake_target.MODELS
    assert "nothing deleted: you answered no" in declined.stdout
    assert "Delete model 'hp'" in declined.stderr
    accepted = cli("delete", input="y\n")
    assert accepted.exit_code == 0 and fake_target.MODELS == {}


def test_ci_is_never_interactive(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert output.stdin_is_interactive() is False


def test_check_reports_redacted_settings(cli, project):
    data = cli.json(
        "check",
        "--set",
        "targets.fake.api_token=hunter2-secret",
        "--set",
        "targets.fake.kms_key_id=alias/mine",
    )
    assert data["settings"]["api_token"] == "***"
    assert data["settings"]["kms_key_id"] == "alias/mine"
    assert "hunter2" not in json.dumps(data)


def test_usage_errors_exit_2_with_json(cli, project):
    result = cli("-o", "json", "deploy", "--no-such-flag")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["kind"] == "usage"
    assert cli("deploy", "--timeout", "-5").exit_code == 2


def test_internal_errors_exit_1_in_one_line(cli, project, fake_target, monkeypatch):
    def boom(self, model):
        raise RuntimeError("kaput")

    monkeypatch.setattr(fake_target, "list_versions", boom)
    result = cli("status")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: internal error: RuntimeError: kaput"
    assert "Traceback" not in result.stderr


def test_version_flag(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.startswith("cloudserve ")


def test_serve_without_the_runtime_says_what_to_install(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudserve_runtime.server", None)
    result = cli("serve", "--port", "1")
    assert result.exit_code == 2
    assert "hint: pip install 'cloudserve[runtime]'" in result.stderr


def test_serve_passes_arguments_through(cli, monkeypatch):
    seen = []
    module = types.ModuleType("cloudserve_runtime.server")
    module.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "cloudserve_runtime.server", module)
    result = cli("serve", "--port", "8501", "--help", "models/")
    assert result.exit_code == 0
    assert seen == [["--port", "8501", "--help", "models/"]]
