"""SQLite insert → WebSocket upsert latency against a real ``rtm serve`` subprocess.

A contact is inserted into ``location`` (committed, as Kamailio's write-back would) at a
random moment of the change-log cycle, and the clock stops when a websockets client
receives the diff that carries it. How often rtm asks the log (``RTM_CHANGES_INTERVAL``)
bounds the latency, so figures are set against it: p50 near half an interval and p99
under one are the healthy shape; anything above is processing time.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection

from server import store
from tests import credentials
from tests.live_server import RtmServer
from tests.store_rows import CONTACT_SQL, contact_params

from .measure import Figure, compared

# (change-log interval, samples, demo traffic running alongside)
RUNS = ((0.05, 60, True), (0.05, 100, False))


class Arrivals:
    """When each row id first arrived in an accounts diff."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def read(self, ws: ClientConnection) -> None:
        async for text in ws:
            frame = json.loads(text)
            if frame.get("type") == "diff" and frame["table"] == "accounts":
                for row in frame["upsert"]:
                    self.at.setdefault(row["id"], time.perf_counter())
                self.changed.set()

    async def wait_for(self, row_id: str) -> float:
        while row_id not in self.at:
            self.changed.clear()
            await self.changed.wait()
        return self.at[row_id]


async def _latencies(server: RtmServer, interval: float, samples: int) -> list[float]:
    arrivals = Arrivals()
    conn = store.connect(server.db)
    rng = random.Random(1)
    latencies = []
    async with server.ws(max_size=None) as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        reader = asyncio.create_task(arrivals.read(ws))
        try:
            for i in range(samples):
                await asyncio.sleep(rng.uniform(0, interval))  # a random phase of the poll
                params = contact_params(f"bench{i}")
                conn.execute(CONTACT_SQL, params)  # autocommit: visible once it returns
                committed = time.perf_counter()
                arrived = await asyncio.wait_for(arrivals.wait_for(params[0]), 10 + interval)
                latencies.append(arrived - committed)
        finally:
            reader.cancel()
            conn.close()
    return latencies


def _measure(interval: float, samples: int, demo: bool) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="rtm-bench-") as workdir:
        env = {"RTM_CHANGES_INTERVAL": str(interval), "RTM_DEMO": "1" if demo else "0",
               "PYTHONASYNCIODEBUG": ""}  # fmt: skip
        server = RtmServer(Path(workdir), env)
        store.migrate(server.db)
        credentials.grant(server)  # an admin session, as the tests' rtm_server has
        server.start()
        try:
            return asyncio.run(_latencies(server, interval, samples))
        finally:
            server.stop()


def run() -> list[Figure]:
    figures = []
    for interval, samples, demo in RUNS:
        latencies = _measure(interval, samples, demo)
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        load = "with demo traffic" if demo else "quiet store"
        for name, value in (("p50", cuts[49]), ("p99", cuts[98])):
            what = f"insert → upsert {name}, {samples} samples, {load}"
            figures.append(compared("end-to-end", what, value, interval, "the ask interval"))
    return figures
