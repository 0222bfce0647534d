"""The model manager: versions on disk -> loaded servables, labels, status, reloads.

Behaviour (TF Serving's, spec §4, plus one cloudserve extension):

* Each configured model's base path is polled every ``file_system_poll_wait_s`` seconds (0 or
  less: once). The version policy (latest N / all / specific) picks the *aspired* versions.
* An aspired version is loaded once its directory is stable (see :mod:`cloudserve_runtime.storage`).
  Loads run in background threads, retried ``max_num_load_retries`` times
  ``load_retry_interval_s`` apart; a version that still fails is reported ``END`` with its error
  and is not retried until its directory changes. Other versions keep serving.
* Availability is preserved: a version that is no longer aspired is unloaded only once an aspired
  version is AVAILABLE, or when the base path lists no aspired version at all. An aspired version
  that fails to load (or is half-written) leaves the serving one in place; a base path that
  cannot be listed (permissions, out of file descriptors) keeps every loaded version and is
  logged.
* Unloading removes the version from the serving map first (new requests get 404), then waits for
  the requests holding it to finish, then closes it.
* Version states START / LOADING / AVAILABLE / UNLOADING / END are kept forever, also for models
  removed from the config.
* Labels follow ``--allow_version_labels_for_unavailable_models`` semantics. cloudserve extension:
  a request naming no version goes to the version labelled ``default`` when that label exists,
  else to the highest AVAILABLE version.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cloudserve_runtime import remote, storage
from cloudserve_runtime.errors import ServingError, as_serving_error, failed_precondition, not_found
from cloudserve_runtime.model_config import (
    ModelServerConfig,
    ModelSettings,
    models_from_config,
    read_config_file,
)

log = logging.getLogger("cloudserve_runtime.models")

DEFAULT_LABEL = "default"

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"

LoadFn = Callable[[str], Any]
UnloadHook = Callable[[str, int, Any], None]


@dataclass
class VersionStatus:
    """State of one model version, as GetModelStatus reports it."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class _LoadedVersion:
    """A loaded servable and the count of requests currently holding it."""

    __slots__ = ("model_name", "version", "path", "servable", "_cond", "_inflight", "_retired")

    def __init__(self, model_name: str, version: int, path: str, servable: Any) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.servable = servable
        self._cond = threading.Condition(threading.Lock())
        self._inflight = 0
        self._retired = False

    def try_acquire(self) -> bool:
        with self._cond:
            if self._retired:
                return False
            self._inflight += 1
            return True

    def add_ref(self) -> None:
        """Adds a holder; only valid while the caller already holds a reference."""
        with self._cond:
            self._inflight += 1

    def release(self) -> None:
        with self._cond:
            self._inflight -= 1
            if self._inflight == 0:
                self._cond.notify_all()

    def retire_and_wait(self) -> None:
        """Refuses new holders, then blocks until every current holder has released."""
        with self._cond:
            self._retired = True
            while self._inflight:
                self._cond.wait()


class ServableHandle:
    """A counted reference to a loaded version; release it (or use ``with``) when done."""

    __slots__ = ("model_name", "version", "servable", "_loaded", "_released")

    def __init__(self, loaded: _LoadedVersion) -> None:
        self.model_name = loaded.model_name
        self.version = loaded.version
        self.servable = loaded.servable
        self._loaded = loaded
        self._released = False

    def release(self) -> None:
        """Releases the reference; later calls do nothing."""
        if not self._released:
            self._released = True
            self._loaded.release()

    def retain(self) -> ServableHandle:
        """Returns a second handle on the same version (call while this one is held)."""
        self._loaded.add_ref()
        return ServableHandle(self._loaded)

    def __enter__(self) -> ServableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass(frozen=True)
class _ServingEntry:
    versions: dict[int, _LoadedVersion]
    labels: dict[str, int]
    latest: int | None


