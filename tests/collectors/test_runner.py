"""The shared runner with an in-process source: staleness, expiry, hints."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest

from server.collectors.base import RowChanges
from server.collectors.runner import CollectorRunner
from server.hub import Hub
from server.rows import Rows
from server.times import iso, parse_iso

from ..live_server import UNIT
from ..waiting import LoopTurns, eventually

pytestmark = pytest.mark.asyncio


class ScriptedSource:
    """Returns whatever the test puts in ``rows``, or raises ``failure``."""

    table = "accounts"

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] | None = {}
        self.failure: Exception | None = None
        self.calls = 0

    async def fetch(self) -> Rows | None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        rows, self.rows = self.rows, None  # unchanged until the test sets new rows
        return rows

    async def close(self) -> None:
        pass


async def test_failure_keeps_rows_reports_stale_and_recovers() -> None:
    hub, source = Hub(["accounts"]), ScriptedSource()
    runner = CollectorRunner(source, hub, interval=0.05)
    source.rows = {"a": {"id": "a"}}
    await runner.poll_once()
    source.failure = OSError("connection refused")
    await runner.poll_once()
    state = hub.tables["accounts"]
    assert (state.source.ok, state.source.error) == (False, "connection refused")
    assert list(state.rows) == ["a"]
    source.failure = None
    await runner.poll_once()
    assert state.source.ok and state.source.error is None


async def test_a_slow_first_read_is_waited_for_a_hung_later_one_times_out() -> None:
    hub, source = Hub(["accounts"]), ScriptedSource()

    reads = 0

    async def slow_then_hang() -> Rows | None:
        nonlocal reads
        reads += 1
        if reads == 1:  # a first read slower than the timeout is waited for (a big table's
            # first read only starts over when abandoned): this source answers after 0.3 s
            answered = asyncio.Event()
            asyncio.get_running_loop().call_later(0.3, answered.set)
            await answered.wait()
            return {"a": {"id": "a"}}
        await asyncio.Event().wait()  # then never answers
        return None

    source.fetch = slow_then_hang  # type: ignore[method-assign]
    runner = CollectorRunner(source, hub, interval=0.05, timeout=0.1)
    await runner.poll_once()
    assert hub.tables["accounts"].source.ok and set(hub.tables["accounts"].rows) == {"a"}
    await runner.poll_once()
    assert hub.tables["accounts"].source.error == "no answer in time"
    assert set(hub.tables["accounts"].rows) == {"a"}  # kept, stale


async def test_rows_leave_at_their_expiry_between_polls() -> None:
    hub, source = Hub(["accounts"]), ScriptedSource()
    expires = iso(time.time() + 1.2)
    source.rows = {"a": {"id": "a", "expires": expires}, "b": {"id": "b", "expires": None}}
    runner = CollectorRunner(source, hub, interval=30, expires_field="expires")
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: "a" in hub.tables["accounts"].rows, 5 * UNIT, "row a in")
        await eventually(lambda: "a" not in hub.tables["accounts"].rows, 3 * UNIT, "row a out")
        gone = time.time()
        # Gone within the second it expired (not before), with no poll in between.
        assert expires is not None
        assert parse_iso(expires) <= gone <= parse_iso(expires) + 1 * UNIT
        assert source.calls == 1
        assert list(hub.tables["accounts"].rows) == ["b"]
    finally:
        task.cancel()


async def test_hint_changes_only_the_rows_it_names_at_once() -> None:
    hub, source = Hub(["accounts"]), ScriptedSource()
    runner = CollectorRunner(source, hub, interval=30)
    source.rows = {
        "a1": {"id": "a1", "username": "alice"},
        "b1": {"id": "b1", "username": "bob"},
    }
    await runner.poll_once()
    runner.apply(RowChanges(upsert={"a2": {"id": "a2", "username": "alice"}}, delete={"a1"}))
    assert set(hub.tables["accounts"].rows) == {"a2", "b1"}
    assert hub.tables["accounts"].seq == 2


async def test_a_lone_hint_is_published_at_once_a_burst_as_one_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("server.collectors.runner.HINT_BATCH", 0.2 * UNIT)
    hub, source = Hub(["accounts"]), ScriptedSource()
    runner = CollectorRunner(source, hub, interval=30)
    await runner.poll_once()
    table = hub.tables["accounts"]
    first = table.seq

    def hint(name: str) -> None:
        runner.apply_soon(RowChanges(upsert={name: {"id": name, "username": name}}))

    hint("lone")
    assert table.seq == first + 1 and "lone" in table.rows  # no waiting after a quiet spell
    for name in ("b1", "b2", "b3"):  # within the batch: held, then one diff
        hint(name)
    runner.apply_soon(RowChanges(delete={"b2"}))  # a later hint about a row wins
    assert table.seq == first + 1 and "b1" not in table.rows
    await eventually(lambda: "b1" in table.rows, 5 * UNIT, "the burst published")
    assert table.seq == first + 2 and {"b1", "b3"} <= set(table.rows) and "b2" not in table.rows


async def test_watch_is_restarted_after_a_crash() -> None:
    hub, source = Hub(["accounts"]), ScriptedSource()
    starts: list[float] = []

    async def watch(replace: Any) -> None:
        starts.append(time.monotonic())
        raise ConnectionError("evapi went away")

    source.watch = watch  # type: ignore[attr-defined]
    runner = CollectorRunner(source, hub, interval=30)
    task = asyncio.create_task(runner.watch())
    try:
        await eventually(lambda: len(starts) >= 2, 5 * UNIT, "a restarted watch")
    finally:
        task.cancel()


async def test_a_refreshed_row_keeps_its_new_expiry_and_others_their_old() -> None:
    now = [1000.0]
    hub, source = Hub(["accounts"]), ScriptedSource()
    runner = CollectorRunner(
        source, hub, interval=30, expires_field="expires", clock=lambda: now[0]
    )
    source.rows = {
        "a": {"id": "a", "username": "alice", "expires": iso(1010)},
        "b": {"id": "b", "username": "bob", "expires": iso(1010)},
    }
    await runner.poll_once()
    # alice re-registers (a hint brings a new row object); bob's row object is unchanged.
    runner.apply(RowChanges(upsert={"a": {"id": "a", "username": "alice", "expires": iso(1100)}}))
    now[0] = 1050.0
    await runner.poll_once()  # "unchanged", and expiry applied at the clock's time
    assert list(hub.tables["accounts"].rows) == ["a"]


def contacts(n: int, tag: str = "") -> dict[str, dict[str, Any]]:
    return {f"r{i}": {"id": f"r{i}", "username": f"u{i}", "tag": tag} for i in range(n)}


async def read_counting_turns(runner: CollectorRunner, first: Any = None) -> int:
    """Run a full read; how many turns the event loop got while it was taken (``first``
    is called at the first of them)."""
    with LoopTurns(first) as turns:
        await runner.poll_once()
    return turns.count


def big_read(monkeypatch: pytest.MonkeyPatch) -> tuple[Hub, CollectorRunner]:
    """A runner whose source's next full read (35 rows) is over READ_TURN (made 10)."""
    monkeypatch.setattr("server.collectors.runner.READ_TURN", 10)
    hub, source = Hub(["accounts"]), ScriptedSource()
    source.rows = contacts(35)
    return hub, CollectorRunner(source, hub, interval=30)


