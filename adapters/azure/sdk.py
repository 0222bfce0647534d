"""The Azure SDK seam: lazy imports, the client factory, and error translation.

Nothing here imports an Azure library at module import time. :class:`AzureClients` is the one
place the adapter gets its clients from: the Azure ML control-plane client (azure-ai-ml's own
generated ARM client, ``MachineLearningServicesMgmtClient``), blob containers of the workspace
datastore (azure-storage-blob) and the HTTP client for scoring calls. Tests hand it a factory
pointed at loopback stand-ins (the Azure ML fake, Azurite) instead of patching methods.
"""

from __future__ import annotations

import importlib
import os
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

PROVIDER = "azure"
#: the environment variable azure-ai-ml reads for a development control-plane URL
DEV_URL_ENV = "AZUREML_DEV_URL_MFE"
ARM_ENDPOINT = "https://management.azure.com"
CREDENTIALS_HINT = (
    "run 'az login', or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a "
    "service principal (DefaultAzureCredential also uses a managed identity); the identity "
    "needs the AzureML Data Scientist role on the workspace"
)

T = TypeVar("T")

_PACKAGES = {
    "azure.ai.ml": "azure-ai-ml",
    "azure.identity": "azure-identity",
    "azure.storage.blob": "azure-storage-blob",
    "azure.core": "azure-ai-ml",
    "azure.mgmt.core": "azure-ai-ml",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming its package and the azure extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = next((k for k in _PACKAGES if module == k or module.startswith(k + ".")), module)
        raise MissingDependency(_PACKAGES.get(top, module), "azure", provider=PROVIDER) from e


def raw_response(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """A ``cls=`` callback for generated operations: the azure-core HTTP response itself."""
    return pipeline_response.http_response


class AzureClients:
    """Builds (once) the Azure ML ARM client, blob containers and the scoring HTTP client.

    Args:
        credential: an azure-core ``TokenCredential``; None uses ``DefaultAzureCredential``.
        arm_endpoint: control-plane root; None honours ``AZUREML_DEV_URL_MFE`` (as azure-ai-ml
            does), then ``https://management.azure.com``.
        blob_url: account URL template for the datastore's storage account, with
            ``{account}``, ``{protocol}`` and ``{suffix}``; None builds
            ``{protocol}://{account}.blob.{suffix}`` as azure-ai-ml does.
        client_options: extra keyword arguments for the ARM client (azure-core pipeline
            options such as ``authentication_policy``, ``retry_total`` or ``transport``).
    """

    def __init__(
        self,
        credential: Any | None = None,
        *,
        arm_endpoint: str | None = None,
        blob_url: str | None = None,
        client_options: dict[str, Any] | None = None,
    ):
        self._credential = credential
        self.arm_endpoint = arm_endpoint
        self.blob_url = blob_url
        self.client_options = dict(client_options or {})
        self._arm: dict[str, Any] = {}
        self._http: Any | None = None

    def credential(self) -> Any:
        """The token credential (``DefaultAzureCredential`` unless one was given)."""
        if self._credential is None:
            identity = require("azure.identity")
            self._credential = identity.DefaultAzureCredential()
        return self._credential

    def endpoint(self) -> str:
        """The control-plane root calls go to."""
        return (self.arm_endpoint or os.environ.get(DEV_URL_ENV) or ARM_ENDPOINT).rstrip("/")

    def arm(self, subscription_id: str, *, timeout: float = 120.0) -> Any:
        """azure-ai-ml's generated ``MachineLearningServicesMgmtClient`` for the subscription."""
        if subscription_id not in self._arm:
            service = require("azure.ai.ml._restclient.arm_ml_service")
            options = {"connection_timeout": timeout, "read_timeout": timeout}
            self._arm[subscription_id] = service.MachineLearningServicesMgmtClient(
                self.credential(),
                subscription_id,
                base_url=self.endpoint(),
                **{**options, **self.client_options},
            )
        return self._arm[subscription_id]

    def container(
        self, account: str, container: str, key: str, *, protocol: str, suffix: str
    ) -> Any:
        """A blob ``ContainerClient`` for the datastore's container, with its account key."""
        blob = require("azure.storage.blob")
        template = self.blob_url or "{protocol}://{account}.blob.{suffix}"
        url = template.format(account=account, protocol=protocol, suffix=suffix)
        return blob.ContainerClient(
            url, container, credential={"account_name": account, "account_key": key}
        )

    def http(self, *, timeout: float) -> Any:
        """The HTTP client for scoring requests (httpx)."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=timeout)
        return self._http


# --------------------------------------------------------------------------- errors


def _message(error: Any) -> str:
    inner = getattr(error, "error", None)
    text = getattr(inner, "message", None) if inner is not None else None
    return str(text or getattr(error, "message", None) or error).splitlines()[0]


def translate(error: Exception, what: str) -> CloudserveError:
    """The cloudserve error for an exception an Azure library raised while doing ``what``.

    Missing or rejected credentials (401/403, a credential that cannot get a token) become
    CredentialsError (exit 6), 404 NotFound, other errors ProviderError with the HTTP status.
    """
    if isinstance(error, CloudserveError):
        return error
    exceptions = require("azure.core.exceptions")
    status = getattr(error, "status_code", None)
    if isinstance(error, exceptions.ClientAuthenticationError) or status in (401, 403):
        return CredentialsError(
            f"{what}: Azure credentials missing or rejected ({_message(error)})",
            hint=CREDENTIALS_HINT,
            provider=PROVIDER,
        )
    if isinstance(error, exceptions.ResourceNotFoundError) or status == 404:
        return NotFound(f"{what}: {_message(error)}", provider=PROVIDER)
    return ProviderError(f"{what}: {_message(error)}", http_status=status, provider=PROVIDER)


def call(what: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` and translate any Azure or transport exception (see :func:`translate`)."""
    try:
        return fn()
    except CloudserveError:
        raise
    except Exception as e:
        exceptions = require("azure.core.exceptions")
        if isinstance(e, exceptions.AzureError | OSError):
            raise translate(e, what) from e
        raise


def call_or_none(what: str, fn: Callable[[], T]) -> T | None:
    """Like :func:`call`, but NotFound returns None."""
    try:
        return call(what, fn)
    except NotFound:
        return None
