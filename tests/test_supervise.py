"""Background tasks that crash are reported and restarted; stop() cancels them all."""

from __future__ import annotations

import asyncio

import pytest

from server.supervise import Backoff, TaskSet

from .live_server import UNIT
from .waiting import eventually


@pytest.mark.asyncio
async def test_crashed_task_is_reported_and_restarted() -> None:
    runs: list[int] = []
    crashes: list[BaseException] = []
    cancelled: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("bug")
        try:
            await asyncio.Event().wait()  # third run stays up
        except asyncio.CancelledError:
            cancelled.append(len(runs))
            raise

    tasks = TaskSet()
    tasks.start("flaky", flaky, crashes.append)
    await eventually(lambda: len(runs) >= 3, 10 * UNIT, "a third run")
    assert [str(c) for c in crashes] == ["bug", "bug"]
    await tasks.stop()
    assert cancelled == [3]  # stop() cancelled the run that stayed up


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_healthy_run() -> None:
    backoff = Backoff(first=0.5, cap=4.0, healthy=60.0)
    assert [backoff.after(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.after(61.0) == 0.5
