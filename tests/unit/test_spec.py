"""cloudserve.yaml layering (file < env < --set < flags) and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudserve import registry, spec
from cloudserve.errors import ConfigError, NotSupported
from tests.cli.fake_adapter import FakeAdapter


@pytest.fixture(autouse=True)
def _fake_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._BUILTIN, "fake", "tests.cli.fake_adapter:FakeAdapter")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cloudserve.yaml"
    path.write_text(
        "model: from-file\n"
        "export: exports/1\n"
        "target: fake\n"
        "timeout: 60\n"
        "targets:\n"
        "  fake:\n"
        "    region: file-region\n"
        "    memory_mb: 1024\n"
    )
    return path


def load(config: Path | None, env: dict[str, str] | None = None, **flags) -> spec.Settings:
    return spec.load(config, spec.Flags(**flags), env=env or {})


def test_file_values(config: Path):
    settings = load(config)
    assert settings.project.model == "from-file"
    assert settings.project.export == config.parent / "exports/1"  # relative to the file
    assert settings.target == "fake"
    assert settings.adapter_config(FakeAdapter).region == "file-region"


def test_precedence_file_env_set_flags(config: Path):
    env = {
        "CLOUDSERVE_MODEL": "from-env",
        "CLOUDSERVE_FAKE__REGION": "env-region",
        "CLOUDSERVE_FAKE__MEMORY_MB": "2048",
        "CLOUDSERVE_TIMEOUT": "90",
    }
    settings = load(config, env)
    assert settings.project.model == "from-env"
    assert settings.project.timeout == 90
    cfg = settings.adapter_config(FakeAdapter)
    assert (cfg.region, cfg.memory_mb) == ("env-region", 2048)

    settings = load(config, env, sets=["model=from-set", "targets.fake.region=set-region"])
    assert settings.project.model == "from-set"
    assert settings.adapter_config(FakeAdapter).region == "set-region"
    assert settings.adapter_config(FakeAdapter).memory_mb == 2048  # env still applies

    settings = load(config, env, sets=["model=from-set"], model="from-flag")
    assert settings.project.model == "from-flag"


def test_later_set_wins():
    settings = load(None, sets=["model=a", "model=b"])
    assert settings.project.model == "b"


def test_env_nested_settings_and_aliases():
    env = {"CLOUDSERVE_FAKE__SERVERLESS__MEMORY_MB": "2048", "CLOUDSERVE_TARGET": "fake"}
    settings = load(None, env)
    assert settings.adapter_config(FakeAdapter).serverless.memory_mb == 2048


def test_unrelated_cloudserve_variables_are_ignored():
    env = {"CLOUDSERVE_MAX_BATCH_SIZE": "8", "CLOUDSERVE_NOPE__X": "1", "CLOUDSERVE_OUTPUT": "json"}
    assert load(None, env).project.targets == {}


def test_target_keys_written_as_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(registry._BUILTIN, "aws", "tests.cli.fake_adapter:FakeAdapter")
    path = tmp_path / "c.yaml"
    path.write_text("target: sagemaker\ntargets:\n  sagemaker:\n    region: eu-west-1\n")
    settings = load(path)
    assert settings.target == "aws"
    assert settings.target_settings("aws") == {"region": "eu-west-1"}


def test_default_target_is_local():
    assert load(None).target == "local"


def test_config_from_env_var_and_default_file(config: Path, monkeypatch: pytest.MonkeyPatch):
    assert load(None, {"CLOUDSERVE_CONFIG": str(config)}).project.model == "from-file"
    monkeypatch.chdir(config.parent)
    assert load(None).config_path == Path("cloudserve.yaml")


def test_explicit_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")


def test_unknown_top_level_key(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("model: m\nexprot: ./x\n")
    with pytest.raises(ConfigError, match=r"exprot: unknown setting"):
        load(path)


def test_invalid_yaml(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(path)


def test_target_setting_errors_name_the_field_path_and_allowed_values():
    settings = load(None, sets=["targets.fake.serverless.memory_mb=4000", "targets.fake.regoin=x"])
    with pytest.raises(ConfigError) as info:
        settings.adapter_config(FakeAdapter)
    message = info.value.message
    assert "targets.fake.serverless.memory_mb: Input should be 1024, 2048 or 3072" in message
    assert "targets.fake.regoin: unknown setting" in message
    assert info.value.exit_code == 2


def test_secrets_are_not_echoed_in_errors():
    settings = load(None, sets=["targets.fake.api_token=[1, 2]"])
    with pytest.raises(ConfigError) as info:
        settings.adapter_config(FakeAdapter)
    assert "targets.fake.api_token" in info.value.message
    assert "[1, 2]" not in info.value.message


def test_numbers_are_accepted_where_strings_are_expected():
    settings = load(None, sets=["targets.fake.project=12345", "version=3"])
    assert settings.adapter_config(FakeAdapter).project == "12345"
    assert settings.project.version == "3"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("2048", 2048),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ("ml.m5.large", "ml.m5.large"),
        ("0123", "0123"),
    ],
)
def test_parse_value(raw: str, value: object):
    assert spec.parse_value(raw) == value


@pytest.mark.parametrize("item", ["no-equals", "=value", "a..b=1"])
def test_malformed_set(item: str):
    with pytest.raises(ConfigError, match="dotted.path=value"):
        load(None, sets=[item])


def test_set_through_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="holds a value"):
        load(None, sets=["model=m", "model.x=1"])


def test_retired_and_unknown_targets():
    with pytest.raises(NotSupported, match="shut down"):
        _ = load(None, target="ml-v1").target
    with pytest.raises(ConfigError, match="unknown target"):
        _ = load(None, target="heroku").target


def test_require_model_and_export_say_where_to_set_them():
    settings = load(None)
    with pytest.raises(ConfigError, match="no model name") as info:
        settings.require_model()
    assert "--model" in info.value.hint
    with pytest.raises(ConfigError, match="no export path"):
        settings.require_export()


def test_version_resolution(export_v1):
    assert load(None, model="m").deploy_spec(export_v1).version == "123"
    assert load(None, model="m", version="7").deploy_spec(export_v1).version == "7"
