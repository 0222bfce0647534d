"""The ``local`` target: a TF Serving model repository served by cloudserve's own runtime.

* deploy copies the export into ``<repository>/models/<model>/<version>`` (atomically),
  lists the version in the model config file and hands the runtime the new config over
  gRPC (``HandleReloadConfigRequest``), then waits on the REST status route until the
  version is AVAILABLE.
* the default version is the version label ``default``; cloudserve's runtime sends
  requests that name no version to it. Moving a label needs the target version loaded
  (TF Serving's rule), so a version is always loaded first and labelled second.
* ``state.json`` keeps each model's earlier defaults, for ``rollback``.

Every change happens under the repository's lock, so two cloudserve commands never
interleave their edits of the config file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudserve.adapter import Adapter, Feature
from cloudserve.errors import CloudserveError, ConfigError, DeployTimeout, NotFound, ProviderError
from cloudserve.progress import Progress
from cloudserve.records import (
    DeploySpec,
    ExportInfo,
    Finding,
    Plan,
    PlanAction,
    VersionRecord,
    VersionState,
)
from cloudserve.waiting import Deadline
from cloudserve_adapters.local import model_config
from cloudserve_adapters.local.config import LocalConfig
from cloudserve_adapters.local.model_config import ModelEntry, ServedModels
from cloudserve_adapters.local.repository import (
    Repository,
    check_names,
    model_name_problem,
    tree_digest,
    version_problem,
    write_atomic,
)
from cloudserve_adapters.local.runtime_process import DEFAULT_COMMAND, RuntimeInfo, RuntimeProcess

POLL_S = 0.1
#: TF Serving's model repository layout (model names, numeric version directories)
SERVING_CONFIG_DOC = "https://www.tensorflow.org/tfx/serving/serving_config"
#: runtime ModelVersionStatus states -> cloudserve version states
_STATES: dict[str, VersionState] = {
    "AVAILABLE": "AVAILABLE",
    "START": "CREATING",
    "LOADING": "CREATING",
    "UNLOADING": "DELETING",
}


@dataclass(frozen=True)
class LocalClients:
    """The seam tests use: how the runtime process is launched.

    Attributes:
        runtime_command: the program (and leading arguments) to which the server flags
            are appended; default ``python -m cloudserve_runtime``.
    """

    runtime_command: tuple[str, ...] = DEFAULT_COMMAND


class LocalAdapter(Adapter):
    """Deploys to a local model repository served by a background cloudserve runtime.

    Args:
        config: a :class:`LocalConfig`.
        clients: a :class:`LocalClients` (default: the installed runtime).
        progress: where copies and waits report.
    """

    name = "local"
    config_class = LocalConfig
    extra = "runtime"
    required_signature = None  # the runtime serves any signature by name

    def __init__(
        self,
        config: LocalConfig,
        *,
        clients: LocalClients | None = None,
        progress: Progress | None = None,
    ):
        super().__init__(config, clients=clients or LocalClients(), progress=progress)
        self.config: LocalConfig = config
        self.repository = Repository(config.repository)
        self.runtime = RuntimeProcess(self.repository, config, self.clients.runtime_command)

    # ------------------------------------------------------------------ checks and plan

    def preflight(self, spec: DeploySpec, export: ExportInfo) -> list[Finding]:
        """Model name and version must be valid directory names for TF Serving."""
        findings = []
        if problem := model_name_problem(spec.model):
            findings.append(
                Finding(
                    "local.model_name",
                    "error",
                    problem,
                    fix="choose another model name",
                    source=SERVING_CONFIG_DOC,
                )
            )
        if problem := version_problem(spec.version):
            findings.append(
                Finding(
                    "local.version",
                    "error",
                    problem,
                    fix="deploy with --version N, N ≥ 1",
                    source=SERVING_CONFIG_DOC,
                )
            )
        return findings

    def plan(self, spec: DeploySpec, export: ExportInfo) -> Plan:
        """What deploy would do, read from the repository. Starts and writes nothing.

        Raises ConfigError when the version already exists with different content.
        """
        check_names(spec.model, spec.version)
        if spec.traffic:
            self.require(Feature.TRAFFIC_SPLIT)
        model, number = spec.model, int(spec.version)
        entry = self._served().get(model)
        version_dir = self.repository.version_dir(model, spec.version)
        actions = []
        if entry is None:
            actions.append(
                PlanAction("create", "local-model", model, f"base path {version_dir.parent}")
            )
        if self._same_content_deployed(export, model, spec.version):
            actions.append(PlanAction("skip", "local-version", f"{model}/{number}", "same content"))
        else:
            actions.append(
                PlanAction(
                    "upload",
                    "local-version",
                    f"{model}/{number}",
                    f"copy {export.path} ({export.total_bytes} bytes) to {version_dir}",
                )
            )
        if entry is None or number not in entry.versions:
            actions.append(
                PlanAction(
                    "update",
                    "model-config",
                    str(self.repository.config_file),
                    f"serve version {number}",
                )
            )
        default = entry.default if entry else None
        if default is None or (spec.set_default and default != number):
            actions.append(
                PlanAction("route", "version-label", f"{model}/default", f"{default} -> {number}")
            )
        if self.runtime.running() is None:
            actions.append(
                PlanAction("create", "local-runtime", str(self.repository.root), "start it")
            )
        return Plan(self.name, model, str(number), tuple(actions))

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, spec: DeploySpec, export: ExportInfo, *, wait: bool = True, timeout: float = 1800.0
    ) -> VersionRecord:
        """Copy the export in, load it in the runtime (starting it if needed), label it.

        Idempotent (same content as the same version: ``changed=False``); different
        content under an existing version raises ConfigError before anything changes.
        The version becomes the default if ``spec.set_default`` or the model has none;
        moving an existing default needs the version loaded, so that waits even when
        ``wait`` is false. Raises PreflightError for bad input (nothing written),
        ProviderError when the runtime rejects or fails to load the version (a version
        this call added is then removed again, so the previous state keeps serving), and
        DeployTimeout after ``timeout`` seconds (the version stays, still loading).
        """
        self.ensure_deployable(spec, export)
        if spec.traffic:
            self.require(Feature.TRAFFIC_SPLIT)
        model, version = spec.model, str(int(spec.version))
        number = int(version)
        deadline = Deadline(timeout)
        with self.repository.locked():
            changed = not self._same_content_deployed(export, model, version)
            if changed:
                self.progress.status(f"copying {export.path} into the local repository")
                self.repository.install_version(
                    export.path,
                    model,
                    version,
                    lambda done: self.progress.transfer(
                        f"{model}/{version}", done, export.total_bytes
                    ),
                )
            runtime = self.runtime.ensure_running(self.progress)
            served = self._served()
            entry = served.get(model) or ModelEntry(model, str(self.repository.model_dir(model)))
            wanted = entry.with_version(number)
            if wanted.default is None:
                wanted = wanted.with_default(number)
            move_default = spec.set_default and wanted.default != number
            try:
                if wanted != entry:
                    self._apply(served.put(wanted), deadline)
                    changed = True
                if wait or move_default:
                    self._wait_available(runtime, model, version, deadline)
            except ProviderError as e:
                if number in entry.versions:
                    raise
                self._withdraw(served, model, version)
                raise ProviderError(
                    f"{e.message}\nversion {number} was removed from the repository again; "
                    "what served before keeps serving",
                    hint=e.hint,
                    http_status=e.http_status,
                    provider=self.name,
                ) from e
            if move_default:
                self._move_default_or_explain(runtime, wanted, number, deadline, remember=True)
                changed = True
            return self._record(model, number, runtime, changed=changed)

    def _withdraw(self, previous: ServedModels, model: str, version: str) -> None:
        """Undo a deploy whose version failed to load: old config back, files gone."""
        self._apply(previous, self._unload_deadline())
        self.repository.remove_tree(self.repository.version_dir(model, version))
        if previous.get(model) is None and not self.repository.versions_on_disk(model):
            self.repository.remove_tree(self.repository.model_dir(model))

    def _same_content_deployed(self, export: ExportInfo, model: str, version: str) -> bool:
        """True if the version directory holds exactly the export; False if it is absent.

        Raises ConfigError when it holds something else.
        """
        version_dir = self.repository.version_dir(model, version)
        if not version_dir.exists():
            return False
        if tree_digest(version_dir) == tree_digest(export.path):
            return True
        raise ConfigError(
            f"version {int(version)} of model '{model}' already exists with different content",
            hint="deploy the new export as a new version number",
            provider=self.name,
        )

    # ------------------------------------------------------------------ default version

    def set_default(self, model: str, version: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Point the ``default`` label at ``version`` once it is AVAILABLE.

        Idempotent. Records the previous default for :meth:`rollback`. Raises NotFound for
        an unknown model or version; on failure the previous default keeps serving.
        """
        check_names(model, version)
        number = int(version)
        deadline = Deadline(timeout)
        with self.repository.locked():
            entry = self._entry(model)
            if number not in entry.versions:
                raise NotFound(
                    f"model '{model}' has no version {number}",
                    hint=f"its versions: {', '.join(map(str, entry.versions)) or 'none'}",
                    provider=self.name,
                )
            runtime = self.runtime.ensure_running(self.progress)
            self._wait_available(runtime, model, str(number), deadline)
            changed = entry.default != number
            if changed:
                self._move_default_or_explain(runtime, entry, number, deadline, remember=True)
            return self._record(model, number, runtime, changed=changed)

    def rollback(self, model: str, *, timeout: float = 1800.0) -> VersionRecord:
        """Make the previous default the default again (versions deleted since are skipped).

        Raises NotFound for an unknown model or when there is no earlier default.
        """
        check_names(model)
        deadline = Deadline(timeout)
        with self.repository.locked():
            entry = self._entry(model)
            history = self.repository.default_history(model)
            while history and (
                int(history[-1]) not in entry.versions or int(history[-1]) == entry.default
            ):
                history.pop()
            if not history:
                raise NotFound(
                    f"model '{model}' has no earlier default version to roll back to",
                    provider=self.name,
                )
            number = int(history.pop())
            runtime = self.runtime.ensure_running(self.progress)
            self._wait_available(runtime, model, str(number), deadline)
            self._move_default_or_explain(runtime, entry, number, deadline, remember=False)
            self.repository.set_default_history(model, history)
            return self._record(model, number, runtime, changed=True)

    def _move_default_or_explain(
        self,
        runtime: RuntimeInfo,
        entry: ModelEntry,
        number: int,
        deadline: Deadline,
        *,
        remember: bool,
    ) -> None:
        """Move the label; on failure say that the previous default keeps serving."""
        served = self._served()
        try:
            self._apply(served.put(entry.with_default(number)), deadline)
        except CloudserveError as e:
            raise ProviderError(
                f"version {number} of '{entry.name}' did not become the default "
                f"(version {entry.default} keeps serving): {e.message}",
                hint=e.hint,
                provider=self.name,
            ) from e
        if remember and entry.default is not None:
            history = self.repository.default_history(entry.name)
            self.repository.set_default_history(entry.name, [*history, str(entry.default)])

    # ------------------------------------------------------------------ reading

    def list_versions(self, model: str) -> list[VersionRecord]:
        """Versions in the model config or the repository, newest first.

        States come from the runtime when it runs (UNKNOWN otherwise). Raises NotFound
        when the model is in neither. Starts nothing.
        """
        check_names(model)
        entry = self._served().get(model)
        on_disk = {int(v) for v in self.repository.versions_on_disk(model)}
        if entry is None and not on_disk:
            raise NotFound(f"no model '{model}' on the local target", provider=self.name)
        runtime = self.runtime.running()
        numbers = sorted(on_disk | set(entry.versions if entry else ()), reverse=True)
        statuses = self._statuses(runtime, model)
        return [self._record(model, n, runtime, statuses=statuses, changed=False) for n in numbers]

    def predict(
        self, model: str, payload: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """POST to the runtime's ``/v1/models/<model>[/versions/<v>]:predict``.

        Starts the runtime if it is not running. Raises NotFound for an unknown model (or
        the runtime's 404) and ProviderError with the runtime's error text otherwise.
        """
        check_names(model, version)
        self._entry(model)
        runtime = self.runtime.running()
        if runtime is None:
            with self.repository.locked():
                runtime = self.runtime.ensure_running(self.progress)
        client = runtime.client()
        try:
            return client.predict(model, payload, str(int(version)) if version else None)
        finally:
            client.close()

    def version_logs(self, model: str, version: str, *, lines: int = 50) -> list[str]:
        """The last ``lines`` lines of the runtime's log (``runtime.log``), oldest first.

        The runtime logs every model and version into that one file, so these are its last
        lines, whatever they concern. ``[]`` when there is no log yet; never raises.
        """
        try:
            return self.runtime.log_tail(lines).splitlines()
        except OSError:
            return []

    # ------------------------------------------------------------------ delete

    def delete(self, model: str, version: str | None = None) -> list[str]:
        """Unload and remove one version, or the whole model when ``version`` is None.

        Idempotent (``[]`` when already gone). Refuses (ConfigError) to delete the default
        while other versions remain; deleting the last version deletes the model. Blocks
        until the runtime has unloaded what is removed (DeployTimeout after
        ``unload_timeout_s``), then deletes the files.
        """
        check_names(model, version)
        with self.repository.locked():
            served = self._served()
            entry = served.get(model)
            on_disk = {int(v) for v in self.repository.versions_on_disk(model)}
            if version is None:
                return self._delete_model(served, model, on_disk)
            number = int(version)
            configured = set(entry.versions) if entry else set()
            if number not in configured | on_disk:
                return []
            others = (configured | on_disk) - {number}
            if not others:
                return self._delete_model(served, model, on_disk)
            if entry is not None and entry.default == number:
                raise ConfigError(
                    f"version {number} is the default of model '{model}' and other versions remain",
                    hint="make another version the default first, or delete the whole model",
                    provider=self.name,
                )
            if entry is not None and number in configured:
                self._apply(served.put(entry.without_version(number)), self._unload_deadline())
                self._wait_unloaded(model, {number})
            self.repository.remove_tree(self.repository.version_dir(model, version))
            history = self.repository.default_history(model)
            self.repository.set_default_history(model, [v for v in history if int(v) != number])
            return [f"{model}/{number}"]

    def _delete_model(self, served: ServedModels, model: str, on_disk: set[int]) -> list[str]:
        entry = served.get(model)
        model_dir = self.repository.model_dir(model)
        if entry is None and not model_dir.exists():
            return []
        if entry is not None:
            self._apply(served.remove(model), self._unload_deadline())
            self._wait_unloaded(model, set(entry.versions))
        self.repository.remove_tree(model_dir)
        self.repository.set_default_history(model, [])
        numbers = sorted(on_disk | set(entry.versions if entry else ()), reverse=True)
        return [*(f"{model}/{n}" for n in numbers), model]

    def _unload_deadline(self) -> Deadline:
        return Deadline(self.config.unload_timeout_s)

    # ------------------------------------------------------------------ runtime plumbing

    def model_names(self) -> list[str]:
        """Models in the model config, in file order. Reads the file only."""
        return [m.name for m in self._served().models]

    def _served(self) -> ServedModels:
        return model_config.read(self.repository.config_file)

    def _entry(self, model: str) -> ModelEntry:
        entry = self._served().get(model)
        if entry is None:
            raise NotFound(f"no model '{model}' on the local target", provider=self.name)
        return entry

    def _apply(self, served: ServedModels, deadline: Deadline) -> None:
        """Write the config file, then hand it to the runtime if one runs.

        If the runtime rejects it, the previous file is restored (and handed back) before
        the error propagates, so the runtime keeps serving what it served.
        """
        config_file = self.repository.config_file
        previous = config_file.read_text(encoding="utf-8") if config_file.exists() else None
        model_config.write(config_file, served)
        runtime = self.runtime.running()
        if runtime is None:
            return
        client = runtime.client()
        try:
            new = served.to_proto().SerializeToString()
            client.reload_config(new, timeout=deadline.remaining())
        except CloudserveError:
            if previous is not None:
                write_atomic(config_file, previous)
                try:
                    old = ServedModels.from_text(previous).to_proto().SerializeToString()
                    client.reload_config(old, timeout=deadline.remaining())
                except CloudserveError:
                    pass  # the runtime's config-file poll picks the restored file up
            raise
        finally:
            client.close()

    def _wait_available(
        self, runtime: RuntimeInfo, model: str, version: str, deadline: Deadline
    ) -> None:
        """Poll the runtime's status route until ``version`` is AVAILABLE.

        Raises ProviderError when its load failed, DeployTimeout when the deadline passes.
        """
        client = runtime.client()
        last = None
        try:
            while True:
                status = client.model_status(model, version).get(version)
                state = status["state"] if status else "START"
                if state == "AVAILABLE":
                    return
                if state == "END" and status and status["error_code"] != "OK":
                    raise ProviderError(
                        f"version {version} of '{model}' failed to load: "
                        f"{status['error_message'] or status['error_code']}",
                        hint="see `cloudserve local logs`",
                        provider=self.name,
                    )
                if state != last:
                    self.progress.status(f"waiting for '{model}' version {version}: {state}")
                    last = state
                if deadline.expired():
                    raise DeployTimeout(
                        f"version {version} of '{model}' was not AVAILABLE after "
                        f"{deadline.timeout:g} s (state {state})",
                        hint="raise --timeout, or see `cloudserve local logs`",
                        provider=self.name,
                    )
                time.sleep(POLL_S)
        finally:
            client.close()

    def _wait_unloaded(self, model: str, numbers: set[int]) -> None:
        """Poll until the runtime serves none of ``numbers`` (no-op when it is not running)."""
        runtime = self.runtime.running()
        if runtime is None or not numbers:
            return
        deadline = self._unload_deadline()
        client = runtime.client()
        try:
            while True:
                statuses = client.model_status(model)
                busy = sorted(
                    n for n in numbers if statuses.get(str(n), {}).get("state", "END") != "END"
                )
                if not busy:
                    return
                if deadline.expired():
                    raise DeployTimeout(
                        f"the local runtime did not unload '{model}' version(s) "
                        f"{', '.join(map(str, busy))} within {deadline.timeout:g} s",
                        hint="raise unload_timeout_s; nothing was deleted from disk",
                        provider=self.name,
                    )
                self.progress.status(f"waiting for the runtime to unload '{model}' {busy}")
                time.sleep(POLL_S)
        finally:
            client.close()

    def _statuses(self, runtime: RuntimeInfo | None, model: str) -> dict[str, dict[str, Any]]:
        if runtime is None:
            return {}
        client = runtime.client()
        try:
            return client.model_status(model)
        finally:
            client.close()

    def _record(
        self,
        model: str,
        number: int,
        runtime: RuntimeInfo | None,
        *,
        changed: bool = True,
        statuses: dict[str, dict[str, Any]] | None = None,
    ) -> VersionRecord:
        """The VersionRecord of one version, its state read from the runtime."""
        entry = self._served().get(model)
        if statuses is None:
            statuses = self._statuses(runtime, model)
        status = statuses.get(str(number))
        state, message = self._state(entry, number, runtime, status)
        version_dir = self.repository.version_dir(model, str(number))
        created = None
        if version_dir.exists():
            mtime = version_dir.stat().st_mtime
            created = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
        is_default = entry is not None and entry.default == number
        resources = {"version_dir": str(version_dir), "config": str(self.repository.config_file)}
        if runtime is not None:
            resources["rest_url"] = f"http://{runtime.host}:{runtime.rest_port}"
        return VersionRecord(
            model=model,
            version=str(number),
            state=state,
            is_default=is_default,
            traffic=100 if is_default else 0,
            artifact_uri=str(version_dir),
            created=created,
            changed=changed,
            resources=resources,
            message=message,
        )

    @staticmethod
    def _state(
        entry: ModelEntry | None,
        number: int,
        runtime: RuntimeInfo | None,
        status: dict[str, Any] | None,
    ) -> tuple[VersionState, str]:
        if entry is None or number not in entry.versions:
            return "UNKNOWN", "in the repository but not in the model config: deploy it again"
        if runtime is None:
            return "UNKNOWN", "the local runtime is not running"
        if status is None:
            return "CREATING", "the runtime has not picked the version up yet"
        if status["state"] == "END":
            if status["error_code"] != "OK":
                return "FAILED", status["error_message"] or status["error_code"]
            return "UNKNOWN", "the runtime has unloaded this version"
        return _STATES.get(status["state"], "UNKNOWN"), ""
