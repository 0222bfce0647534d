"""Switching the endpoint's default version: blue/green UpdateEndpoint, waits, autoscaling.

The only place cloudserve changes which EndpointConfig an endpoint runs after creating it.
A failed switch leaves the previous default serving and says so; the default history
(for rollback) is written only once the new version serves.
"""

from __future__ import annotations

from typing import Any

from cloudserve.errors import NotFound, ProviderError
from cloudserve.progress import Progress
from cloudserve_adapters.aws import naming, scaling, sdk, state
from cloudserve_adapters.aws.config import AwsConfig
from cloudserve_adapters.aws.sdk import PROVIDER
from cloudserve_adapters.aws.waiters import wait_for_endpoint

SETTLING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


class DefaultSwitch:
    """Makes a version the endpoint's default, keeping autoscaling on the serving variant.

    Args:
        config: the target settings (scaling bounds, poll timings).
        clients: the adapter's client factory.
        progress: where waits report.
    """

    def __init__(self, config: AwsConfig, clients: Any, progress: Progress):
        self.config = config
        self.clients = clients
        self.progress = progress

    def scaling_wanted(self) -> bool:
        """True when the config asks for autoscaling (real-time with max_instances set)."""
        return self.config.serverless is None and self.config.max_instances is not None

    def ensure_scaling(self, endpoint: str, version: str) -> bool:
        """Register autoscaling for the serving variant if configured; True if it did."""
        if not self.scaling_wanted():
            return False
        aas = self.clients.autoscaling()
        variant = naming.variant_name(version)
        if scaling.registered(aas, endpoint, variant):
            return False
        scaling.register(
            aas,
            endpoint,
            variant,
            minimum=self.config.min_instances,
            maximum=self.config.max_instances,
            target=self.config.target_invocations_per_instance,
        )
        return True

    def wait(self, endpoint: str, label: str, timeout: float) -> dict[str, Any]:
        """Poll the endpoint until it settles (see ``waiters.wait_for_endpoint``)."""
        sm = self.clients.sagemaker()

        def describe() -> dict[str, Any]:
            try:
                return sm.describe_endpoint(EndpointName=endpoint)
            except sdk.errors() as e:
                raise sdk.translate(e, f"reading endpoint {endpoint}") from e

        return wait_for_endpoint(
            describe,
            label=label,
            timeout=timeout,
            progress=self.progress,
            poll_initial=self.config.timeouts.poll_initial_s,
            poll_max=self.config.timeouts.poll_max_s,
        )

    def switch(
        self, model: str, ep: state.EndpointState, version: str, history: list[str], timeout: float
    ) -> state.EndpointState:
        """Blue/green UpdateEndpoint onto ``version``'s config; wait until it serves.

        On failure the endpoint keeps (or returns to) the previous config, and the
        ProviderError names the version still serving.
        """
        sm = self.clients.sagemaker()
        target = naming.resource_name(model, version)
        if state.describe_config(sm, target) is None:
            raise NotFound(
                f"{model} version {version} has no endpoint config {target}",
                hint="deploy that version first (cloudserve deploy)",
                provider=PROVIDER,
            )
        old = ep.serving
        if old is not None and self.scaling_wanted():
            # An update that changes an autoscaled variant's instance type fails: detach first.
            scaling.deregister(self.clients.autoscaling(), ep.name, naming.variant_name(old))
        self.progress.status(f"switching {ep.name} from v{old} to v{version} (blue/green)")
        try:
            sm.update_endpoint(EndpointName=ep.name, EndpointConfigName=target)
        except sdk.errors() as e:
            self.restore_scaling(ep.name, old)
            raise ProviderError(
                f"making v{version} the default failed ({sdk.error_message(e)}); "
                f"v{old} is still serving",
                hint="fix the cause and run set-default again",
                provider=PROVIDER,
            ) from e
        final = self.wait(ep.name, f"updating endpoint {ep.name} to v{version}", timeout)
        serving = naming.version_of(model, final.get("EndpointConfigName", ""))
        if final.get("EndpointStatus") != "InService" or serving != version:
            self.restore_scaling(ep.name, serving)
            reason = final.get("FailureReason") or final.get("EndpointStatus", "unknown")
            raise ProviderError(
                f"making v{version} the default failed ({reason}); "
                f"v{serving or old} is still serving",
                hint="see the endpoint's FailureReason in the SageMaker console; fix the cause "
                "and run set-default again",
                provider=PROVIDER,
            )
        state.write_history(sm, ep.arn, history)
        self.ensure_scaling(ep.name, version)
        return state.EndpointState(
            name=ep.name,
            arn=ep.arn,
            status="InService",
            config_name=target,
            serving=version,
            history=tuple(history),
        )

    def restore_scaling(self, endpoint: str, version: str | None) -> None:
        if version is not None:
            self.ensure_scaling(endpoint, version)

    def settle(self, model: str, ep: state.EndpointState, timeout: float) -> state.EndpointState:
        """Wait out a transition left by an earlier run; then refresh the endpoint state."""
        if ep.status in SETTLING:
            self.wait(ep.name, f"endpoint {ep.name} is {ep.status}", timeout)
            refreshed = state.read_endpoint(self.clients.sagemaker(), ep.name, model)
            if refreshed is None:
                raise NotFound(f"endpoint {ep.name} disappeared", provider=PROVIDER)
            return refreshed
        return ep

    def make_default(
        self, model: str, ep: state.EndpointState, version: str, timeout: float
    ) -> tuple[state.EndpointState, bool]:
        """Ensure ``version`` serves and is last in the history; (state, changed)."""
        ep = self.settle(model, ep, timeout)
        if ep.serving == version:
            recorded = state.tags(self.clients.sagemaker(), ep.arn).get(naming.TAG_HISTORY, "")
            changed = recorded != state.encode_history(ep.history)
            if changed:
                state.write_history(self.clients.sagemaker(), ep.arn, ep.history)
            changed |= self.ensure_scaling(ep.name, version)
            return ep, changed
        history = [v for v in ep.history if v != version] + [version]
        return self.switch(model, ep, version, history, timeout), True
