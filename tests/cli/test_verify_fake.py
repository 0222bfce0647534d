"""Verify before traffic, in the core: the smoke request, the default switch and the rollback
fallback, seen through ``cloudserve deploy`` on the in-memory ``fake`` target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def deploy(cli, isolated, fake_target, export_copy):
    def run(version: str, *args: str, code: int = 0) -> dict:
        return cli.json(
            "deploy", "-t", "fake", "-m", "reg", "--export", export_copy(version), *args, code=code
        )

    return run


def default_of(fake) -> str:
    return fake.MODELS["reg"]["default"]


def test_first_version_is_verified_and_becomes_the_default(deploy, fake_target):
    record = deploy("1")["record"]
    assert record["is_default"] and record["state"] == "AVAILABLE"
    assert "verified: answered a smoke request" in record["message"]
    assert "zeros shaped like signature 'serving_default'" in record["message"]
    assert fake_target.PREDICTS == [("1", "1")]


def test_new_default_answers_before_it_takes_traffic(deploy, fake_target):
    deploy("1")
    record = deploy("2", "--set-default")["record"]
    assert record["is_default"] and record["version"] == "2" and record["changed"]
    # the smoke request went to version 2 by name while version 1 still had the traffic
    assert fake_target.PREDICTS[-1] == ("2", "2")
    assert default_of(fake_target) == "2"


def test_failed_smoke_request_leaves_the_previous_default_serving(cli, deploy, fake_target):
    deploy("1")
    fake_target.BROKEN.add("2")
    error = deploy("2", "--set-default", code=4)["error"]
    assert error["kind"] == "provider" and error["exit_code"] == 4
    assert "version 2 of 'reg' failed its smoke request" in error["message"]
    assert "version 1 keeps serving" in error["message"]
    assert "Could not find variable dense/bias" in error["message"]
    assert "fake log: Could not find variable dense/bias" in error["details"]
    assert error["record"]["state"] == "FAILED" and not error["record"]["is_default"]
    assert "failed its smoke request" in error["record"]["message"]
    assert default_of(fake_target) == "1"
    answer = cli.json("predict", "-t", "fake", "-m", "reg", "--data", '{"instances": [1]}')
    assert answer["response"]["served_by"] == "1"


def test_failed_smoke_request_in_text_mode_shows_the_log_lines(
    cli, isolated, fake_target, export_copy
):
    base = ("deploy", "-t", "fake", "-m", "reg", "--export")
    assert cli(*base, export_copy("1")).exit_code == 0
    fake_target.BROKEN.add("2")
    result = cli(*base, export_copy("2"), "--set-default")
    assert result.exit_code == 4
    assert "fake log: Could not find variable dense/bias" in result.stderr
    assert "hint: " in result.stderr


def test_target_without_per_version_predicts_verifies_after_routing(deploy, fake_target):
    fake_target.DEFAULT_ONLY[0] = True
    deploy("1")
    record = deploy("2", "--set-default")["record"]
    assert record["is_default"]
    assert "verified right after taking traffic" in record["message"]
    assert fake_target.PREDICTS[-1] == (None, "2")


def test_target_without_per_version_predicts_rolls_back_a_failed_version(deploy, fake_target):
    fake_target.DEFAULT_ONLY[0] = True
    deploy("1")
    fake_target.BROKEN.add("2")
    error = deploy("2", "--set-default", code=4)["error"]
    assert "rolled back to version 1" in error["record"]["message"]
    assert not error["record"]["is_default"]
    assert default_of(fake_target) == "1"


def test_target_without_per_version_predicts_and_no_traffic_says_not_verified(deploy, fake_target):
    fake_target.DEFAULT_ONLY[0] = True
    deploy("1")
    fake_target.BROKEN.add("2")
    record = deploy("2")["record"]
    assert record["message"].startswith("not verified: the target cannot send a request")
    assert default_of(fake_target) == "1"


def test_user_sample_is_the_smoke_request(deploy, fake_target, isolated: Path):
    sample = isolated / "sample.json"
    sample.write_text(json.dumps({"instances": [[7.0]]}))
    record = deploy("1", "--sample", str(sample))["record"]
    assert f"sample {sample}" in record["message"]


def test_sample_from_cloudserve_yaml_is_relative_to_the_file(
    cli, isolated, fake_target, export_copy
):
    project = isolated / "project"
    project.mkdir()
    (project / "sample.json").write_text('{"instances": [[1.0]]}')
    (project / "cloudserve.yaml").write_text(
        f"model: reg\ntarget: fake\nexport: {export_copy('1')}\nsample: sample.json\n"
    )
    record = cli.json("--config", project / "cloudserve.yaml", "deploy")["record"]
    assert f"sample {project / 'sample.json'}" in record["message"]


def test_bad_sample_is_refused_before_any_upload(deploy, fake_target, isolated: Path):
    (isolated / "bad.json").write_text('{"rows": []}')
    error = deploy("1", "--sample", str(isolated / "bad.json"), code=2)["error"]
    assert "not a TF Serving predict body" in error["message"]
    assert fake_target.UPLOADS == []


def test_no_wait_says_not_verified(deploy, fake_target):
    record = deploy("1", "--no-wait")["record"]
    assert "not verified: deployed with --no-wait" in record["message"]
    assert fake_target.PREDICTS == []


def test_set_default_verifies_the_version_first(cli, deploy, fake_target, isolated: Path):
    deploy("1")
    deploy("2")
    fake_target.BROKEN.add("2")
    sample = isolated / "sample.json"
    sample.write_text('{"instances": [[1.0]]}')
    base = ("versions", "set-default", "2", "-t", "fake", "-m", "reg")
    error = cli.json(*base, "--sample", sample, code=4)["error"]
    assert "takes no traffic; version 1 keeps serving" in error["message"]
    assert default_of(fake_target) == "1"
    fake_target.BROKEN.clear()
    record = cli.json(*base, "--sample", sample)["record"]
    assert record["is_default"] and record["message"].startswith("verified")
    assert fake_target.PREDICTS[-1] == ("2", "2")


def test_set_default_without_a_request_says_not_verified(cli, deploy, fake_target):
    deploy("1")
    deploy("2")
    record = cli.json("versions", "set-default", "2", "-t", "fake", "-m", "reg")["record"]
    assert record["is_default"]
    assert record["message"] == "not verified: no --sample given and no export configured"
