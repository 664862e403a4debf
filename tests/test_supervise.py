"""Background tasks that crash are reported and restarted; stop() cancels them all."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.supervise import Backoff, TaskSet


@pytest.mark.asyncio
async def test_crashed_task_is_reported_and_restarted() -> None:
    runs: list[int] = []
    crashes: list[BaseException] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("bug")
        await asyncio.Event().wait()  # third run stays up

    tasks = TaskSet()
    tasks.start("flaky", flaky, crashes.append)
    deadline = time.monotonic() + 10
    while len(runs) < 3:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert [str(c) for c in crashes] == ["bug", "bug"]
    await tasks.stop()


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_healthy_run() -> None:
    backoff = Backoff(first=0.5, cap=4.0, healthy=60.0)
    assert [backoff.after(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.after(61.0) == 0.5
