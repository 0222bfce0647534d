"""The sample CI workflow (examples/ci/deploy.yml): valid YAML, keyless on every cloud, and
every cloudserve command line in it is one the CLI accepts."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from cloudserve.cli.main import app
from tests.conftest import ROOT

WORKFLOW = ROOT / "examples" / "ci" / "deploy.yml"
#: inputs of the official sign-in actions that carry a stored key or password
KEY_INPUTS = {
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-session-token",
    "credentials_json",
    "creds",
    "client-secret",
}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> list[dict]:
    return workflow["jobs"]["deploy"]["steps"]


def test_requests_the_oidc_token_and_stores_no_key(workflow: dict):
    assert workflow["permissions"]["id-token"] == "write"
    assert "secrets." not in WORKFLOW.read_text()
    for step in steps(workflow):
        assert not KEY_INPUTS & set(step.get("with", {})), step


@pytest.mark.parametrize(
    ("target", "action", "inputs"),
    [
        ("aws", "aws-actions/configure-aws-credentials@", {"role-to-assume", "aws-region"}),
        (
            "gcp",
            "google-github-actions/auth@",
            {"workload_identity_provider", "service_account"},
        ),
        ("azure", "azure/login@", {"client-id", "tenant-id", "subscription-id"}),
    ],
    ids=["cloud-aws", "cloud-gcp", "cloud-azure"],
)
def test_each_cloud_signs_in_keyless(workflow: dict, target: str, action: str, inputs: set):
    assert target in workflow["jobs"]["deploy"]["strategy"]["matrix"]["target"]
    (step,) = [s for s in steps(workflow) if s.get("uses", "").startswith(action)]
    assert step["if"] == f"matrix.target == '{target}'"
    assert set(step["with"]) == inputs
    assert all(str(v).startswith("${{ vars.") for v in step["with"].values())


def cloudserve_commands(workflow: dict) -> list[list[str]]:
    commands = []
    for step in steps(workflow):
        script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
        for line in script.splitlines():
            line = line.strip().split(" > ")[0].split(" || ")[0]
            if line.startswith("cloudserve "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_every_cloudserve_command_line_parses(workflow: dict):
    commands = cloudserve_commands(workflow)
    names = {next(a for a in c if not a.startswith("-") and a != "json") for c in commands}
    assert names == {"deploy", "predict", "rollback"}
    for args in commands:
        # --help after the options: click parses (and rejects unknown) options up to it
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)


def test_readme_explains_the_keyless_setup():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Keyless CI", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "examples/ci/deploy.yml",
        "token.actions.githubusercontent.com",
        "workloadIdentityPools",
        "az ad app federated-credential create",
    ):
        assert needle in section, needle
