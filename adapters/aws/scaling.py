"""Application Auto Scaling for a real-time variant: instance bounds and a target-tracking
policy on ``SageMakerVariantInvocationsPerInstance``.

A switch of the default version changes the serving variant, so the adapter deregisters the
old variant's scalable target before UpdateEndpoint (an update that changes the instance
type of an autoscaled variant fails) and registers the new variant's once it serves. A
redeploy with other bounds or another target re-registers (both calls update in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudserve_adapters.aws import sdk

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint: str, variant: str) -> str:
    """Application Auto Scaling's id of one endpoint variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def policy_name(endpoint: str, variant: str) -> str:
    """The name of cloudserve's target-tracking policy for one variant."""
    return f"cloudserve-{endpoint}-{variant}-invocations"


@dataclass(frozen=True)
class Settings:
    """A variant's autoscaling: instance bounds and the invocations-per-instance target."""

    minimum: int
    maximum: int
    target: float


def register(aas: Any, endpoint: str, variant: str, settings: Settings) -> str:
    """Register (or update) the variant's autoscaling; idempotent. Returns its id."""
    rid = resource_id(endpoint, variant)
    try:
        aas.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            MinCapacity=settings.minimum,
            MaxCapacity=settings.maximum,
        )
        aas.put_scaling_policy(
            PolicyName=policy_name(endpoint, variant),
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(settings.target),
                "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            },
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"registering autoscaling for {rid}") from e
    return rid


def registered(aas: Any, endpoint: str, variant: str) -> bool:
    """True when the variant has a scalable target."""
    rid = resource_id(endpoint, variant)
    try:
        found = aas.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
        )
    except sdk.errors() as e:
        raise sdk.translate(e, f"reading autoscaling of {rid}") from e
    return bool(found.get("ScalableTargets"))


def current(aas: Any, endpoint: str, variant: str) -> Settings | None:
    """The variant's registered autoscaling (bounds, and cloudserve's policy target: 0 when
    the policy is missing); None when it has no scalable target."""
    rid = resource_id(endpoint, variant)
    try:
        targets = aas.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
        ).get("ScalableTargets", [])
        if not targets:
            return None
        policies = aas.describe_scaling_policies(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyNames=[policy_name(endpoint, variant)],
        ).get("ScalingPolicies", [])
    except sdk.errors() as e:
        raise sdk.translate(e, f"reading autoscaling of {rid}") from e
    tracking = policies[0].get("TargetTrackingScalingPolicyConfiguration", {}) if policies else {}
    return Settings(
        minimum=int(targets[0]["MinCapacity"]),
        maximum=int(targets[0]["MaxCapacity"]),
        target=float(tracking.get("TargetValue", 0.0)),
    )


def deregister(aas: Any, endpoint: str, variant: str) -> bool:
    """Remove the variant's policy and scalable target; False when none was registered."""
    rid = resource_id(endpoint, variant)
    if not registered(aas, endpoint, variant):
        return False
    try:
        aas.delete_scaling_policy(
            PolicyName=policy_name(endpoint, variant),
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
        )
    except sdk.errors() as e:
        if not sdk.is_missing(e):
            raise sdk.translate(e, f"removing the scaling policy of {rid}") from e
    try:
        aas.deregister_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION
        )
    except sdk.errors() as e:
        if not sdk.is_missing(e):
            raise sdk.translate(e, f"deregistering autoscaling of {rid}") from e
    return True
