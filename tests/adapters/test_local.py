"""The local target: repository, config file, runtime process, and the adapter contract.

The contract tests run against the real runtime (``python -m cloudserve_runtime``), one
process for the whole module: each test's ``adapter`` starts from an empty repository
because the previous test's models are deleted through the adapter. Process tests use
``local_fake_runtime.py``, which starts in well under a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2
from typer.testing import CliRunner

from cloudserve.cli.main import app
from cloudserve.errors import (
    ConfigError,
    MissingDependency,
    NotFound,
    PreflightError,
    ProviderError,
)
from cloudserve.export import inspect
from cloudserve.records import DeploySpec, ExportInfo
from cloudserve_adapters.local import model_config
from cloudserve_adapters.local.adapter import LocalAdapter, LocalClients
from cloudserve_adapters.local.config import BatchingParameters, LocalConfig
from cloudserve_adapters.local.model_config import ModelEntry, ServedModels
from cloudserve_adapters.local.repository import Repository, check_names, tree_digest
from cloudserve_adapters.local.runtime_client import (
    decode_reload_response,
    encode_reload_request,
)
from cloudserve_adapters.local.runtime_process import RuntimeProcess, process_alive
from tests.adapters.contract import ANSWERS, PAYLOAD, AdapterContract, predictions

FAKE_RUNTIME = Path(__file__).with_name("local_fake_runtime.py")


def fake_command(mode: str = "serve") -> tuple[str, ...]:
    return (sys.executable, str(FAKE_RUNTIME), "--mode", mode)


def fake_runtime(root: Path, mode: str = "serve", **settings) -> RuntimeProcess:
    config = LocalConfig(repository=root, startup_timeout_s=20, **settings)
    return RuntimeProcess(Repository(root), config, fake_command(mode))


def files_under(path: Path) -> list[str]:
    if not path.is_dir():
        return []
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the contract


@pytest.fixture(scope="module")
def shared_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConfig]:
    """One repository (and so one runtime) for the module; the runtime stops at the end."""
    config = LocalConfig(repository=tmp_path_factory.mktemp("local") / "repo")
    yield config
    RuntimeProcess(Repository(config.repository), config).stop()


class TestLocalContract(AdapterContract):
    target = "local"

    @pytest.fixture
    def adapter(self, shared_config: LocalConfig) -> Iterator[LocalAdapter]:
        adapter = LocalAdapter(shared_config)
        yield adapter
        for model in adapter.model_names():
            adapter.delete(model)
        for model in adapter.repository.models_on_disk():
            adapter.delete(model)
        adapter.repository.state_file.unlink(missing_ok=True)

    def stored_objects(self, adapter: LocalAdapter) -> list[str]:
        return files_under(adapter.repository.models_dir)

    def test_runtime_keeps_running_between_commands(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        again = LocalAdapter(adapter.config)  # a later CLI command finds the same runtime
        assert again.runtime.running() == adapter.runtime.running()
        assert again.predict(self.model, {"instances": [[1.0]]})["predictions"] == [[2.5]]

    def test_deleted_version_leaves_disk_and_config(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        assert adapter.delete(self.model, "2") == [f"{self.model}/2"]
        assert adapter.repository.versions_on_disk(self.model) == ["1"]
        entry = model_config.read(adapter.repository.config_file).get(self.model)
        assert entry is not None and entry.versions == (1,)

    def test_version_directories_follow_tf_serving_layout(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        version_dir = adapter.repository.models_dir / self.model / "1"
        assert (version_dir / "saved_model.pb").is_file()
        assert tree_digest(version_dir) == tree_digest(export_v1.path)
        assert files_under(adapter.repository.staging_dir) == []

    def test_runtime_errors_carry_its_text_and_status(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        with pytest.raises(ProviderError, match="No values in 'instances' array") as caught:
            adapter.predict(self.model, {"instances": []})
        assert caught.value.http_status == 400
        with pytest.raises(NotFound, match="Servable not found"):
            adapter.predict(self.model, PAYLOAD, version="9")
        with pytest.raises(NotFound):
            adapter.predict("no-such-model", PAYLOAD)

    def test_version_that_fails_to_load_is_withdrawn(self, adapter, export_v1, tmp_path):
        broken = tmp_path / "broken"
        shutil.copytree(export_v1.path, broken)
        for shard in (broken / "variables").glob("variables.data-*"):
            shard.write_bytes(b"not a tensor bundle")
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        with pytest.raises(ProviderError, match="removed from the repository again"):
            adapter.deploy(self.spec(inspect(broken), "2"), inspect(broken), timeout=120)
        assert [v.version for v in adapter.list_versions(self.model)] == ["1"]
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]

    def test_deploy_without_wait_then_serves(self, adapter, export_v1):
        record = adapter.deploy(self.spec(export_v1, "1"), export_v1, wait=False, timeout=120)
        assert record.is_default and record.state in ("CREATING", "AVAILABLE")
        assert adapter.set_default(self.model, "1", timeout=120).state == "AVAILABLE"

    def test_predict_restarts_a_stopped_runtime(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        assert adapter.runtime.stop()
        (listed,) = adapter.list_versions(self.model)
        assert (listed.state, listed.is_default) == ("UNKNOWN", True)
        assert "not running" in listed.message
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]
        assert adapter.list_versions(self.model)[0].state == "AVAILABLE"


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("model", ["Not a valid name!", "../escape", "", ".hidden", "a/b"])
def test_bad_model_names_are_refused(model: str) -> None:
    with pytest.raises(ConfigError):
        check_names(model)


@pytest.mark.parametrize("version", ["0", "-1", "abc", "1.5", "", "٣"])
def test_versions_must_be_positive_integers(version: str) -> None:
    with pytest.raises(ConfigError):
        check_names("model", version)


def test_bad_input_is_refused_before_the_repository_exists(
    tmp_path: Path, export_v1: ExportInfo
) -> None:
    adapter = LocalAdapter(LocalConfig(repository=tmp_path / "repo"))
    spec = DeploySpec(model="m", export=export_v1.path, version="zero", target="local")
    with pytest.raises(PreflightError, match="positive integer"):
        adapter.deploy(spec, export_v1)
    assert not (tmp_path / "repo").exists()


# --------------------------------------------------------------------------- repository


def test_copy_is_never_visible_half_done(tmp_path: Path, export_v1: ExportInfo) -> None:
    repository = Repository(tmp_path / "repo")
    target = repository.version_dir("m", "1")
    seen_during_copy = []

    repository.install_version(
        export_v1.path, "m", "1", lambda _done: seen_during_copy.append(target.exists())
    )
    assert seen_during_copy and not any(seen_during_copy)
    assert files_under(target) == list(export_v1.files)
    assert tree_digest(target) == tree_digest(export_v1.path)
    assert files_under(repository.staging_dir) == []


def test_failed_copy_leaves_nothing(tmp_path: Path, export_v1: ExportInfo) -> None:
    repository = Repository(tmp_path / "repo")

    def fail(_done: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        repository.install_version(export_v1.path, "m", "1", fail)
    assert repository.versions_on_disk("m") == []
    assert files_under(repository.staging_dir) == []


def test_existing_version_is_not_overwritten(tmp_path: Path, export_v1: ExportInfo) -> None:
    repository = Repository(tmp_path / "repo")
    repository.install_version(export_v1.path, "m", "1")
    with pytest.raises(ConfigError, match="already exists"):
        repository.install_version(export_v1.path, "m", "1")


def test_digest_sees_content_and_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    before = tree_digest(tmp_path / "a")
    (tmp_path / "a" / "x").write_bytes(b"2")
    changed = tree_digest(tmp_path / "a")
    (tmp_path / "a" / "x").rename(tmp_path / "a" / "y")
    assert len({before, changed, tree_digest(tmp_path / "a")}) == 3


def test_default_history_round_trips(tmp_path: Path) -> None:
    repository = Repository(tmp_path / "repo")
    repository.set_default_history("m", ["1", "2"])
    assert repository.default_history("m") == ["1", "2"]
    repository.set_default_history("m", [])
    assert json.loads(repository.state_file.read_text()) == {"models": {}}


# --------------------------------------------------------------------------- config file


def test_config_text_parses_as_tf_serving_config(tmp_path: Path) -> None:
    served = ServedModels(
        (
            ModelEntry("a", "/repo/models/a", (1, 3), default=3),
            ModelEntry("b.c", "/repo/models/b.c", (7,), default=None, other_labels={"x": 7}),
        )
    )
    model_config.write(tmp_path / "models.config", served)
    parsed = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((tmp_path / "models.config").read_text(), parsed)
    first, second = parsed.model_config_list.config
    assert (first.name, first.base_path, first.model_platform) == (
        "a",
        "/repo/models/a",
        "tensorflow",
    )
    assert list(first.model_version_policy.specific.versions) == [1, 3]
    assert dict(first.version_labels) == {"default": 3}
    assert dict(second.version_labels) == {"x": 7}
    assert model_config.read(tmp_path / "models.config") == served


def test_missing_config_file_means_no_models(tmp_path: Path) -> None:
    assert model_config.read(tmp_path / "none.config") == ServedModels()


def test_no_models_is_still_a_model_config_list() -> None:
    assert ServedModels().to_proto().WhichOneof("config") == "model_config_list"


def test_unparsable_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "models.config").write_text("model_config_list { config { nme: 1 } }")
    with pytest.raises(ConfigError, match="cannot parse"):
        model_config.read(tmp_path / "models.config")


def test_reload_messages_match_the_tf_serving_protos() -> None:
    from tensorflow_serving.apis import model_management_pb2

    config = ServedModels((ModelEntry("a", "/m/a", (1, 2), default=1),)).to_proto()
    request = model_management_pb2.ReloadConfigRequest.FromString(
        encode_reload_request(config.SerializeToString())
    )
    assert request.config == config
    response = model_management_pb2.ReloadConfigResponse()
    response.status.error_code = 9
    response.status.error_message = "Request to assign label to version 2 of model a"
    assert decode_reload_response(response.SerializeToString()) == (
        9,
        response.status.error_message,
    )
    assert decode_reload_response(b"") == (0, "")


def test_batching_parameters(tmp_path: Path) -> None:
    params = BatchingParameters(max_batch_size=64, allowed_batch_sizes=[8, 64])
    assert params.to_text_proto() == (
        "max_batch_size { value: 64 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 64\n"
    )
    with pytest.raises(ValueError, match="must equal max_batch_size"):
        BatchingParameters(max_batch_size=64, allowed_batch_sizes=[8, 32])
    with pytest.raises(ValueError, match="enable_batching"):
        LocalConfig(enable_batching=False, batching=params)
    runtime = fake_runtime(tmp_path, batching=params)
    assert "--batching_parameters_file" in runtime.argv(1, 2)


# --------------------------------------------------------------------------- the runtime process


def test_start_records_pid_and_ports_and_stop_ends_the_process(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    info = runtime.ensure_running()
    try:
        assert info.pid and info.grpc_port and info.rest_port and info.grpc_port != info.rest_port
        assert runtime.running() == info
        assert runtime.ensure_running() == info  # idempotent: no second process
        recorded = json.loads((tmp_path / "runtime.json").read_text())
        assert (recorded["pid"], recorded["rest_port"]) == (info.pid, info.rest_port)
    finally:
        assert runtime.stop()
    assert not process_alive(info.pid)
    assert runtime.running() is None
    assert not runtime.stop()  # idempotent
    again = runtime.ensure_running()  # the ports are remembered
    try:
        assert (again.grpc_port, again.rest_port) == (info.grpc_port, info.rest_port)
    finally:
        runtime.stop()


def test_stale_pid_file_is_detected_and_replaced(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, argv in ((gone.pid, []), (os.getpid(), list(fake_command()))):
        (tmp_path / "runtime.json").write_text(
            json.dumps(
                {"pid": pid, "host": "127.0.0.1", "grpc_port": 0, "rest_port": 0, "argv": argv}
            )
        )
        assert runtime.running() is None  # dead pid, or a live pid running something else
    info = runtime.ensure_running()
    try:
        assert info.pid not in (gone.pid, os.getpid())
        assert runtime.running() == info
    finally:
        runtime.stop()


def test_stop_kills_a_runtime_that_ignores_sigterm(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, mode="ignore-term")
    info = runtime.ensure_running()
    assert runtime.stop(grace_s=0.5)
    assert not process_alive(info.pid)


def test_settings_change_restarts_the_runtime(tmp_path: Path) -> None:
    first = fake_runtime(tmp_path).ensure_running()
    changed = fake_runtime(tmp_path, enable_batching=False)
    try:
        second = changed.ensure_running()
        assert second.pid != first.pid and not process_alive(first.pid)
        assert "--enable_batching" not in second.argv
    finally:
        changed.stop()


def test_start_failure_shows_the_end_of_the_log(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, mode="crash")
    with pytest.raises(ProviderError) as caught:
        runtime.ensure_running()
    assert "exit code 3" in caught.value.message
    assert "something is wrong with the flags" in caught.value.message
    assert runtime.running() is None


def test_missing_runtime_dependency_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(MissingDependency) as caught:
        fake_runtime(tmp_path, mode="missing-module").ensure_running()
    assert caught.value.message == "tensorflow is not installed"
    assert caught.value.hint == "pip install 'cloudserve[runtime]'"


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} .* taken"):
            fake_runtime(tmp_path, rest_port=port).ensure_running()


# --------------------------------------------------------------------------- cli


def _cli(tmp_path: Path, *args: str, json_output: bool = False):
    """``cloudserve [-o json] local --repository TMP ARGS`` through the root command."""
    adapter_config = LocalConfig(repository=tmp_path, startup_timeout_s=20)
    adapter = LocalAdapter(adapter_config, clients=LocalClients(fake_command()))
    root = ["-o", "json"] if json_output else []
    result = CliRunner().invoke(app, [*root, "local", "--repository", str(tmp_path), *args])
    return adapter, result


def test_cli_stop_leaves_no_process(tmp_path: Path) -> None:
    adapter, _ = _cli(tmp_path, "status")
    info = adapter.runtime.ensure_running()
    _, result = _cli(tmp_path, "stop")
    assert result.exit_code == 0, result.output
    assert f"runtime stopped (pid {info.pid})" in result.output
    assert not process_alive(info.pid)
    _, result = _cli(tmp_path, "stop", json_output=True)
    assert json.loads(result.stdout) == {"ok": True, "stopped": False, "pid": None}


def test_cli_status_and_logs(tmp_path: Path) -> None:
    adapter, _ = _cli(tmp_path, "status")
    info = adapter.runtime.ensure_running()
    try:
        _, result = _cli(tmp_path, "status", json_output=True)
        assert result.exit_code == 0, result.output
        status = json.loads(result.stdout)
        assert (status["running"], status["pid"], status["rest_port"]) == (
            True,
            info.pid,
            info.rest_port,
        )
        assert status["models"] == {}
        _, result = _cli(tmp_path, "logs", "-n", "5")
        assert "fake runtime serving" in result.output
    finally:
        adapter.runtime.stop()
    _, result = _cli(tmp_path, "status")
    assert "runtime: stopped" in result.output
