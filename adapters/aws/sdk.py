"""The boto3 seam: lazy import, the client factory, and SDK-error translation.

Nothing here imports boto3 at module import time, so ``import cloudserve_adapters.aws``
works without the ``aws`` extra; the first client asked for raises
:class:`~cloudserve.errors.MissingDependency` instead.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

from cloudserve.errors import (
    CloudserveError,
    CredentialsError,
    MissingDependency,
    NotFound,
    ProviderError,
)

PROVIDER = "aws"

_CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "404", "ObjectNotFoundException"})


def import_boto3() -> Any:
    """Import boto3, or raise MissingDependency with the install hint."""
    try:
        return importlib.import_module("boto3")
    except ModuleNotFoundError as e:
        raise MissingDependency("boto3", "aws", provider=PROVIDER) from e


def botocore_module(name: str) -> Any:
    """Import ``botocore.<name>`` (present whenever boto3 is)."""
    import_boto3()
    return importlib.import_module(f"botocore.{name}")


class AwsClients:
    """Builds and caches the boto3 clients the adapter uses.

    Args:
        session: a ``boto3.Session`` (credentials, profile); None builds a default one.
        endpoint_url: send every call to this URL (an emulator such as moto's server).
        region: the region of every client.
        read_timeout: socket read timeout of the sagemaker-runtime client, in seconds.
    """

    def __init__(
        self,
        session: Any | None = None,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        read_timeout: float = 70.0,
    ):
        self._session = session
        self.endpoint_url = endpoint_url
        self.region = region
        self.read_timeout = read_timeout
        self._cache: dict[str, Any] = {}

    @cached_property
    def session(self) -> Any:
        return self._session or import_boto3().Session(region_name=self.region)

    def _client(self, service: str, *, attempts: int = 6, **config: Any) -> Any:
        if service not in self._cache:
            botocore_config = botocore_module("config").Config(
                retries={"total_max_attempts": attempts, "mode": "standard"}, **config
            )
            self._cache[service] = self.session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=botocore_config,
            )
        return self._cache[service]

    def s3(self) -> Any:
        """The S3 client."""
        return self._client("s3")

    def sagemaker(self) -> Any:
        """The SageMaker control-plane client."""
        return self._client("sagemaker")

    def runtime(self) -> Any:
        """The sagemaker-runtime client (InvokeEndpoint) with the long read timeout and no
        automatic retries.

        Containers must answer within 60 s; botocore's docs ask for a 70 s socket timeout.
        InvokeEndpoint is not idempotent (a model may act on a request it never answered),
        and botocore's retry modes retry read timeouts: one attempt, the caller decides.
        """
        return self._client("sagemaker-runtime", attempts=1, read_timeout=self.read_timeout)

    def logs(self) -> Any:
        """The CloudWatch Logs client (the serving containers' logs)."""
        return self._client("logs")

    def autoscaling(self) -> Any:
        """The Application Auto Scaling client."""
        return self._client("application-autoscaling")


def error_code(e: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def error_message(e: BaseException) -> str:
    """The AWS error message of a ClientError, else ``str(e)``."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(e)
    return str(e)


def is_missing(e: BaseException) -> bool:
    """True when an SDK error says the resource does not exist.

    SageMaker answers a missing model, config or endpoint with ValidationException
    "Could not find ..."; S3 with NoSuchBucket/NoSuchKey/404.
    """
    code = error_code(e)
    if code in _NOT_FOUND_CODES:
        return True
    message = error_message(e).lower()
    return code in {"ValidationException", "ValidationError", "ResourceNotFound"} and (
        "could not find" in message or "does not exist" in message or "not found" in message
    )


def translate(e: BaseException, doing: str) -> CloudserveError:
    """Map a boto3/botocore exception to cloudserve's hierarchy; ``doing`` names the step.

    Credentials problems become CredentialsError (never echoing a credential), missing
    resources NotFound, everything else ProviderError with the HTTP status when known.
    """
    exceptions = botocore_module("exceptions")
    if isinstance(e, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return CredentialsError(
            f"{doing}: no AWS credentials found",
            hint="configure credentials (aws configure, AWS_PROFILE or an instance role)",
            provider=PROVIDER,
        )
    if isinstance(e, exceptions.EndpointConnectionError | exceptions.ConnectTimeoutError):
        return ProviderError(
            f"{doing}: cannot reach AWS ({e})",
            hint="check the network and the region",
            provider=PROVIDER,
        )
    if isinstance(e, exceptions.ReadTimeoutError):
        return ProviderError(
            f"{doing}: no answer within the read timeout ({e})",
            hint="SageMaker gives a model 60 s per request; use async inference for longer",
            provider=PROVIDER,
        )
    code = error_code(e)
    message = error_message(e)
    status = getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _CREDENTIAL_CODES:
        return CredentialsError(
            f"{doing}: AWS refused the credentials or the permission ({code})",
            hint="check the caller's IAM permissions and that the credentials are current",
            provider=PROVIDER,
        )
    if is_missing(e):
        return NotFound(f"{doing}: {message}", provider=PROVIDER)
    return ProviderError(
        f"{doing}: {code or type(e).__name__}: {message}", http_status=status, provider=PROVIDER
    )


def errors() -> tuple[type[BaseException], ...]:
    """The SDK's exception types, for ``except sdk.errors() as e`` at the boundary."""
    exceptions = botocore_module("exceptions")
    boto3_exceptions = importlib.import_module("boto3.exceptions")
    return (exceptions.ClientError, exceptions.BotoCoreError, boto3_exceptions.Boto3Error)
