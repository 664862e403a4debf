"""kill -9 an instance of a real cluster under writes: the lease moves within 5 s and every
client, on either instance, ends with the store's state; through HAProxy they resume."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ..live_server import UNIT, RtmServer
from ..services import HAProxy
from ..store_rows import add_contact, delete_contact
from ..waiting import eventually
from .clients import Follower, start_all, stop_all
from .conftest import Cluster

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def writing(cluster: Cluster, per_second: float = 40) -> AsyncIterator[list[str]]:
    """Register and drop contacts in the store while the body runs (as Kamailio would)."""
    held: list[str] = []
    stop = asyncio.Event()

    async def write() -> None:
        rng = random.Random(7)
        n = 0
        while not stop.is_set():
            if held and rng.random() < 0.3:
                ruid = held.pop(rng.randrange(len(held)))
                await asyncio.to_thread(delete_contact, cluster.db, ruid)
            else:
                held.append(await asyncio.to_thread(add_contact, cluster.db, f"w{n}"))
                n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_second)

    task = asyncio.create_task(write())
    try:
        yield held
    finally:
        stop.set()
        await task


def to_first_alive(servers: list[RtmServer]) -> Callable[[], Any]:
    """A client's connect: its own instance while it lives, else the next one alive."""

    def connect() -> Any:
        alive = [s for s in servers if s.proc is not None and s.proc.poll() is None]
        return alive[0].ws()

    return connect


async def settled(cluster: Cluster, followers: list[Follower]) -> None:
    """Every client holds exactly the store's contacts (and none of their tasks failed)."""
    want = await asyncio.to_thread(cluster.store_ruids)

    def equal() -> bool:
        for follower in followers:
            if follower.task is not None and follower.task.done():
                follower.task.result()  # a seq gap or duplicate fails here
        return all(set(f.accounts()) == want for f in followers)

    try:
        await eventually(equal, 15 * UNIT, "every client equal to the store")
    except TimeoutError:
        wrong = [f for f in followers if set(f.accounts()) != want]
        sample = wrong[0]
        have = set(sample.accounts())
        raise AssertionError(
            f"{len(wrong)} clients differ; one lacks {sorted(want - have)[:5]} and has"
            f" {sorted(have - want)[:5]} extra; reconnects {sample.reconnects};"
            f" status {[cluster.status(s) for s in cluster.live()]}"
        ) from None


async def test_kill_the_leader_another_takes_over_and_no_client_loses_anything(
    cluster: Cluster,
) -> None:
    leader = cluster.leader()
    other = next(s for s in cluster.instances if s is not leader)
    for i in range(20):
        add_contact(cluster.db, f"before{i}")
    followers = [
        Follower(to_first_alive([leader, other] if i % 2 else [other, leader])) for i in range(100)
    ]
    await start_all(followers)
    try:
        async with writing(cluster):
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            killed = time.monotonic()
            assert leader.proc is not None
            leader.proc.send_signal(signal.SIGKILL)
            await eventually(
                lambda: cluster.status(other)["role"] == "leader", 5 * UNIT, "takeover in 5 s"
            )
            took_over = time.monotonic() - killed
            # writes go on under the new leader for a while
            seq = cluster.status(other)["seq"]["accounts"]
            await eventually(
                lambda: cluster.status(other)["seq"]["accounts"] > seq + 20, 10 * UNIT, "writes"
            )
        await settled(cluster, followers)
        assert took_over < 5 * UNIT
        moved = [f for f in followers if f.reconnects]
        assert len(moved) == 50, "the killed instance's clients reconnected to the other"
    finally:
        await stop_all(followers)


async def test_kill_an_instance_behind_haproxy_its_clients_resume_on_the_other(
    cluster: Cluster, balancer: HAProxy
) -> None:
    leader = cluster.leader()
    for i in range(20):
        add_contact(cluster.db, f"before{i}")

    followers = [Follower(lambda: _ws(balancer, leader)) for _ in range(40)]
    await start_all(followers)
    try:
        async with writing(cluster, per_second=20):
            await eventually(lambda: len(followers[0].accounts()) > 25, 10 * UNIT, "writes")
            victim = cluster.leader()  # the harder case: the instance leading dies too
            survivor = next(s for s in cluster.instances if s is not victim)
            start = cluster.status(survivor)
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)
            await eventually(
                lambda: cluster.status(survivor)["role"] == "leader", 5 * UNIT, "takeover"
            )
        await settled(cluster, followers)
        moved = [f for f in followers if f.reconnects]
        assert moved, "some clients were on the killed instance"
        after = cluster.status(survivor)
        assert after["resumed"] - start["resumed"] >= len(moved)
        assert after["snapshots_sent"] == start["snapshots_sent"], "a resume, not a snapshot"
        assert sum(f.snapshots_after_reconnect for f in moved) == 0
    finally:
        await stop_all(followers)


def _ws(balancer: HAProxy, server: RtmServer) -> Any:
    """A socket through HAProxy with ``server``'s credentials (one store: valid on all)."""
    from websockets.asyncio.client import connect

    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in server.cookies.items())}
    return connect(
        balancer.ws_url,
        additional_headers=headers,
        origin=balancer.url,  # type: ignore[arg-type]
        open_timeout=10 * UNIT,
    )
