"""A client that stops reading, against a real rtm: others unaffected, it is resynced."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from server.hub import HubStats
from server.ws import BIG_FRAME, Sender

from .conftest import StartRtm
from .live_server import UNIT
from .mirror import Mirror
from .store_rows import add_contacts, contact_params
from .waiting import LoopTurns

pytestmark = pytest.mark.asyncio


async def test_stalled_client_is_resynced_and_others_keep_up(start_rtm: StartRtm) -> None:
    server = start_rtm(env={"RTM_CLIENT_QUEUE_FRAMES": "4", "RTM_POLL_ACCOUNTS": "0.2"})
    # max_queue=1 and no compression: this client buffers one frame, then its socket fills.
    async with server.ws(max_queue=1, compression=None) as stalled_ws, server.ws() as ws:
        stalled = Mirror(stalled_ws)
        await stalled.start()
        healthy = await Mirror(ws).start()
        # 30 MB in all: more than the loopback socket buffers on both sides can absorb.
        agent = "PrivateGSM " + "x" * 5000
        batches = 60
        for batch in range(batches):
            add_contacts(
                server.db, [contact_params(f"u{batch}-{i}", user_agent=agent) for i in range(100)]
            )
            expected = (batch + 1) * 100
            await healthy.until(lambda m, n=expected: len(m.tables["accounts"]) == n)
        assert server.get("/healthz").json()["resyncs"] >= 1
        # Once it reads again, the stalled client catches up to exactly the server's state.
        await stalled.until(lambda m: len(m.tables["accounts"]) == batches * 100, 30 * UNIT)
        assert any(f["type"] == "snapshot" for f in stalled.frames[4:])
        assert stalled.tables == healthy.tables


async def test_a_big_snapshot_to_a_socket_that_takes_everything_lets_the_loop_run() -> None:
    # A fast reader never makes a send wait: the sender itself must give the loop turns
    # between snapshot pages, or a million rows hold every other client for their length.
    turns: list[int] = []

    async def send_text(frame: str) -> None:  # takes everything at once, never waits
        turns.append(counting.count)

    app = SimpleNamespace(state=SimpleNamespace(hub=SimpleNamespace(stats=HubStats())))
    socket = SimpleNamespace(scope={}, app=app, send_text=send_text)
    sender = Sender(socket, timeout=10)  # type: ignore[arg-type]
    with LoopTurns() as counting:
        await sender.send(["x" * (BIG_FRAME + 1)] * 4)
    assert len(set(turns)) == 4  # the loop ran between every two pages