async def test_a_big_full_read_is_taken_in_turns_and_published_as_one_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, runner = big_read(monkeypatch)
    turns = await read_counting_turns(runner)
    assert turns >= 3  # a million rows in one step held a cluster leader past its lease
    table = hub.tables["accounts"]
    assert table.seq == 1 and table.rows == contacts(35)


async def test_hints_arriving_during_a_read_are_newer_and_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, runner = big_read(monkeypatch)
    newer = {"id": "r30", "username": "u30", "tag": "re-registered"}

    def hint() -> None:
        runner.apply_soon(RowChanges(upsert={"r30": newer}, delete={"r31"}))

    await read_counting_turns(runner, hint)
    rows = hub.tables["accounts"].rows
    assert rows["r30"] == newer and "r31" not in rows and len(rows) == 34


async def test_a_full_read_that_changes_nothing_sets_off_no_collection() -> None:
    """A cluster's new leader reads a million rows it already holds. Objects the cyclic GC
    tracks, made per row and alive together, set off collections; the full ones walk every
    big dict in the process with the GIL held (seconds at a million rows). Counted, not
    timed: gen-0 collections while 20,000 unchanged rows are read."""
    hub, source = Hub(["accounts"]), ScriptedSource()
    held = source.rows = contacts(20_000)
    hub.publish_changes("accounts", held)
    runner = CollectorRunner(source, hub, interval=30)
    gc.collect()
    before = gc.get_stats()[0]["collections"]
    await runner.poll_once()
    collections = gc.get_stats()[0]["collections"] - before
    assert hub.tables["accounts"].seq == 1 and runner._rows == held
    assert collections < 10, f"{collections} collections for 20,000 rows"


@pytest.mark.parametrize("node", [None, "n1"])
async def test_a_new_runner_on_a_hub_holding_the_table_publishes_only_what_changed(
    node: str | None,
) -> None:
    """A cluster's new leader: its hub holds the cluster's state, its runner nothing yet."""
    hub, source = Hub(["accounts"]), ScriptedSource()
    prefix = "" if node is None else f"{node}/"
    if node is not None:
        hub.add_node("accounts", node)
    held = {
        prefix + key: {**row, "id": prefix + key, **({"node": node} if node else {})}
        for key, row in contacts(30).items()
    }
    hub.publish_changes("accounts", held, (), node)
    table = hub.tables["accounts"]
    published = table.seq
    runner = CollectorRunner(source, hub, interval=30, node=node, prefix=prefix)
    source.rows = contacts(30)
    await runner.poll_once()
    assert table.seq == published  # the same rows: nothing to publish
    source.rows = {**contacts(30), "r3": {"id": "r3", "username": "u3", "tag": "moved"}}
    del source.rows["r4"]
    await runner.poll_once()
    assert table.seq == published + 1
    assert table.rows[prefix + "r3"]["tag"] == "moved" and prefix + "r4" not in table.rows
    assert len(table.rows) == 29
