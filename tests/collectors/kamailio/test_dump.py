"""The one ul.dump in flight: its schedule (pure), and the runner around it against a fake
JSON-RPC endpoint, for the faults a real Kamailio cannot produce on demand (a dump slower
than the runner's timeout, a dump that never ends)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.collectors import open_source
from server.collectors.kamailio.dump import FIRST_LIMIT, MIN_LIMIT, DumpSchedule
from server.collectors.kamailio.registrations import KamailioRegistrationCollector
from server.collectors.runner import CollectorRunner
from server.config import Config
from server.hub import Hub

from ...live_server import UNIT
from ...waiting import eventually


def test_a_good_dump_sets_the_limit_and_the_duty_cap() -> None:
    schedule = DumpSchedule(every=300, duty=0.02)
    assert schedule.due(0.0) and schedule.limit == FIRST_LIMIT
    schedule.succeeded(started=100.0, took=30.0)  # 100k contacts
    assert schedule.limit == 90.0  # three times what it took
    assert schedule.next_at == 100.0 + 30.0 / 0.02  # the duty cap beats the 300 s reconcile
    schedule.succeeded(started=2000.0, took=1.0)
    assert (schedule.limit, schedule.next_at) == (MIN_LIMIT, 2300.0)


def test_wanted_after_a_reconnect_means_as_soon_as_the_duty_cap_allows() -> None:
    schedule = DumpSchedule(every=300, duty=0.1)
    schedule.succeeded(started=0.0, took=2.0)
    schedule.want(now=5.0)
    assert schedule.next_at == 20.0
    schedule.next_at = float("inf")  # in flight; the link drops again meanwhile
    schedule.want(now=25.0)
    schedule.succeeded(started=21.0, took=2.0)  # started before the reconnect: not enough
    assert schedule.next_at == 41.0


def test_a_link_back_after_a_loss_dumps_at_once_but_once_per_reconcile_interval() -> None:
    schedule = DumpSchedule(every=300, duty=0.02)
    schedule.succeeded(started=0.0, took=30.0)  # 100k: the duty cap says not before 1500 s
    schedule.want(now=40.0, urgent=True)  # Kamailio restarted: the table is stale till a dump
    assert schedule.due(40.0)
    schedule.next_at = float("inf")
    schedule.succeeded(started=40.0, took=1.0)
    schedule.want(now=60.0, urgent=True)  # the link flaps: back to the duty cap
    assert schedule.next_at == 40.0 + 1.0 / 0.02
    schedule.want(now=400.0, urgent=True)  # a reconcile interval later: at once again
    assert schedule.due(400.0)


def test_an_urgent_want_while_a_dump_runs_starts_the_next_when_it_ends() -> None:
    schedule = DumpSchedule(every=300, duty=0.02)
    schedule.next_at = float("inf")  # in flight since 10.0
    schedule.want(now=12.0, urgent=True)
    schedule.succeeded(started=10.0, took=5.0)  # started before the link was back
    assert schedule.due(15.0)


def test_each_timeout_waits_longer_and_gives_the_next_dump_longer() -> None:
    schedule = DumpSchedule(every=300, duty=0.02)
    waits = [schedule.failed(now=0.0, timed_out=True) for _ in range(3)]
    assert waits == [FIRST_LIMIT, 4 * FIRST_LIMIT, 16 * FIRST_LIMIT]
    assert schedule.limit == 600.0  # capped
    refused = DumpSchedule(every=1.0, duty=0.1)
    assert [refused.failed(now=0.0, timed_out=False) for _ in range(3)] == [1.0, 1.0, 1.0]


class FakeKamailio:
    """A JSON-RPC endpoint that answers once ``answering`` is set (a test clears it to hold
    every reply, as a Kamailio busy building a big dump does); counts the dumps asked."""

    def __init__(self) -> None:
        self.answering = asyncio.Event()
        self.answering.set()
        self.dumps = 0
        self.url = ""
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                request = json.loads(await reader.readexactly(length))
                self.dumps += request["method"] == "ul.dump"
                await self.answering.wait()
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": DUMP})
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
                )
                await writer.drain()
        writer.close()


CONTACT = {"Address": "sip:a@127.0.0.1:5062", "Expires": 600, "Ruid": "r1", "CSeq": 1}
INFO = {"AoR": "a", "Contacts": [{"Contact": CONTACT}]}
DUMP = {"Domains": [{"Domain": {"AoRs": [{"Info": INFO}]}}]}


@contextlib.asynccontextmanager
async def fake_kamailio() -> AsyncIterator[FakeKamailio]:
    fake = FakeKamailio()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.url = f"kamailio+http://127.0.0.1:{server.sockets[0].getsockname()[1]}/RPC"
    try:
        yield fake
    finally:
        server.close()
        for writer in fake.writers:
            writer.transport.abort()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def running(source: KamailioRegistrationCollector, hub: Hub) -> AsyncIterator[None]:
    # A runner giving up on fetch after 0.2 s, polling every 50 ms.
    runner = CollectorRunner(source, hub, interval=0.05, timeout=0.2)
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.close()


def asks(hub: Hub) -> int:
    """How many times the runner has asked the accounts source so far."""
    reads = hub.stats.reads.get("accounts")
    return sum(reads.counts) if reads else 0


def source_for(url: str, tmp_path: Path) -> KamailioRegistrationCollector:
    config = Config(db=str(tmp_path / "rtm.db"), poll={"accounts": 0.05})
    source = open_source("accounts", url, config)
    assert isinstance(source, KamailioRegistrationCollector)
    source.patience = 0.1  # below the runner's 0.2 s: fetch answers, the dump goes on
    return source


@pytest.mark.asyncio
async def test_a_dump_slower_than_the_runner_is_asked_once_and_still_arrives(
    tmp_path: Path,
) -> None:
    hub = Hub(["accounts"])
    async with fake_kamailio() as fake, running(source_for(fake.url, tmp_path), hub):
        fake.answering.clear()
        # The runner gives up on fetch seven times while Kamailio still builds the dump...
        await eventually(lambda: asks(hub) >= 7, 5 * UNIT, "seven asks of the source")
        fake.answering.set()
        await eventually(lambda: "r1" in hub.tables["accounts"].rows, 5 * UNIT, "dump arrived")
    assert fake.dumps == 1


@pytest.mark.asyncio
async def test_a_dump_that_times_out_makes_the_source_stale_and_is_not_asked_again_at_once(
    tmp_path: Path,
) -> None:
    hub = Hub(["accounts"])
    async with fake_kamailio() as fake:
        source = source_for(fake.url, tmp_path)
        source.dump.schedule.limit = 0.3 * UNIT
        fake.answering.clear()  # never answers: a hung dump
        async with running(source, hub):
            state = hub.tables["accounts"]
            await eventually(
                lambda: "no reply within" in str(state.source.error), 3 * UNIT, "stale"
            )
            assert "next ul.dump in" in str(state.source.error)
            # The runner polls every 50 ms meanwhile; the backoff (the limit again) holds.
            assert source.dump.schedule.next_at - time.monotonic() > 0.1 * UNIT
            assert fake.dumps == 1 and source.dump.schedule.limit == 0.6 * UNIT
