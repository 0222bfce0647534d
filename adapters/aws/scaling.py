"""Application Auto Scaling for a real-time variant: instance bounds and a target-tracking
policy on ``SageMakerVariantInvocationsPerInstance``.

A switch of the default version changes the serving variant, so the adapter deregisters the
old variant's scalable target before UpdateEndpoint (an update that changes the instance
type of an autoscaled variant fails) and registers the new variant's once it serves.
"""

from __future__ import annotations

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


def register(
    aas: Any, endpoint: str, variant: str, *, minimum: int, maximum: int, target: float
) -> str:
    """Register the variant's instance count for autoscaling; idempotent. Returns its id."""
    rid = resource_id(endpoint, variant)
    try:
        aas.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            MinCapacity=minimum,
            MaxCapacity=maximum,
        )
        aas.put_scaling_policy(
            PolicyName=policy_name(endpoint, variant),
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(target),
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
