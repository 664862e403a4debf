"""Frames prepared once for every client (server/wire.py): a real rtm, real websockets clients
with and without permessage-deflate, and the frames themselves against websockets' decoder."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame
from websockets.streams import StreamReader

from server import wire

from .conftest import StartRtm
from .live_server import UNIT, RtmServer
from .mirror import Mirror
from .store_rows import add_contacts, contact_params, delete_contact, write

# Long enough that a snapshot page is over 64 KiB (the frame's 8-byte length form).
AGENT = "PrivateGSM/4.0 " + "y" * 400


def parse(data: bytes, extensions: list[Any]) -> Frame:
    """One server frame through websockets' own parser (and decoder, if any)."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False, extensions=extensions)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("text", ["{}", '{"a":"é"}' * 3, "x" * 70_000, '{"rows":[1,2]}' * 9_000])
@pytest.mark.parametrize("bits", [wire.PLAIN, 9, 12, 15])
def test_a_prepared_frame_is_what_websockets_decodes(text: str, bits: int) -> None:
    decoder = [PerMessageDeflate(True, True, bits or 15, 15)] if bits else []
    frame = parse(wire.serialize(text, bits), decoder)
    assert frame.data.decode() == text and frame.fin and not frame.rsv1


def test_the_cache_builds_each_frame_once_and_stays_bounded() -> None:
    frames = wire.PreparedFrames(max_frames=3, max_bytes=10_000)
    first = frames.get("a" * 100, 12)
    assert frames.get("a" * 100, 12) is first and frames.built == 1
    assert frames.get("a" * 100, wire.PLAIN) is not first  # per window: another frame
    for n in range(10):
        frames.get(str(n) * 1000, 12)
    assert len(frames) <= 3
    frames.get("z" * 20_000, 12)  # bigger than the whole budget: built, never kept
    assert all(len(text) < 20_000 for text, _ in frames._frames)


@pytest.mark.asyncio
async def test_every_client_gets_every_frame_deflated_or_not(start_rtm: StartRtm) -> None:
    def seed(db: str) -> None:
        add_contacts(db, [contact_params(f"s{i}", user_agent=AGENT) for i in range(300)])

    server = start_rtm(env={"RTM_POLL_ACCOUNTS": "0.2"}, seed=seed)
    narrow = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    async with (
        server.ws(compression=None) as plain_ws,
        server.ws() as deflate_ws,  # what browsers offer
        server.ws(compression=None, extensions=[narrow]) as narrow_ws,
    ):
        assert plain_ws.protocol.extensions == []
        (deflate,) = deflate_ws.protocol.extensions
        assert isinstance(deflate, PerMessageDeflate) and deflate.remote_no_context_takeover
        (small,) = narrow_ws.protocol.extensions
        assert isinstance(small, PerMessageDeflate) and small.remote_max_window_bits == 10
        mirrors = [await Mirror(ws).start() for ws in (plain_ws, deflate_ws, narrow_ws)]
        assert len(mirrors[0].tables["accounts"]) == 300
        assert any(len(raw) > 65536 for raw in mirrors[0].raw)  # a page in the long form
        ruids = list(mirrors[0].tables["accounts"])
        for ruid in ruids[:20]:
            delete_contact(server.db, ruid)
        write(server.db, "UPDATE location SET user_agent = 'changed' WHERE username = 's250'")
        add_contacts(server.db, [contact_params(f"n{i}", user_agent=AGENT) for i in range(50)])
        for mirror in mirrors:
            await mirror.until(lambda m: len(m.tables["accounts"]) == 330, 10 * UNIT)
        await equal_to_the_server(server, mirrors)
    assert mirrors[0].raw[1:] == mirrors[1].raw[1:] == mirrors[2].raw[1:]  # hello's clock aside


async def equal_to_the_server(server: RtmServer, mirrors: list[Mirror]) -> None:
    """Every mirror holds the table ``GET /api/accounts`` answers, brought up to date as the
    page does it (the body may be a few seqs behind: resume from it), at the same seq."""
    body = server.get("/api/accounts").json()
    async with server.ws() as ws:
        fresh = Mirror(ws)
        fresh.tables["accounts"] = {row["id"]: row for row in body["rows"]}
        fresh.seq["accounts"] = body["seq"]
        await fresh.start(body["epoch"], {"accounts": body["seq"]})
    for mirror in mirrors:
        await mirror.until(lambda m: m.seq["accounts"] >= fresh.seq["accounts"], 10 * UNIT)
        assert mirror.seq["accounts"] == fresh.seq["accounts"]
        assert mirror.tables["accounts"] == fresh.tables["accounts"]


def closed_slow(server: RtmServer) -> float:
    for line in server.get("/metrics").text.splitlines():
        if line.startswith('rtm_ws_closed_total{reason="slow"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.asyncio
async def test_a_stalled_client_is_closed_too_slow_and_others_keep_up(start_rtm: StartRtm) -> None:
    env = {"RTM_WS_SEND_TIMEOUT": str(2 * UNIT), "RTM_POLL_ACCOUNTS": "0.2"}
    server = start_rtm(env=env)
    # max_queue=1, no compression: it buffers one frame, then its socket fills.
    async with server.ws(max_queue=1, compression=None) as stalled, server.ws() as ws:
        await stalled.recv()  # hello
        await stalled.send(json.dumps({"type": "resume", "epoch": None, "seq": {}}))
        healthy = await Mirror(ws).start()
        agent = "PrivateGSM " + "x" * 5000
        batch = 0
        while not closed_slow(server):
            assert batch < 200, "the stalled client was never closed"
            add_contacts(
                server.db, [contact_params(f"u{batch}-{i}", user_agent=agent) for i in range(100)]
            )
            batch += 1
            await healthy.until(lambda m, n=batch * 100: len(m.tables["accounts"]) == n)
        assert closed_slow(server) == 1
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # what it buffered, then the close
                await asyncio.wait_for(stalled.recv(), 30 * UNIT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "too slow")
        await equal_to_the_server(server, [healthy])


@pytest.mark.asyncio
async def test_a_client_whose_socket_fills_gets_every_diff_in_order(start_rtm: StartRtm) -> None:
    # An outbox big enough that it never overflows: the frames that found the socket full
    # queue, and the ones after them queue behind until the sender drained them.
    env = {"RTM_CLIENT_QUEUE_BYTES": str(256 << 20), "RTM_POLL_ACCOUNTS": "0.2"}
    server = start_rtm(env=env)
    async with server.ws(max_queue=1, compression=None) as slow_ws, server.ws() as ws:
        slow = await Mirror(slow_ws).start()
        healthy = await Mirror(ws).start()
        agent = "PrivateGSM " + "x" * 5000
        for batch in range(40):  # 20 MB: more than both sides' socket buffers hold
            add_contacts(
                server.db, [contact_params(f"f{batch}-{i}", user_agent=agent) for i in range(100)]
            )
            await healthy.until(lambda m, n=(batch + 1) * 100: len(m.tables["accounts"]) == n)
        await slow.until(lambda m: len(m.tables["accounts"]) == 4000, 30 * UNIT)  # seq checked
        assert not any(frame["type"] == "snapshot" for frame in slow.frames[7:])
        assert server.get("/healthz").json()["resyncs"] == 0
        await equal_to_the_server(server, [slow, healthy])
