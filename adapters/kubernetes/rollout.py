"""Reading a Deployment's rollout the way ``kubectl rollout status`` does, with pod reasons.

A rollout is complete when the controller has observed the latest generation
(``status.observedGeneration >= metadata.generation``) and every desired replica is updated,
ready and available with no old replica left. It has *stalled* when the ``Progressing``
condition says ``ProgressDeadlineExceeded``, or sooner when a new pod is stuck in a state
that does not heal by itself (image pull errors, crash loops, bad config): the pod's own
reason and message are then the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: container waiting reasons that mean the rollout will not progress on its own
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class Rollout:
    """One observation of a Deployment's rollout."""

    generation: int
    observed_generation: int
    desired: int
    updated: int
    ready: int
    available: int
    total: int
    progressing: str  # the Progressing condition's reason ("" when absent)
    progressing_message: str
    pod_problem: str  # "<pod>: <reason>: <message>" of a stuck or failing pod, else ""

    @property
    def observed(self) -> bool:
        return self.observed_generation >= self.generation

    @property
    def complete(self) -> bool:
        return (
            self.observed
            and self.updated >= self.desired
            and self.total == self.updated
            and self.available >= self.desired
            and self.ready >= self.desired
        )

    @property
    def stalled(self) -> bool:
        return self.observed and (
            self.progressing == "ProgressDeadlineExceeded" or bool(self.pod_problem)
        )

    def describe(self) -> str:
        if not self.observed:
            return f"waiting for the controller (generation {self.generation})"
        text = (
            f"{self.updated}/{self.desired} updated, {self.ready} ready, {self.available} available"
        )
        if self.total > self.updated:
            text += f", {self.total - self.updated} old pending termination"
        if self.pod_problem:
            text += f"; {self.pod_problem}"
        return text


def pod_problem(pods: list[dict[str, Any]]) -> str:
    """The first stuck or failing container among ``pods``: "<pod>: <reason>: <message>".

    Stuck: a waiting reason in :data:`STUCK_REASONS`. Failing: running but not ready after
    restarts, reported with the last termination's reason (a failing probe restarts it).
    """
    for pod in pods:
        name = pod["metadata"]["name"]
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                return f"pod {name}: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
            last = (status.get("lastState") or {}).get("terminated") or {}
            if status.get("restartCount", 0) >= 2 and not status.get("ready") and last:
                return (
                    f"pod {name}: restarted {status['restartCount']} times, last exit "
                    f"{last.get('exitCode')} ({last.get('reason', 'unknown')}); the liveness or "
                    "startup probe may be failing"
                )
    return ""


def observe(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> Rollout:
    """A :class:`Rollout` from the live Deployment and its pods."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    progressing = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    return Rollout(
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        desired=int(spec.get("replicas", 1)),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        total=int(status.get("replicas") or 0),
        progressing=str(progressing.get("reason") or ""),
        progressing_message=str(progressing.get("message") or ""),
        pod_problem=pod_problem(pods),
    )


def pod_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True and it is not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
