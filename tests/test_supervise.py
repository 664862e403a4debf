"""Background tasks that crash are reported and restarted; stop() cancels them all."""

from __future__ import annotations

import asyncio

import pytest

from server.supervise import Backoff, TaskSet, first_of

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


@pytest.mark.asyncio
async def test_first_of_two_failing_at_once_raises_one_and_leaves_none_unretrieved() -> None:
    """A WebSocket's pump and reader can both fail in one turn (the client gone): one
    error is raised, the other retrieved, none logged "never retrieved" at collection."""
    import gc

    unhandled: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    gone = asyncio.Event()

    async def fails(error: Exception) -> None:
        await gone.wait()
        raise error

    async def lingers() -> None:
        await asyncio.Event().wait()

    loop.call_soon(gone.set)
    raised = ""
    try:
        await first_of(fails(ValueError("first")), fails(KeyError("second")), lingers())
    except ValueError as exc:
        raised = str(exc)  # not the exception: its traceback would keep the tasks alive
    gc.collect()  # a task whose exception nobody took says so when it is collected
    loop.set_exception_handler(None)
    assert raised == "first"
    assert not unhandled, [context.get("message") for context in unhandled]