@dataclass
class _ModelRuntime:
    settings: ModelSettings
    configured: bool = True
    aspired: dict[int, str] = field(default_factory=dict)
    observed: dict[int, tuple[storage.Fingerprint | None, float]] = field(default_factory=dict)
    ready: dict[int, storage.Fingerprint] = field(default_factory=dict)
    loaded: dict[int, _LoadedVersion] = field(default_factory=dict)
    loading: set[int] = field(default_factory=set)
    unloading: set[int] = field(default_factory=set)
    failed: dict[int, tuple[str, storage.Fingerprint | None]] = field(default_factory=dict)
    next_poll: float = 0.0
    poll_error: str | None = None


def _load_error(exc: BaseException) -> ServingError:
    error = as_serving_error(exc)
    if error.code == "INTERNAL" and not isinstance(exc, ServingError):
        return ServingError("UNKNOWN", str(exc) or type(exc).__name__)
    return error


class ModelManager:
    """Loads, serves and unloads model versions; thread-safe.

    Args:
        load_fn: builds a servable from a version directory (blocking; raises on failure).
            The servable must have ``close()``.
        file_system_poll_wait_s: seconds between base-path polls; 0 or less polls once.
        allow_version_labels_for_unavailable_models: TF Serving's flag of the same name.
        max_num_load_retries: extra load attempts after a failure.
        load_retry_interval_s: pause between load attempts.
        on_unload: called as ``on_unload(model, version, servable)`` once no request holds the
            version any more, just before it is closed (e.g. to drain its batch queues).
    """

    def __init__(
        self, load_fn: LoadFn, *, file_system_poll_wait_s: float = 1.0,
        allow_version_labels_for_unavailable_models: bool = False,
        max_num_load_retries: int = 5, load_retry_interval_s: float = 60.0,
        on_unload: UnloadHook | None = None,
    ) -> None:
        self._load_fn = load_fn
        self._poll_wait_s = file_system_poll_wait_s
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._max_retries = max(0, max_num_load_retries)
        self._retry_interval_s = max(0.0, load_retry_interval_s)
        self._on_unload = on_unload
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._models: dict[str, _ModelRuntime] = {}
        self._statuses: dict[str, dict[int, VersionStatus]] = {}
        self._serving: dict[str, _ServingEntry] = {}
        self._jobs: set[threading.Thread] = set()
        self._config_file: str | None = None
        self._config_poll_s = 0.0
        self._config_text: str | None = None
        self._next_config_poll = math.inf
        self._thread: threading.Thread | None = None

    # ---- configuration -------------------------------------------------------------------

    def start(self, config: ModelServerConfig) -> None:
        """Applies the first config and starts the polling thread (returns at once).

        Raises:
            ServingError: INVALID_ARGUMENT for a bad config, FAILED_PRECONDITION for labels.
        """
        self.reload(config, wait=False)
        self._thread = threading.Thread(target=self._poll_loop, name="model-manager", daemon=True)
        self._thread.start()

    def watch_config_file(self, path: str, poll_wait_s: float) -> None:
        """Re-reads ``path`` every ``poll_wait_s`` seconds (if > 0) and reloads when it changed.

        A file that fails to parse or validate is logged and ignored; the old config stays.
        """
        with self._lock:
            self._config_file = path
            self._config_poll_s = poll_wait_s
            try:
                with open(path, encoding="utf-8") as handle:
                    self._config_text = handle.read()
            except OSError:
                self._config_text = None
            self._next_config_poll = time.monotonic() + poll_wait_s if poll_wait_s > 0 else math.inf

    def reload_from_file(self) -> None:
        """Reads the watched config file now and applies it (does not wait for loads).

        Raises:
            ServingError: when no file is watched, or the file is bad.
        """
        with self._lock:
            path = self._config_file
        if path is None:
            raise failed_precondition("No --model_config_file to reload from")
        self.reload(read_config_file(path), wait=False)

    def reload(
        self, config: ModelServerConfig, *, wait: bool = True, timeout: float | None = None
    ) -> None:
        """Replaces the served model set with ``config`` (TF Serving's ReloadConfig).

        Models absent from ``config`` are unloaded, new ones loaded, changed ones updated. Labels
        are checked against the versions AVAILABLE now, before anything changes.

        Args:
            config: a ModelServerConfig with a ``model_config_list``.
            wait: block until every model of ``config`` has an AVAILABLE version (or failed).
            timeout: seconds to wait at most (None: no limit).

        Raises:
            ServingError: INVALID_ARGUMENT (bad config), FAILED_PRECONDITION (label to an
                unavailable version), UNKNOWN (a model ended without any available version),
                DEADLINE_EXCEEDED (timeout), CANCELLED (manager closed).
        """
        models = models_from_config(config)
        with self._lock:
            self._check_labels(models)
            self._apply(models)
            self._publish()
        self._wake.set()
        if wait:
            self.wait_until_available([settings.name for settings in models], timeout)

    def _check_labels(self, models: list[ModelSettings]) -> None:
        for settings in models:
            runtime = self._models.get(settings.name)
            old_labels = runtime.settings.labels if runtime and runtime.configured else {}
            available = set(runtime.loaded) if runtime else set()
            for label, version in settings.labels.items():
                if version in available:
                    continue
                if self._allow_unavailable_labels and old_labels.get(label, version) == version:
                    continue
                raise failed_precondition(
                    f"Request to assign label to version {version} of model {settings.name}, "
                    "which is not currently available for inference"
                )

    def _apply(self, models: list[ModelSettings]) -> None:
        wanted = {settings.name: settings for settings in models}
        for name, runtime in self._models.items():
            if name not in wanted and runtime.configured:
                log.info("Model %s removed from the config; unloading its versions", name)
                runtime.configured = False
                runtime.aspired = {}
                runtime.ready.clear()
                runtime.observed.clear()
        for name, settings in wanted.items():
            runtime = self._models.get(name)
            if runtime is None:
                self._models[name] = _ModelRuntime(settings=settings)
                self._statuses.setdefault(name, {})
                continue
            if runtime.settings.base_path != settings.base_path or not runtime.configured:
                runtime.aspired = {}
                runtime.ready.clear()
                runtime.observed.clear()
                runtime.failed.clear()
            runtime.settings = settings
            runtime.configured = True
            runtime.next_poll = 0.0

    # ---- requests --------------------------------------------------------------------------

    def acquire(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> ServableHandle:
        """Returns a handle on the version a request resolves to.

        Resolution: an explicit version; else a label; else the ``default`` label if the model
        has one; else the highest AVAILABLE version.

        Raises:
            ServingError: NOT_FOUND ``Servable not found for request: Latest(M)`` /
                ``Specific(M, V)``; INVALID_ARGUMENT ``Unrecognized servable version label: L``.
        """
        for _ in range(8):
            entry = self._serving.get(name)
            wanted = version
            if wanted is None and label is not None:
                wanted = entry.labels.get(label) if entry else None
                if wanted is None:
                    raise ServingError(
                        "INVALID_ARGUMENT", f"Unrecognized servable version label: {label}"
                    )
            if wanted is None and entry is not None:
                wanted = entry.labels.get(DEFAULT_LABEL)
            if wanted is None:
                latest = entry.latest if entry is not None else None
                loaded = None if entry is None or latest is None else entry.versions[latest]
                if loaded is None:
                    raise not_found(f"Servable not found for request: Latest({name})")
            else:
                loaded = entry.versions.get(wanted) if entry else None
                if loaded is None:
                    raise not_found(f"Servable not found for request: Specific({name}, {wanted})")
            if loaded.try_acquire():
                return ServableHandle(loaded)
        raise not_found(f"Servable not found for request: Latest({name})")

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Returns the version states of ``name``, highest version first.

        Raises:
            ServingError: NOT_FOUND ``Could not find any versions of model M`` or
                ``Could not find version V of model M``.
        """
        with self._lock:
            statuses = self._statuses.get(name) or {}
            if version is not None:
                found = statuses.get(version)
                if found is None:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [VersionStatus(**vars(found))]
            if not statuses:
                raise not_found(f"Could not find any versions of model {name}")
            return [VersionStatus(**vars(s)) for _, s in sorted(statuses.items(), reverse=True)]

    def model_names(self) -> list[str]:
        """Names of the models in the current config."""
        with self._lock:
            return [name for name, runtime in self._models.items() if runtime.configured]

    def is_ready(self) -> bool:
        """True when every configured model has at least one AVAILABLE version."""
        with self._lock:
            return all(rt.loaded for rt in self._models.values() if rt.configured)

    def wait_until_available(self, names: Iterable[str], timeout: float | None = None) -> None:
        """Blocks until each named model has an AVAILABLE version or has definitely failed.

        A model with no version directory yet keeps this waiting (as TF Serving does).

        Raises:
            ServingError: UNKNOWN ``N model(s) did not become available: {…}``; DEADLINE_EXCEEDED
                after ``timeout``; CANCELLED when the manager is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        names = list(names)
        with self._changed:
            while True:
                if self._stop.is_set():
                    raise ServingError("CANCELLED", "Model manager is shutting down")
                pending, failures = self._availability(names)
                if not pending:
                    if failures:
                        raise ServingError(
                            "UNKNOWN",
                            f"{len(failures)} model(s) did not become available: "
                            "{" + ", ".join(failures) + "}",
                        )
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ServingError(
                        "DEADLINE_EXCEEDED",
                        "Timed out waiting for models to become available: " + ", ".join(pending),
                    )
                self._changed.wait(timeout=remaining if remaining is not None else 1.0)

    def _availability(self, names: list[str]) -> tuple[list[str], list[str]]:
        pending: list[str] = []
        failures: list[str] = []
        for name in names:
            runtime = self._models.get(name)
            if runtime is None or not runtime.configured:
                continue
            if runtime.loaded:
                continue
            coming = runtime.loading or any(
                version not in runtime.failed for version in runtime.aspired
            )
            if coming or not runtime.aspired:
                pending.append(name)
                continue
            statuses = self._statuses.get(name, {})
            errors = [
                f"{{name: {name} version: {version} error: {statuses[version].error_message}}}"
                for version in sorted(runtime.failed) if version in statuses
            ]
            failures.extend(errors or [f"{{name: {name}}}"])
        return pending, failures

    # ---- polling and transitions ------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= self._next_config_poll:
                self._poll_config_file()
            with self._lock:
                due = [rt for rt in self._models.values() if rt.configured and rt.next_poll <= now]
            for runtime in due:
                self._poll_model(runtime)
            with self._lock:
                for runtime in self._models.values():
                    self._reconcile(runtime)
                self._publish()
                next_due = min(
                    [rt.next_poll for rt in self._models.values() if rt.configured]
                    + [self._next_config_poll]
                )
            self._wake.wait(timeout=min(max(next_due - time.monotonic(), 0.01), 3600.0))
            self._wake.clear()

    def _poll_config_file(self) -> None:
        path = self._config_file
        self._next_config_poll = time.monotonic() + self._config_poll_s
        if path is None:
            return
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            log.warning("Could not read model config file %s: %s", path, exc)
            return
        if text == self._config_text:
            return
        self._config_text = text
        try:
            self.reload(read_config_file(path), wait=False)
            log.info("Reloaded model config from %s", path)
        except ServingError as exc:
            log.error("Ignoring model config file %s: %s: %s", path, exc.code, exc.message)

    def _poll_model(self, runtime: _ModelRuntime) -> None:
        settings = runtime.settings
        try:
            local = remote.local_base_path(settings.base_path)  # s3:// and gs:// are mirrored
            found = storage.list_versions(settings.name, local)
        except storage.BasePathError as exc:
            # Could not list (permissions, out of descriptors, path gone for now): this says
            # nothing about which versions exist, so what is loaded stays and aspired is kept.
            self._note_poll_failure(runtime, settings, str(exc))
            return
        error = None if found else (
            f"No versions of servable {settings.name} found under base path {settings.base_path}"
        )
        aspired_numbers = settings.policy.select(list(found))
        aspired = {version: found[version] for version in aspired_numbers}
        prints = {
            version: storage.fingerprint(path) for version, path in aspired.items()
            if not self._holds(runtime, version, path)
        }
        now = time.monotonic()
        with self._lock:
            if runtime.settings is not settings:
                return
            if error != runtime.poll_error and error is not None:
                log.warning("%s", error)
            runtime.poll_error = error
            runtime.aspired = aspired
            self._note_candidates(runtime, prints, now)
            waiting = any(v not in runtime.ready for v in prints if v not in runtime.failed)
            if waiting:
                runtime.next_poll = now + storage.STABILITY_INTERVAL_S
            elif self._poll_wait_s > 0:
                runtime.next_poll = now + self._poll_wait_s
            else:
                runtime.next_poll = math.inf

    def _note_poll_failure(
        self, runtime: _ModelRuntime, settings: ModelSettings, error: str
    ) -> None:
        with self._lock:
            if runtime.settings is not settings:
                return
            if error != runtime.poll_error:
                kept = sorted(runtime.loaded)
                log.error("%s; keeping the loaded versions %s until it can be listed again",
                          error, kept)
            runtime.poll_error = error
            runtime.next_poll = time.monotonic() + (
                self._poll_wait_s if self._poll_wait_s > 0 else storage.STABILITY_INTERVAL_S
            )

    @staticmethod
    def _holds(runtime: _ModelRuntime, version: int, path: str) -> bool:
        loaded = runtime.loaded.get(version)
        return (loaded is not None and loaded.path == path) or version in runtime.loading

    def _note_candidates(
        self, runtime: _ModelRuntime, prints: dict[int, storage.Fingerprint | None], now: float
    ) -> None:
        name = runtime.settings.name
        statuses = self._statuses.setdefault(name, {})
        for version in [v for v in runtime.ready if v not in prints]:
            del runtime.ready[version]
        for version, print_ in prints.items():
            failed = runtime.failed.get(version)
            if failed is not None:
                if failed == (runtime.aspired[version], print_):
                    continue
                del runtime.failed[version]
            previous = runtime.observed.get(version)
            runtime.observed[version] = (print_, now) if previous is None or previous[0] != print_ \
                else previous
            stable = (
                print_ is not None and previous is not None and previous[0] == print_
                and now - previous[1] >= storage.STABILITY_INTERVAL_S * 0.9
            )
            if stable:
                runtime.ready[version] = print_
            status = statuses.get(version)
            if status is None or status.state == END:
                statuses[version] = VersionStatus(version, START)
        for version, status in statuses.items():
            if status.state == START and version not in runtime.aspired:
                statuses[version] = VersionStatus(version, END)
                runtime.observed.pop(version, None)

    def _reconcile(self, runtime: _ModelRuntime) -> None:
        aspired = runtime.aspired
        stale = [v for v, lv in runtime.loaded.items() if aspired.get(v) != lv.path]
        if stale:
            # Availability first: a stale version goes once an aspired one serves, or when
            # nothing is aspired any more. An aspired version that is still being written,
            # loading, or failed (END with an error) never takes the serving one down.
            aspired_serving = any(v in runtime.loaded and v not in stale for v in aspired)
            if aspired_serving or not aspired:
                for version in stale:
                    self._begin_unload(runtime, version)
        for version in sorted(runtime.ready, reverse=True):
            if version in runtime.loaded or version in runtime.loading:
                continue
            if version in runtime.unloading:
                continue
            self._begin_load(runtime, version, aspired[version], runtime.ready.pop(version))

    def _begin_load(
        self, runtime: _ModelRuntime, version: int, path: str, print_: storage.Fingerprint
    ) -> None:
        runtime.loading.add(version)
        runtime.observed.pop(version, None)
        self._set_status(runtime.settings.name, VersionStatus(version, LOADING))
        self._spawn(self._load_job, runtime, version, path, print_)

    def _begin_unload(self, runtime: _ModelRuntime, version: int) -> None:
        loaded = runtime.loaded.pop(version)
        runtime.unloading.add(version)
        self._set_status(runtime.settings.name, VersionStatus(version, UNLOADING))
        self._publish()  # new requests must stop finding it before it refuses holders
        self._spawn(self._unload_job, runtime, loaded)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._run_job, args=(target, *args), daemon=True)
        self._jobs.add(thread)
        thread.start()

    def _run_job(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        finally:
            with self._changed:
                self._jobs.discard(threading.current_thread())
                self._changed.notify_all()
            self._wake.set()

    def _load_job(
        self, runtime: _ModelRuntime, version: int, path: str, print_: storage.Fingerprint
    ) -> None:
        name = runtime.settings.name
        servable, error = None, None
        for attempt in range(self._max_retries + 1):
            try:
                servable = self._load_fn(path)
                error = None
                break
            except Exception as exc:  # any load failure is reported in the version status
                error = _load_error(exc)
                log.error("Loading %s version %d failed (attempt %d): %s",
                          name, version, attempt + 1, error.message)
                if attempt == self._max_retries or self._stop.wait(self._retry_interval_s):
                    break
        with self._changed:
            runtime.loading.discard(version)
            if servable is None:
                error = error or ServingError("CANCELLED", "Load cancelled")
                runtime.failed[version] = (path, print_)
                self._set_status(name, VersionStatus(version, END, error.code, error.message))
            elif runtime.configured and runtime.aspired.get(version) == path \
                    and not self._stop.is_set():
                runtime.loaded[version] = _LoadedVersion(name, version, path, servable)
                self._set_status(name, VersionStatus(version, AVAILABLE))
                log.info("Successfully loaded servable version {name: %s version: %d}",
                         name, version)
                self._reconcile(runtime)
                self._publish()
            else:
                servable.close()
                self._set_status(name, VersionStatus(version, END))
            self._changed.notify_all()

    def _unload_job(self, runtime: _ModelRuntime, loaded: _LoadedVersion) -> None:
        loaded.retire_and_wait()
        try:
            if self._on_unload is not None:
                self._on_unload(loaded.model_name, loaded.version, loaded.servable)
            loaded.servable.close()
        except Exception:  # a close failure must not stop the state machine
            log.exception("Closing %s version %d failed", loaded.model_name, loaded.version)
        with self._changed:
            runtime.unloading.discard(loaded.version)
            self._set_status(loaded.model_name, VersionStatus(loaded.version, END))
            log.info("Unloaded servable version {name: %s version: %d}",
                     loaded.model_name, loaded.version)
            self._changed.notify_all()

    def _set_status(self, name: str, status: VersionStatus) -> None:
        self._statuses.setdefault(name, {})[status.version] = status
        self._changed.notify_all()

    def _publish(self) -> None:
        self._serving = {
            name: _ServingEntry(
                versions=dict(runtime.loaded), labels=dict(runtime.settings.labels),
                latest=max(runtime.loaded) if runtime.loaded else None,
            )
            for name, runtime in self._models.items() if runtime.configured
        }

    # ---- shutdown --------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Stops polling and unloads every version (waits for holders to release them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._changed:
            self._changed.notify_all()
            for runtime in self._models.values():
                runtime.configured = False
                runtime.aspired = {}
                for version in list(runtime.loaded):
                    self._begin_unload(runtime, version)
            self._publish()
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._jobs and time.monotonic() < deadline:
                self._changed.wait(0.1)
