"""The Azure ML workspace's REST surface cloudserve uses, through azure-ai-ml's generated client.

Bodies are plain JSON in the field names of azure-ai-ml's generated REST models
(``azure.ai.ml._restclient.arm_ml_service.models``); answers come back as plain dicts. Long-running
operations are started without the SDK's own poller and waited for with
:func:`cloudserve.waiting.wait_until`, following ARM's ``Azure-AsyncOperation`` (else
``Location``) header.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloudserve.errors import ProviderError
from cloudserve.progress import Progress
from cloudserve.waiting import Backoff, wait_until
from cloudserve_adapters.azure.sdk import PROVIDER, call, call_or_none, raw_response, require

#: ARM statuses of a finished operation (Azure-AsyncOperation body ``status``)
TERMINAL = {"Succeeded", "Failed", "Canceled"}


@dataclass
class Operation:
    """A started ARM long-running operation: where to poll it (None: it finished at once)."""

    what: str
    url: str | None
    via_location: bool = False


def _dict(model: Any) -> dict[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


class WorkspaceApi:
    """The calls on one workspace. Every method translates SDK errors (see ``sdk.call``).

    Args:
        client: azure-ai-ml's ``MachineLearningServicesMgmtClient``.
        resource_group: the workspace's resource group.
        workspace: the workspace name.
        progress: where operation waits report.
        backoff: how operation polls are paced.
    """

    def __init__(
        self,
        client: Any,
        resource_group: str,
        workspace: str,
        *,
        progress: Progress,
        backoff: Backoff,
    ):
        self.client = client
        self.group = resource_group
        self.workspace = workspace
        self.progress = progress
        self.backoff = backoff
        self._location: str | None = None

    def _args(self) -> tuple[str, str]:
        return self.group, self.workspace

    # ------------------------------------------------------------------ workspace, datastore

    def location(self) -> str:
        """The workspace's region (needed in every tracked resource body)."""
        if self._location is None:
            ws = call(
                f"get workspace {self.workspace}", lambda: self.client.workspaces.get(*self._args())
            )
            self._location = str(_dict(ws)["location"])
        return self._location

    def datastore(self, name: str) -> dict[str, Any]:
        """The datastore (``properties.accountName``, ``containerName``, ``endpoint``...)."""
        return _dict(
            call(f"get datastore {name}", lambda: self.client.datastores.get(*self._args(), name))
        )

    def datastore_key(self, name: str) -> str:
        """The storage account key of an account-key datastore (``listSecrets``)."""
        secrets = call(
            f"list secrets of datastore {name}",
            lambda: self.client.datastores.list_secrets(*self._args(), name),
        )
        data = _dict(secrets)
        if data.get("secretsType") != "AccountKey" or not data.get("key"):
            raise ProviderError(
                f"datastore {name} does not use an account key (secrets type "
                f"{data.get('secretsType')})",
                hint="use a datastore with account-key credentials (targets.azure.datastore)",
                provider=PROVIDER,
            )
        return str(data["key"])

    # ------------------------------------------------------------------ models, environments

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of registered model ``name`` ([] when there is none)."""
        pages = call_or_none(
            f"list versions of model {name}",
            lambda: list(self.client.model_versions.list(*self._args(), name)),
        )
        return [_dict(v) for v in pages or []]

    def put_model_version(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        """Register (create or update) model version ``name:version``; synchronous."""
        return _dict(
            call(
                f"register model {name}:{version}",
                lambda: self.client.model_versions.create_or_update(
                    *self._args(), name, version, body
                ),
            )
        )

    def delete_model_version(self, name: str, version: str) -> None:
        """Delete a model version (idempotent: a missing one is no error)."""
        call_or_none(
            f"delete model {name}:{version}",
            lambda: self.client.model_versions.delete(*self._args(), name, version),
        )

    def delete_model(self, name: str) -> None:
        """Delete the model container (idempotent: a missing one is no error)."""
        call_or_none(
            f"delete model {name}",
            lambda: self.client.model_containers.delete(*self._args(), name),
        )

    def put_environment(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update environment version ``name:version``; synchronous."""
        return _dict(
            call(
                f"create environment {name}:{version}",
                lambda: self.client.environment_versions.create_or_update(
                    *self._args(), name, version, body
                ),
            )
        )

    # ------------------------------------------------------------------ endpoints

    def endpoint(self, name: str) -> dict[str, Any] | None:
        """The online endpoint, or None."""
        found = call_or_none(
            f"get endpoint {name}", lambda: self.client.online_endpoints.get(*self._args(), name)
        )
        return _dict(found) if found is not None else None

    def put_endpoint(self, name: str, body: dict[str, Any]) -> Operation:
        """Create or update the endpoint (also how traffic changes); returns the operation."""
        return self._start(
            f"update endpoint {name}",
            lambda **kw: self.client.online_endpoints.begin_create_or_update(
                *self._args(), name, body, **kw
            ),
        )

    def delete_endpoint(self, name: str) -> Operation:
        """Start deleting the endpoint (ARM answers 204 when it is already gone)."""
        return self._start(
            f"delete endpoint {name}",
            lambda **kw: self.client.online_endpoints.begin_delete(*self._args(), name, **kw),
        )

    def endpoint_key(self, name: str) -> str:
        """The endpoint's primary key (key auth)."""
        keys = call(
            f"list keys of endpoint {name}",
            lambda: self.client.online_endpoints.list_keys(*self._args(), name),
        )
        return str(_dict(keys).get("primaryKey") or "")

    # ------------------------------------------------------------------ deployments

    def deployments(self, endpoint: str) -> list[dict[str, Any]]:
        """Every deployment of the endpoint ([] when the endpoint is gone)."""
        found = call_or_none(
            f"list deployments of {endpoint}",
            lambda: list(self.client.online_deployments.list(*self._args(), endpoint)),
        )
        return [_dict(d) for d in found or []]

    def deployment(self, endpoint: str, name: str) -> dict[str, Any] | None:
        """One deployment, or None."""
        found = call_or_none(
            f"get deployment {endpoint}/{name}",
            lambda: self.client.online_deployments.get(*self._args(), endpoint, name),
        )
        return _dict(found) if found is not None else None

    def put_deployment(self, endpoint: str, name: str, body: dict[str, Any]) -> Operation:
        """Create or update a deployment; returns the operation."""
        return self._start(
            f"deployment {endpoint}/{name}",
            lambda **kw: self.client.online_deployments.begin_create_or_update(
                *self._args(), endpoint, name, body, **kw
            ),
        )

    def delete_deployment(self, endpoint: str, name: str) -> Operation:
        """Start deleting a deployment (ARM answers 204 when it is already gone)."""
        return self._start(
            f"delete deployment {endpoint}/{name}",
            lambda **kw: self.client.online_deployments.begin_delete(
                *self._args(), endpoint, name, **kw
            ),
        )

    def logs(self, endpoint: str, name: str, lines: int) -> str:
        """The serving container's last ``lines`` log lines (``getLogs``)."""
        body = {"containerType": "InferenceServer", "tail": lines}
        found = call(
            f"get logs of {endpoint}/{name}",
            lambda: self.client.online_deployments.get_logs(*self._args(), endpoint, name, body),
        )
        return str(_dict(found).get("content") or "")

    # ------------------------------------------------------------------ operations

    def _start(self, what: str, begin: Callable[..., Any]) -> Operation:
        poller = call(what, lambda: begin(polling=False, cls=raw_response))
        response = call(what, poller.result)
        headers = response.headers
        url = headers.get("Azure-AsyncOperation")
        if url:
            return Operation(what, url)
        if response.status_code == 202 and headers.get("Location"):
            return Operation(what, headers["Location"], via_location=True)
        return Operation(what, None)

    def _status(self, operation: Operation) -> dict[str, Any]:
        rest = require("azure.core.rest")
        request = rest.HttpRequest("GET", operation.url)
        response = call(operation.what, lambda: self.client.send_request(request))
        if operation.via_location:
            if response.status_code == 202:
                return {"status": "InProgress"}
            call(operation.what, response.raise_for_status)
            return {"status": "Succeeded"}
        call(operation.what, response.raise_for_status)
        return response.json()

    def wait(self, operation: Operation | None, deadline: float) -> dict[str, Any]:
        """Block until the operation finishes (or ``deadline``, a ``time.monotonic()`` value).

        Returns the final status body. Raises ProviderError when it failed or was canceled,
        DeployTimeout at the deadline (the operation goes on in Azure).
        """
        if operation is None or operation.url is None:
            return {"status": "Succeeded"}
        state = wait_until(
            lambda: self._status(operation),
            settled=lambda s: s.get("status") in TERMINAL,
            label=operation.what,
            timeout=max(deadline - time.monotonic(), 0.0),
            progress=self.progress,
            describe=lambda s: str(s.get("status", "unknown")),
            backoff=self.backoff,
            provider=PROVIDER,
            timeout_hint="the operation goes on in Azure; wait longer with --timeout, then check "
            "with 'cloudserve versions list'",
        )
        if state.get("status") != "Succeeded":
            error = state.get("error") or {}
            raise ProviderError(
                f"{operation.what}: {state.get('status')}: "
                f"{error.get('message') or error.get('code') or 'no reason given'}",
                provider=PROVIDER,
            )
        return state
