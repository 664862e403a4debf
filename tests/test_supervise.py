"""Background tasks that crash are reported and restarted; stop() cancels them all."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.supervise import TaskSet

pytestmark = pytest.mark.asyncio


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
