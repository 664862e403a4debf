"""A collector's change-feed cycle, against a full fetch of the same store.

The store holds about 10k registered contacts written by the demo generator. An
unchanged store should cost one ``PRAGMA data_version`` per ask; one refreshed contact
should cost reading that contact from the change log and publishing it, whatever the
table's size; the runner's whole cycle (ask, apply, expire) is measured too.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.collectors.registrations import RegistrationCollector
from server.collectors.runner import CollectorRunner
from server.demo.run import write_statements
from server.demo.traffic import DemoTraffic
from server.hub import Hub
from server.store import migrate

from .measure import Figure, compared

ACCOUNTS = 15_000  # about 10k of them online


async def _best(run: Callable[[], Awaitable[object]], repeat: int = 5, number: int = 20) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            await run()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def _fill(path: str) -> int:
    migrate(path)
    traffic = DemoTraffic(random.Random(1), ACCOUNTS, time.time())
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for batch in traffic.setup(time.time()):
            write_statements(conn, batch)
        return int(conn.execute("SELECT count(*) FROM location").fetchone()[0])
    finally:
        conn.close()


async def _measure(path: str) -> tuple[float, float, float, float]:
    collector = RegistrationCollector(path)
    runner = CollectorRunner(collector, Hub(["accounts"]), expires_field="expires")
    await runner.poll_once()
    writer = sqlite3.connect(path, isolation_level=None)
    ids = [r[0] for r in writer.execute("SELECT id FROM location")]
    rng = random.Random(2)

    async def one_change() -> float:
        writer.execute("UPDATE location SET cseq = cseq + 1 WHERE id = ?", (rng.choice(ids),))
        started = time.perf_counter()
        changes = await collector.changes()
        assert changes is not None and len(changes) == 1
        runner.apply(changes)
        return time.perf_counter() - started

    try:
        full_fetch = await _best(collector.fetch, number=3)
        unchanged = await _best(collector.changes)
        cycle = await _best(lambda: runner.follow_once(collector))
        changed = min([await one_change() for _ in range(100)])
        return full_fetch, unchanged, cycle, changed
    finally:
        writer.close()
        await collector.close()


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rtm-bench-") as workdir:
        path = str(Path(workdir) / "rtm.db")
        contacts = _fill(path)
        full, unchanged, cycle, changed = asyncio.run(_measure(path))
    against = f"a full fetch of {contacts} contacts"
    return [
        compared("collector", "changes(), unchanged store", unchanged, full, against),
        compared("collector", "runner cycle, unchanged store", cycle, full, against),
        compared("collector", "one refreshed contact: changes() + apply", changed, full, against),
    ]
