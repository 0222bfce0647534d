"""Routing the endpoint: blue/green UpdateEndpoint, waits, Failed endpoints, autoscaling.

The only place cloudserve changes which EndpointConfig an endpoint runs after creating it.
A route is ``{version: percent}``: one version at 100 is a plain default switch onto that
version's own config; several versions (a canary), or a fleet that autoscaling grew past
``instance_count``, run a composed config (``naming.composed_config_name``) whose variants
carry the weights and the instance counts, so a switch never shrinks a serving fleet.

A failed switch leaves the previous route serving and says so; once the new route serves,
the steps after it (autoscaling, the default history) are all attempted, and a failure
among them is reported as such, with the switch itself done: re-running finishes them.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from cloudserve.errors import CloudserveError, ConfigError, DeployTimeout, NotFound, ProviderError
from cloudserve.limits import limit
from cloudserve.progress import Progress
from cloudserve.waiting import RESUME_HINT, Backoff, wait_until
from cloudserve_adapters.aws import naming, resources, scaling, sdk, state
from cloudserve_adapters.aws.config import AwsConfig
from cloudserve_adapters.aws.sdk import PROVIDER

#: statuses an endpoint passes through on its own; anything else is where it settled
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
DELETED = "Deleted"  # what the wait for a deletion reports once DescribeEndpoint finds nothing


def single(version: str) -> dict[str, int]:
    """The route sending every request to ``version``."""
    return {version: 100}


class DefaultSwitch:
    """Routes the endpoint to versions, keeping autoscaling on the serving variants.

    Args:
        config: the target settings (instance sizing, scaling bounds, poll timings).
        clients: the adapter's client factory.
        progress: where waits report.
    """

    def __init__(self, config: AwsConfig, clients: Any, progress: Progress):
        self.config = config
        self.clients = clients
        self.progress = progress

    # ------------------------------------------------------------------ autoscaling

    def scaling_wanted(self) -> bool:
        """True when the config asks for autoscaling (real-time with max_instances set)."""
        return self.config.serverless is None and self.config.max_instances is not None

    def scaling_settings(self) -> scaling.Settings | None:
        """The autoscaling the config asks for; None for none."""
        if not self.scaling_wanted():
            return None
        return scaling.Settings(
            minimum=self.config.min_instances,
            maximum=self.config.max_instances or self.config.min_instances,
            target=float(self.config.target_invocations_per_instance),
        )

    def ensure_scaling(self, endpoint: str, version: str) -> bool:
        """Make the variant's autoscaling match the config: register it, update changed
        bounds or target, or remove it when the config no longer asks for it. Idempotent;
        True when something changed."""
        if self.config.serverless is not None:
            return False
        aas = self.clients.autoscaling()
        variant = naming.variant_name(version)
        current = scaling.current(aas, endpoint, variant)
        wanted = self.scaling_settings()
        if wanted is None:
            return scaling.deregister(aas, endpoint, variant) if current else False
        if current == wanted:
            return False
        scaling.register(aas, endpoint, variant, wanted)
        return True

    def _detach_scaling(self, endpoint: str, versions: list[str]) -> None:
        """Deregister the variants' autoscaling before an update (an update that changes an
        autoscaled variant's instance type fails)."""
        if self.scaling_wanted():
            for version in versions:
                scaling.deregister(
                    self.clients.autoscaling(), endpoint, naming.variant_name(version)
                )

    # ------------------------------------------------------------------ waiting

    def wait(
        self, endpoint: str, label: str, timeout: float, *, gone_ok: bool = False
    ) -> dict[str, Any]:
        """Poll DescribeEndpoint until the status is not transitional; return it.

        With ``gone_ok`` a missing endpoint settles the wait as status ``Deleted``.

        Raises:
            DeployTimeout: still transitional after ``timeout`` seconds.
            Interrupted: Ctrl-C while waiting.
        """
        sm = self.clients.sagemaker()

        def describe() -> dict[str, Any]:
            try:
                return sm.describe_endpoint(EndpointName=endpoint)
            except sdk.errors() as e:
                if gone_ok and sdk.is_missing(e):
                    return {"EndpointStatus": DELETED}
                raise sdk.translate(e, f"reading endpoint {endpoint}") from e

        timeouts = self.config.timeouts
        return wait_until(
            describe,
            settled=lambda d: d.get("EndpointStatus") not in TRANSITIONAL,
            label=label,
            timeout=timeout,
            progress=self.progress,
            describe=lambda d: str(d.get("EndpointStatus", "")),
            backoff=Backoff(timeouts.poll_initial_s, timeouts.poll_max_s),
            provider=PROVIDER,
            timeout_hint="SageMaker keeps working on it; " + RESUME_HINT + " (or raise --timeout)",
        )

    def settle(self, model: str, ep: state.EndpointState, timeout: float) -> state.EndpointState:
        """Wait out a transition left by an earlier run; then refresh the endpoint state."""
        if ep.status in TRANSITIONAL:
            self.wait(ep.name, f"endpoint {ep.name} is {ep.status}", timeout)
            refreshed = state.read_endpoint(self.clients.sagemaker(), ep.name, model)
            if refreshed is None:
                raise NotFound(f"endpoint {ep.name} disappeared", provider=PROVIDER)
            return refreshed
        return ep

    # ------------------------------------------------------------------ configs

    def _counts(self, ep: state.EndpointState | None, route: dict[str, int]) -> dict[str, int]:
        """Instance counts for the route's variants: ``instance_count``, raised so that the
        new fleet is as large as the autoscaled one it replaces (share by weight), within
        the autoscaling bounds."""
        cfg = self.config
        floor = max(cfg.instance_count, cfg.min_instances if self.scaling_wanted() else 1)
        running = sum(ep.capacity.values()) if ep is not None and self.scaling_wanted() else 0
        counts = {}
        for version, percent in route.items():
            count = max(floor, math.ceil(running * percent / 100))
            counts[version] = min(count, cfg.max_instances) if cfg.max_instances else count
        return counts

    def config_for(self, model: str, ep: state.EndpointState | None, route: dict[str, int]) -> str:
        """The EndpointConfig that serves ``route``: the version's own config when it fits,
        else a composed one (created when missing). Raises NotFound for a version that was
        never deployed."""
        sm = self.clients.sagemaker()
        for version in route:
            if state.describe_config(sm, naming.resource_name(model, version)) is None:
                raise NotFound(
                    f"{model} version {version} has no endpoint config "
                    f"{naming.resource_name(model, version)}",
                    hint="deploy that version first (cloudserve deploy)",
                    provider=PROVIDER,
                )
        counts = self._counts(ep, route) if self.config.serverless is None else {}
        own = [v for v, p in route.items() if p == 100 and len(route) == 1]
        if own and counts.get(own[0], self.config.instance_count) == self.config.instance_count:
            return naming.resource_name(model, own[0])  # the version's own config fits
        variants = []
        for version, percent in sorted(
            route.items(), key=lambda kv: naming.version_sort_key(kv[0])
        ):
            variant = resources.production_variant(
                self.config, naming.resource_name(model, version), version
            )
            variant["InitialVariantWeight"] = float(percent)
            if version in counts:
                variant["InitialInstanceCount"] = counts[version]
            variants.append(variant)
        digest = hashlib.sha256(json.dumps(variants, sort_keys=True).encode()).hexdigest()
        name = naming.composed_config_name(model, digest)
        if state.describe_config(sm, name) is None:
            resources.create_composed_config(
                sm, self.config, name=name, model=model, variants=variants
            )
        return name

    def _drop_composed(self, model: str, name: str, keep: str) -> None:
        """Delete a composed config the endpoint no longer runs (best effort: a leftover
        config costs nothing and the next delete of the model removes it)."""
        if name != keep and naming.is_composed_config(model, name):
            try:
                self.clients.sagemaker().delete_endpoint_config(EndpointConfigName=name)
            except sdk.errors() as e:
                self.progress.status(f"left endpoint config {name}: {sdk.error_message(e)}")

    # ------------------------------------------------------------------ routing

    def route(
        self,
        model: str,
        ep: state.EndpointState,
        route: dict[str, int],
        history: list[str],
        timeout: float,
    ) -> state.EndpointState:
        """Blue/green UpdateEndpoint onto ``route``; wait until it serves, then attach
        autoscaling and record ``history``.

        Raises:
            NotFound: a version of the route was never deployed.
            ProviderError: the update failed (the message says what serves now), or a step
                after it failed (the route serves; re-running finishes).
        """
        sm = self.clients.sagemaker()
        target = self.config_for(model, ep, route)
        old = dict(ep.traffic) or ({ep.serving: 100} if ep.serving else {})
        self._detach_scaling(ep.name, list(old))
        self.progress.status(f"switching {ep.name} from {describe(old)} to {describe(route)}")
        try:
            resources.when_config_visible(
                lambda: sm.update_endpoint(EndpointName=ep.name, EndpointConfigName=target),
                f"updating endpoint {ep.name}",
                self.config.timeouts,
                self.progress,
            )
        except DeployTimeout:
            raise
        except CloudserveError as e:
            self._reattach(ep.name, list(old))
            raise ProviderError(
                f"switching to {describe(route)} failed ({e.message}); {describe(old)} is still "
                "serving",
                hint="fix the cause and run the command again",
                provider=PROVIDER,
            ) from e
        final = self.wait(ep.name, f"updating endpoint {ep.name} to {describe(route)}", timeout)
        if final.get("EndpointStatus") == state.FAILED:
            raise self.failed_error(ep.name, final.get("FailureReason"))
        now = state.read_endpoint(sm, ep.name, model)
        if now is None or final.get("EndpointConfigName") != target:
            serving = dict(now.traffic) if now is not None else old
            self._reattach(ep.name, list(serving))
            reason = final.get("FailureReason") or final.get("EndpointStatus", "unknown")
            raise ProviderError(
                f"switching to {describe(route)} failed ({reason}); {describe(serving)} is "
                "still serving",
                hint="see the endpoint's FailureReason in the SageMaker console; fix the cause "
                "and run the command again",
                provider=PROVIDER,
            )
        self.finish(now, route, history)
        self._drop_composed(model, ep.config_name, target)
        return state.read_endpoint(sm, ep.name, model) or now

    def _reattach(self, endpoint: str, versions: list[str]) -> None:
        for version in versions:
            self.ensure_scaling(endpoint, version)

    def finish(self, ep: state.EndpointState, route: dict[str, int], history: list[str]) -> bool:
        """The steps after a route serves: autoscaling for each variant, then the history.
        Every step is attempted; True when any changed something.

        Raises:
            ProviderError: a step failed; the route serves, re-running finishes the rest.
        """
        changed = False
        failures = []
        for version in route:
            try:
                changed |= self.ensure_scaling(ep.name, version)
            except CloudserveError as e:
                failures.append(f"autoscaling of v{version}: {e.message}")
        recorded = state.tags(self.clients.sagemaker(), ep.arn).get(naming.TAG_HISTORY, "")
        if recorded != state.encode_history(history):
            try:
                state.write_history(self.clients.sagemaker(), ep.arn, history)
                changed = True
            except CloudserveError as e:
                failures.append(f"recording the default history: {e.message}")
        if failures:
            raise ProviderError(
                f"{describe(route)} is serving on {ep.name}, but " + "; ".join(failures),
                hint="run the same command again to finish (it does not switch again)",
                provider=PROVIDER,
            )
        return changed

    def make_default(
        self, model: str, ep: state.EndpointState, version: str, timeout: float
    ) -> tuple[state.EndpointState, bool]:
        """Ensure ``version`` alone serves and is last in the history; (state, changed)."""
        return self.apply(model, ep, single(version), timeout)

    def apply(
        self, model: str, ep: state.EndpointState, route: dict[str, int], timeout: float
    ) -> tuple[state.EndpointState, bool]:
        """Ensure the endpoint serves ``route`` (idempotent); (state, changed)."""
        ep = self.settle(model, ep, timeout)
        primary = max(route, key=lambda v: (route[v], naming.version_sort_key(v)))
        history = [v for v in ep.history if v != primary] + [primary]
        if ep.traffic == route or (not ep.traffic and route == single(ep.serving or "")):
            return ep, self.finish(ep, route, list(ep.history))
        return self.route(model, ep, route, history, timeout), True

    # ------------------------------------------------------------------ Failed endpoints

    @staticmethod
    def failed_error(endpoint: str, reason: str | None) -> ProviderError:
        """The truthful error for a Failed endpoint: nothing serves, and how to recover."""
        return ProviderError(
            f"endpoint {endpoint} is Failed ({reason or 'no reason given'}); it serves nothing "
            "and SageMaker allows only deleting it",
            hint="fix the cause, then run the command again: cloudserve deletes the Failed "
            "endpoint and creates it again (or delete the model)",
            provider=PROVIDER,
        )

    def recreate(
        self, model: str, ep: state.EndpointState, route: dict[str, int], timeout: float
    ) -> state.EndpointState:
        """Replace a Failed endpoint (it serves nothing, so nothing is lost): delete it, wait
        until it is gone, create it again serving ``route`` and wait for it.

        Raises:
            ProviderError: the new endpoint did not come up InService (it says why).
        """
        self.progress.status(
            f"endpoint {ep.name} is Failed ({ep.failure_reason or 'no reason given'}): "
            f"deleting it and creating it again serving {describe(route)}"
        )
        self._detach_scaling(ep.name, list(ep.traffic))
        self.delete_and_wait(ep.name)
        primary = max(route, key=lambda v: (route[v], naming.version_sort_key(v)))
        history = [v for v in ep.history if v != primary] + [primary]
        return self.create(model, ep.name, route, history, timeout, tags={})

    def delete_and_wait(self, endpoint: str) -> bool:
        """DeleteEndpoint and block until it is gone; False when it was already gone."""
        if not resources.delete_endpoint(self.clients.sagemaker(), endpoint):
            return False
        final = self.wait(
            endpoint,
            f"deleting endpoint {endpoint}",
            limit(PROVIDER, "endpoint_wait_s"),
            gone_ok=True,
        )
        if final["EndpointStatus"] != DELETED:
            raise ProviderError(
                f"endpoint {endpoint} is {final['EndpointStatus']} instead of deleted",
                hint=RESUME_HINT,
                provider=PROVIDER,
            )
        return True

    def create(
        self,
        model: str,
        endpoint: str,
        route: dict[str, int],
        history: list[str],
        timeout: float,
        *,
        tags: dict[str, str],
        wait: bool = True,
    ) -> state.EndpointState:
        """CreateEndpoint serving ``route`` (retried while the new config is not visible
        yet); with ``wait``, block until it is InService and attach autoscaling.

        Raises:
            ProviderError: the endpoint ended Failed (nothing serves; see failed_error).
        """
        sm = self.clients.sagemaker()
        target = self.config_for(model, None, route)
        self.progress.status(f"creating endpoint {endpoint} serving {describe(route)}")
        resources.create_endpoint(
            sm,
            self.config,
            endpoint=endpoint,
            config_name=target,
            model=model,
            history=state.encode_history(history),
            tags=tags,
            progress=self.progress,
        )
        ep = state.read_endpoint(sm, endpoint, model)
        if ep is None:
            raise ProviderError(f"endpoint {endpoint} vanished after creation", provider=PROVIDER)
        if not wait:
            return ep
        ep = self.settle(model, ep, timeout)
        if ep.failed:
            raise self.failed_error(endpoint, ep.failure_reason)
        if ep.status != "InService":
            raise ProviderError(
                f"endpoint {endpoint} is {ep.status}: {ep.failure_reason or 'no reason given'}",
                hint="fix the cause (image, role, instance type) and run the command again",
                provider=PROVIDER,
            )
        self.finish(ep, route, history)
        return ep


def describe(route: dict[str, int]) -> str:
    """``v2`` for a single version, ``v1 90% + v2 10%`` for a split."""
    if not route:
        return "nothing"
    if len(route) == 1:
        return f"v{next(iter(route))}"
    ordered = sorted(route.items(), key=lambda kv: naming.version_sort_key(kv[0]))
    return " + ".join(f"v{v} {p}%" for v, p in ordered)


def check_route(route: dict[str, int]) -> None:
    """A traffic split names versions with whole percents summing to 100.

    Raises:
        ConfigError: it does not.
    """
    if not route or sum(route.values()) != 100 or any(p < 0 for p in route.values()):
        raise ConfigError(
            f"traffic {route} must give each version a percent >= 0, summing to 100",
            hint="e.g. traffic: {'1': 90, '2': 10}",
            provider=PROVIDER,
        )
