"""Canary traffic (``traffic:``): reachable from the file, the environment, ``--set`` and
``deploy --traffic``, validated with errors naming the path, refused on targets without the
traffic_split feature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from cloudserve import registry, spec
from cloudserve.errors import ConfigError
from cloudserve.records import DeploySpec, ExportInfo, Plan
from tests.cli import conftest as cli_fixtures
from tests.cli.fake_adapter import FakeAdapter

# the CLI tests' fixtures, shared rather than copied
cli = cli_fixtures.cli
isolated = cli_fixtures.isolated
export_copy = cli_fixtures.export_copy


class RecordingAdapter(FakeAdapter):
    """The fake target, remembering the spec every plan was asked for."""

    name = "canary"
    SPECS: ClassVar[list[DeploySpec]] = []

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        self.SPECS.append(spec)
        return super().plan(spec, export)


@pytest.fixture(autouse=True)
def _targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._BUILTIN, "fake", "tests.cli.fake_adapter:FakeAdapter")
    monkeypatch.setitem(registry._BUILTIN, "canary", "tests.unit.test_traffic:RecordingAdapter")
    RecordingAdapter.SPECS.clear()
    FakeAdapter.reset()


def load(config: Path | None = None, env: dict[str, str] | None = None, **flags):
    return spec.load(config, spec.Flags(**flags), env=env or {})


def test_top_level_key_in_the_file_reaches_the_deploy_spec(tmp_path: Path, export_v1):
    path = tmp_path / "cloudserve.yaml"
    path.write_text("model: m\ntraffic: {123: 10, 1: 90}\n")
    settings = load(path)
    assert settings.project.traffic == {"123": 10, "1": 90}
    assert settings.deploy_spec(export_v1).traffic == {"123": 10, "1": 90}


def test_no_traffic_leaves_the_split_alone(export_v1):
    assert load(model="m").deploy_spec(export_v1).traffic is None


@pytest.mark.parametrize("raw", ["2=10,1=90", " 2 = 10 , 1=90 ", '{"2": 10, "1": 90}'])
def test_environment_variable(raw: str):
    assert load(env={"CLOUDSERVE_TRAFFIC": raw}).project.traffic == {"2": 10, "1": 90}


def test_set_flag_in_both_spellings():
    assert load(sets=["traffic=2=10,1=90"]).project.traffic == {"2": 10, "1": 90}
    assert load(sets=["traffic.2=10", "traffic.1=90"]).project.traffic == {"2": 10, "1": 90}


def test_a_higher_layer_replaces_the_split_instead_of_merging(tmp_path: Path):
    path = tmp_path / "cloudserve.yaml"
    path.write_text("traffic: {1: 90, 2: 10}\n")
    assert load(path, sets=["traffic.3=100"]).project.traffic == {"3": 100}
    env = {"CLOUDSERVE_TRAFFIC": "2=50,1=50"}
    assert load(path, env).project.traffic == {"2": 50, "1": 50}
    assert load(path, env, traffic="2=100").project.traffic == {"2": 100}


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("2=10,1=80", "percents must sum to 100, got 90"),
        ("2=10.5,1=89.5", "'2=10.5' is not VERSION=PERCENT"),
        ("2=ten,1=90", "'2=ten' is not VERSION=PERCENT"),
        ("2=-10,1=110", "'2=-10' is not VERSION=PERCENT"),
        ("2,1=100", "'2' is not VERSION=PERCENT"),
        ("02=10,1=90", "version '02' is not a positive integer"),
        ("v2=10,1=90", "version 'v2' is not a positive integer"),
        ("2=10,2=90", "version 2 appears twice"),
        ("2=110", "110 is not a whole percent"),
    ],
)
def test_invalid_splits_name_the_path(flag: str, message: str):
    with pytest.raises(ConfigError) as info:
        load(traffic=flag)
    assert info.value.message.startswith("invalid settings in cloudserve.yaml: traffic: ")
    assert message in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", ["10.0", "true", '"10"'])
def test_percents_in_json_must_be_integers(value: str):
    with pytest.raises(ConfigError, match=r"traffic\.2: Input should be a valid integer"):
        load(env={"CLOUDSERVE_TRAFFIC": f'{{"2": {value}, "1": 90}}'})


def test_set_default_cannot_go_with_a_split(export_v1):
    with pytest.raises(ConfigError, match="set_default sends all traffic to version 123"):
        load(model="m", set_default=True, traffic="123=10,1=90").deploy_spec(export_v1)
    ok = load(model="m", set_default=True, traffic="123=100").deploy_spec(export_v1)
    assert ok.traffic == {"123": 100}


def test_versions_must_be_deployed_or_being_deployed():
    spec.check_traffic_versions({"3": 10, "2": 90}, deploying="3", available={"1", "2"})
    with pytest.raises(ConfigError, match=r"version\(s\) 4, 9 are not deployed") as info:
        spec.check_traffic_versions({"3": 10, "4": 80, "9": 10}, deploying="3", available={"1"})
    assert "can take traffic: 1, 3" in info.value.message


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def project(isolated, export_copy) -> Path:
    export_copy("1")
    export_copy("2")
    (isolated / "cloudserve.yaml").write_text("model: hp\nexport: hp/2\ntarget: canary\n")
    return isolated


def test_deploy_flag_reaches_the_adapter(cli, project):
    cli.json("deploy", "--dry-run", "--traffic", "2=10,1=90")
    assert RecordingAdapter.SPECS[-1].traffic == {"2": 10, "1": 90}


def test_deploy_flag_errors_exit_2(cli, project):
    data = cli.json("deploy", "--dry-run", "--traffic", "2=10,1=10", code=2)
    assert "traffic: percents must sum to 100, got 20" in data["error"]["message"]
    assert RecordingAdapter.SPECS == []


def test_targets_without_the_feature_refuse_a_split(cli, project):
    data = cli.json("deploy", "--target", "local", "--traffic", "2=10,1=90", code=7)
    assert data["error"]["kind"] == "not_supported"
    assert "traffic_split" in data["error"]["message"]
    data = cli.json("check", "--target", "local", "--traffic", "2=100", code=7)
    assert "traffic_split" in data["error"]["message"]
    assert not (project / ".cloudserve").exists()


def test_help_documents_the_flag(cli):
    result = cli("deploy", "--help")
    assert "--traffic" in result.stdout and "2=10,1=90" in json.dumps(result.stdout)
