"""Output rendering: redaction of credentials, plain tables, line-based progress."""

from __future__ import annotations

import io
import json

import pytest
from pydantic import SecretStr

from cloudserve.errors import ConfigError, PreflightError
from cloudserve.output import REDACTED, Output, is_sensitive, redact
from cloudserve.progress import LineProgress
from cloudserve.records import Finding


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "secret",
        "aws_secret_access_key",
        "session_token",
        "password",
        "db_passwd",
        "credentials",
        "private_key",
        "account_key",
        "key",
        "auth_header",
    ],
)
def test_sensitive_keys(key):
    assert is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "kms_key_id",
        "kms_key",
        "secret_arn",
        "credentials_file",
        "auth_mode",
        "key_name",
        "region",
        "instance_type",
        "bucket",
        "service_account",
        "monkey_path",
    ],
)
def test_keys_that_only_refer_to_secrets(key):
    assert not is_sensitive(key)


def test_redact_nested_values_and_urls():
    data = {
        "region": "us-east-1",
        "api_token": "abc123",
        "empty_token": None,
        "nested": {"password": "hunter2", "kms_key_id": "alias/k"},
        "items": [{"secret": "s"}],
        "client_secret": SecretStr("x"),
        "endpoint": "https://user:pa55@example.test/path",
    }
    assert redact(data) == {
        "region": "us-east-1",
        "api_token": REDACTED,
        "empty_token": None,
        "nested": {"password": REDACTED, "kms_key_id": "alias/k"},
        "items": [{"secret": REDACTED}],
        "client_secret": REDACTED,
        "endpoint": f"https://user:{REDACTED}@example.test/path",
    }


def test_json_result_is_one_object(capsys):
    Output("json").result({"value": 1, "token": "t"}, lambda out: out.line("text"))
    assert json.loads(capsys.readouterr().out) == {"ok": True, "value": 1, "token": REDACTED}


def test_errors_one_line_and_hint_on_stderr(capsys):
    Output("text").error(ConfigError("bad thing", hint="do this"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: bad thing\nhint: do this\n"


def test_error_json_schema(capsys):
    finding = Finding("x.y", "error", "broken", fix="fix it", source="https://s.test")
    Output("json").error(PreflightError("preflight failed", hint="h", findings=[finding]))
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "ok": False,
        "error": {
            "kind": "preflight",
            "message": "preflight failed",
            "hint": "h",
            "provider": None,
            "exit_code": 3,
            "details": [],
            "findings": [
                {
                    "id": "x.y",
                    "severity": "error",
                    "message": "broken",
                    "fix": "fix it",
                    "source": "https://s.test",
                }
            ],
        },
    }


def test_plain_table_when_not_a_terminal(capsys):
    Output("text").table(["a", "long header"], [("x", 1), ("yyyy", None)])
    assert capsys.readouterr().out.splitlines() == ["a     long header", "x     1", "yyyy"]


def test_line_progress_is_rate_limited():
    stream, now = io.StringIO(), [0.0]
    progress = LineProgress(stream, interval=10, clock=lambda: now[0])
    progress.status("waiting for endpoint: Creating")
    progress.status("waiting for endpoint: Creating")
    progress.transfer("upload", 10, 100)
    progress.transfer("upload", 50, 100)
    now[0] = 11.0
    progress.status("waiting for endpoint: Creating")
    progress.transfer("upload", 60, 100)
    progress.transfer("upload", 100, 100)
    progress.transfer("upload", 100, 100)
    assert stream.getvalue().splitlines() == [
        "cloudserve: waiting for endpoint: Creating",
        "cloudserve: upload: 10% (10 B of 100 B)",
        "cloudserve: waiting for endpoint: Creating",
        "cloudserve: upload: 60% (60 B of 100 B)",
        "cloudserve: upload: 100% (100 B of 100 B)",
    ]
