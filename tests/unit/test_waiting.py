"""The shared waiting helper: backoff, deadline, progress, Ctrl-C."""

from __future__ import annotations

import pytest

from cloudserve.errors import DeployTimeout
from cloudserve.waiting import Backoff, Interrupted, wait_until
from tests.support import RecordingProgress


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_polls_until_settled_backing_off_and_reporting_each_change():
    states = iter(["Creating", "Creating", "Updating", "InService"])
    clock, progress = FakeClock(), RecordingProgress()
    result = wait_until(
        lambda: next(states),
        settled=lambda s: s == "InService",
        label="endpoint m",
        timeout=600,
        progress=progress,
        backoff=Backoff(initial_s=1, max_s=3, factor=2),
        clock=clock,
        sleep=clock.sleep,
    )
    assert result == "InService"
    assert clock.sleeps == [1, 2, 3]
    assert progress.statuses == [
        "endpoint m: Creating",
        "endpoint m: Updating",
        "endpoint m: InService",
    ]


def test_deadline_raises_timeout_naming_the_state_and_never_sleeps_past_it():
    clock = FakeClock()
    with pytest.raises(DeployTimeout, match="still Creating after 10 s") as info:
        wait_until(
            lambda: "Creating",
            settled=lambda s: False,
            label="endpoint m",
            timeout=10,
            backoff=Backoff(initial_s=4, max_s=4),
            provider="aws",
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now == 10
    assert info.value.exit_code == 5 and info.value.provider == "aws"
    assert "re-run" in info.value.hint


def test_ctrl_c_becomes_interrupted_with_exit_130_and_a_resume_hint():
    def poll():
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        wait_until(poll, settled=bool, label="rollout", timeout=5)
    assert info.value.exit_code == 130
    assert "idempotent" in info.value.hint


def test_a_long_unchanged_state_is_repeated_as_a_heartbeat():
    clock, progress = FakeClock(), RecordingProgress()
    polls = iter(range(100))
    wait_until(
        lambda: next(polls),
        settled=lambda n: n >= 6,
        describe=lambda n: "Updating",
        label="e",
        timeout=600,
        progress=progress,
        backoff=Backoff(initial_s=10, max_s=10),
        heartbeat_s=30,
        clock=clock,
        sleep=clock.sleep,
    )
    assert progress.statuses == ["e: Updating", "e: Updating (30s)", "e: Updating (60s)"]
