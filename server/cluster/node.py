"""This instance's part in the cluster: always a follower; the leader too while it holds
the lease. The app's lifespan starts ``follow`` and ``lead`` as supervised tasks.

Becoming leader: the lease is taken, the follower reads the streams to their end, and a
hub of the leader's own is copied from the served one, with the position the last leader's
source stood at (hub.py ``Table.position``); the collectors start into it. A source that can
go on from that position does (collectors/base.py ``Resumable``); any other's first full
read diffs against the state the cluster had. Either way clients see only real changes,
numbered on from the stream's last seq. Losing it (a renewal refused or not
answered, Redis gone, a fenced write, the cluster's epoch replaced): the collectors stop
at once and the instance goes on following. A clean stop releases the lease, so the next
leader need not wait its TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..hub import Hub
from ..supervise import TaskSet
from .follower import Follower
from .keys import Keys
from .lease import ACQUIRE_EVERY, RENEW_EVERY, KeepAlive, Lease
from .publisher import Publisher

log = logging.getLogger("rtm.cluster")

StartCollecting = Callable[[Hub, TaskSet], None]

TAKING_OVER = "a new leader is reading the source (the rows are the cluster's last state)"


def mark_taking_over(source_hub: Hub) -> None:
    """Each table the cluster had read is stale until its collector's first read: nobody
    polled it since the last leader stopped, and that read takes seconds at a million rows
    (~15 s, docs/benchmarks.md), during which a table marked live would not move."""
    for name, state in source_hub.tables.items():
        if not state.source.read:
            continue  # never read: it says so already
        for node in state.node_sources or [None]:
            source_hub.set_source(name, False, TAKING_OVER, node)


class Cluster:
    """The follower, the lease and (while leading) the collectors and publisher."""

    def __init__(self, config: Config, hub: Hub, start_collecting: StartCollecting) -> None:
        import redis.asyncio  # only a cluster needs it

        self.redis: Any = redis.asyncio.from_url(
            config.redis, decode_responses=True, socket_timeout=5, socket_connect_timeout=2
        )
        self.keys = Keys()
        self.hub = hub
        self.config = config
        self.start_collecting = start_collecting
        self.holder = f"{socket.gethostname()}:{config.port}:{os.getpid()}"
        self.follower = Follower(self.redis, self.keys, hub)
        self.lease = Lease(self.redis, self.keys, self.holder)
        self.leading_since: float | None = None
        self.leaderships = 0
        self.keep_alive: KeepAlive | None = None  # renewing the lease while it is held

    async def join(self, within: float = 2.0) -> None:
        """At start-up, before serving: take the cluster's epoch (the first hello carries
        it) and what Redis holds. Redis down: serve anyway; ``follow`` keeps trying."""
        try:
            async with asyncio.timeout(within):
                await self.follower.sync()
        except Exception as exc:  # noqa: BLE001 - the follower reports it as staleness
            log.warning("cluster state unavailable at start: %s", exc)

    async def follow(self) -> None:
        await self.follower.run()

    async def lead(self) -> None:
        """Take the lease whenever it is free (and this hub is the cluster's), and lead."""
        while True:
            try:
                if self.follower.ready_to_lead() and await self.lease.acquire():
                    await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis trouble: the follower says so
                log.warning("leading stopped: %s", str(exc) or type(exc).__name__)
            await asyncio.sleep(ACQUIRE_EVERY)

    async def _lead(self) -> None:
        tasks = TaskSet()
        publishing: asyncio.Task[None] | None = None
        keep_alive: KeepAlive | None = None
        try:
            token = self.lease.value
            assert token is not None
            # Renewed from a thread from the moment it is taken: catching up and copying a
            # million rows took longer than the TTL, and the lease lapsed before the first
            # renewal (bench/cluster.py: five leaderships in fifteen seconds, no diff
            # shown). The thread also carries it through the collectors' first full read,
            # which may hold this loop past the TTL (lease.py, KeepAlive); this loop beats.
            keep_alive = self.keep_alive = KeepAlive(self.config.redis, self.keys, token)
            keep_alive.start()
            await self.follower.caught_up()
            source_hub = self._source_hub()
            publisher = Publisher(
                self.redis, self.keys, token, self.hub.epoch, source_hub, self.follower.ids
            )
            publishing = asyncio.create_task(publisher.run(set(self.follower.missing)))
            self.start_collecting(source_hub, tasks)
            mark_taking_over(source_hub)
            self.leading_since, self.leaderships = time.time(), self.leaderships + 1
            log.info("leading the cluster (lease %s, epoch %s)", token, self.hub.epoch)
            while True:
                keep_alive.beat()
                done, _ = await asyncio.wait({publishing}, timeout=RENEW_EVERY / 4)
                if done:
                    publishing.result()  # raises why it stopped
                    return
                if self.hub.epoch != publisher.epoch:  # Redis lost history (epochs.py)
                    log.warning("the cluster's epoch changed: leading anew")
                    return
                if keep_alive.lost.is_set():
                    log.warning("lost the lease: following")
                    return
        finally:
            if keep_alive is not None:
                keep_alive.stop()
            self.keep_alive = None
            self.leading_since = None
            if publishing is not None:
                publishing.cancel()
                with contextlib.suppress(BaseException):
                    await publishing
            await tasks.stop()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.lease.release()
            self.lease.value = None

    def _source_hub(self) -> Hub:
        """A hub no client reads, holding what the served one holds: the collectors'.

        Its node counts are not kept (nothing reads them), and each SIP node's part of a
        table is found when its collector declares it (``Hub.add_node``): walking a
        million rows here for parts no collector has was a second before leading."""
        source_hub = Hub(self.hub.tables, ring_size=1, ring_bytes=1, frames=False)
        for name, served in self.hub.tables.items():
            state = source_hub.tables[name]
            state.rows, state.seq, state.source = dict(served.rows), served.seq, served.source
            state.position = served.position  # the collectors go on from there (runner.py)
            if self.hub.polled(name):
                source_hub.mark_polled(name)
        return source_hub

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def status(self) -> dict[str, Any]:
        """``GET /api/cluster``: this instance's role, the epoch, resumes and the Redis hop."""
        hops = sorted(self.follower.hops)
        stats = self.hub.stats

        def ms(q: float) -> float | None:
            return round(hops[min(len(hops) - 1, int(q * len(hops)))] * 1000, 3) if hops else None

        return {
            "instance": self.holder,
            "role": "leader" if self.leading_since is not None else "follower",
            "leading_since": self.leading_since,
            "leaderships": self.leaderships,
            "epoch": self.hub.epoch,
            "available": self.follower.available,
            "seq": {name: state.seq for name, state in self.hub.tables.items()},
            "resumed": stats.resumed,
            "snapshots_sent": stats.snapshots_sent,
            "redis_hop_ms": {
                "count": len(hops),
                "p50": ms(0.5),
                "p99": ms(0.99),
                "mean": round(statistics.fmean(hops) * 1000, 3) if hops else None,
            },
        }
