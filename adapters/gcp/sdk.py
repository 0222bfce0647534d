"""The Google SDK seam: lazy imports, the client factory, and error translation.

Nothing here imports a Google library at module import time. :class:`GcpClients` is the one
place the adapter gets its clients from, so tests hand it a factory pointed at loopback
stand-ins (a Vertex fake, gcp-storage-emulator) instead of patching methods.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from cloudserve.errors import (
    CloudserveError,
    CredentialsError,
    MissingDependency,
    NotFound,
    ProviderError,
)

PROVIDER = "gcp"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
LOGGING_ENDPOINT = "https://logging.googleapis.com"

T = TypeVar("T")

_PACKAGES = {
    "googleapiclient": "google-api-python-client",
    "httplib2": "google-api-python-client",
    "google_auth_httplib2": "google-api-python-client",
    "google.auth": "google-auth",
    "google.cloud.storage": "google-cloud-storage",
    "google.api_core": "google-cloud-storage",
    "google_crc32c": "google-cloud-storage",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming its package and the gcp extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = next((k for k in _PACKAGES if module == k or module.startswith(k + ".")), module)
        raise MissingDependency(_PACKAGES.get(top, module), "gcp", provider=PROVIDER) from e


class GcpClients:
    """Builds (once) the Vertex AI and Cloud Logging discovery clients and the Storage client.

    Args:
        credentials: google-auth credentials; None uses Application Default Credentials.
            ``google.auth.credentials.AnonymousCredentials()`` sends no auth at all (emulators).
        api_endpoint: Vertex API root that overrides the adapter's regional endpoint
            (a test fake, a private endpoint).
        storage_endpoint: Cloud Storage API root; None honours ``STORAGE_EMULATOR_HOST``,
            then the public endpoint (google-cloud-storage's own resolution order).
        logging_endpoint: Cloud Logging API root (a test fake); None: the public endpoint.
    """

    def __init__(
        self,
        credentials: Any | None = None,
        api_endpoint: str | None = None,
        storage_endpoint: str | None = None,
        logging_endpoint: str | None = None,
    ):
        self.credentials = credentials
        self.api_endpoint = api_endpoint
        self.storage_endpoint = storage_endpoint
        self.logging_endpoint = logging_endpoint
        self._discovered: dict[str, Any] = {}
        self._storage: dict[str, Any] = {}

    def _anonymous(self) -> bool:
        creds = require("google.auth.credentials")
        return isinstance(self.credentials, creds.AnonymousCredentials)

    def _resolved_credentials(self) -> Any:
        if self.credentials is not None:
            return self.credentials
        auth = require("google.auth")
        exceptions = require("google.auth.exceptions")
        try:
            credentials, _project = auth.default(scopes=list(SCOPES))
        except exceptions.DefaultCredentialsError as e:
            raise CredentialsError(
                "no Google Cloud credentials found",
                hint="run 'gcloud auth application-default login' or set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file",
                provider=PROVIDER,
            ) from e
        return credentials

    def _discovery(self, api: str, version: str, endpoint: str, timeout: float) -> Any:
        """A discovery client for ``api`` ``version`` (bundled document) calling ``endpoint``."""
        endpoint = endpoint.rstrip("/") + "/"
        key = f"{api}/{version}@{endpoint}"
        if key not in self._discovered:
            discovery = require("googleapiclient.discovery")
            httplib2 = require("httplib2")
            http: Any = httplib2.Http(timeout=timeout)
            if not self._anonymous():
                google_auth_httplib2 = require("google_auth_httplib2")
                http = google_auth_httplib2.AuthorizedHttp(self._resolved_credentials(), http=http)
            self._discovered[key] = discovery.build(
                api,
                version,
                http=http,
                static_discovery=True,
                client_options={"api_endpoint": endpoint},
            )
        return self._discovered[key]

    def vertex(self, default_endpoint: str, *, timeout: float = 120.0) -> Any:
        """The ``aiplatform`` v1 client from the bundled (static) discovery document.

        Calls go to this factory's ``api_endpoint`` when set, else ``default_endpoint``
        (the adapter passes the regional ``https://{region}-aiplatform.googleapis.com``).
        """
        return self._discovery("aiplatform", "v1", self.api_endpoint or default_endpoint, timeout)

    def logging(self, *, timeout: float = 60.0) -> Any:
        """The Cloud Logging ``logging`` v2 client (bundled discovery document).

        Calls go to this factory's ``logging_endpoint`` when set, else the public
        ``https://logging.googleapis.com``.
        """
        return self._discovery("logging", "v2", self.logging_endpoint or LOGGING_ENDPOINT, timeout)

    def storage(self, project: str) -> Any:
        """A google-cloud-storage ``Client`` for ``project``.

        With no credentials given, the client resolves them itself: anonymous under
        ``STORAGE_EMULATOR_HOST``, else Application Default Credentials.
        """
        if project not in self._storage:
            storage = require("google.cloud.storage")
            options = {"api_endpoint": self.storage_endpoint} if self.storage_endpoint else None
            self._storage[project] = call(
                "Cloud Storage client",
                lambda: storage.Client(
                    project=project, credentials=self.credentials, client_options=options
                ),
            )
        return self._storage[project]


# --------------------------------------------------------------------------- errors


def _http_error_message(error: Any) -> str:
    content = getattr(error, "content", b"") or b""
    try:
        body = json.loads(content.decode("utf-8", "replace"))
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return error._get_reason() if hasattr(error, "_get_reason") else str(error)


def translate(error: Exception, what: str) -> CloudserveError:
    """The cloudserve error for an exception a Google library raised while doing ``what``.

    404 becomes NotFound, 401/403 CredentialsError, other API errors ProviderError (with the
    HTTP status), so callers never see a Google exception type.
    """
    if isinstance(error, CloudserveError):
        return error
    status: int | None = None
    message = str(error)
    http_errors = require("googleapiclient.errors")
    if isinstance(error, http_errors.HttpError):
        status = error.status_code
        message = _http_error_message(error)
    else:
        api_exceptions = require("google.api_core.exceptions")
        auth_exceptions = require("google.auth.exceptions")
        if isinstance(error, api_exceptions.GoogleAPICallError):
            status = error.code
            message = error.message
        elif isinstance(error, auth_exceptions.GoogleAuthError):
            status = 401
    if status == 404:
        return NotFound(f"{what}: {message}", provider=PROVIDER)
    if status in (401, 403):
        return CredentialsError(
            f"{what}: permission denied ({message})",
            hint="check the credentials and that the account has the Vertex AI User and "
            "Storage Object Admin roles on the project",
            provider=PROVIDER,
        )
    return ProviderError(f"{what}: {message}", http_status=status, provider=PROVIDER)


def _sdk_errors() -> tuple[type[BaseException], ...]:
    return (
        require("googleapiclient.errors").Error,
        require("google.api_core.exceptions").GoogleAPIError,
        require("google.auth.exceptions").GoogleAuthError,
        require("httplib2").HttpLib2Error,
        OSError,
    )


def call(what: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` and translate any Google or transport exception (see :func:`translate`)."""
    try:
        return fn()
    except CloudserveError:
        raise
    except _sdk_errors() as e:
        raise translate(e, what) from e


def execute(what: str, request: Any, *, retries: int = 0) -> dict[str, Any]:
    """Execute a discovery-client request; translate its errors.

    ``retries`` > 0 lets googleapiclient resend the request after a connection error, a
    5xx or a 429, with randomised exponential backoff (``num_retries``). Pass it only for
    requests that are safe to send twice (reads, and writes that set an absolute state).
    """
    return call(what, lambda: request.execute(num_retries=retries))


def execute_or_none(what: str, request: Any, *, retries: int = 0) -> dict[str, Any] | None:
    """Like :func:`execute`, but a 404 returns None."""
    try:
        return execute(what, request, retries=retries)
    except NotFound:
        return None
