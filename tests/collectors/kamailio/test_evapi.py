"""The evapi client against a real TCP server on loopback playing Kamailio's part."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.collectors.base import SourceError
from server.collectors.kamailio.evapi import watch_events

from ...live_server import UNIT

pytestmark = pytest.mark.asyncio


def netstring(text: str) -> bytes:
    data = text.encode()
    return str(len(data)).encode() + b":" + data + b","


async def test_a_burst_is_one_batch_and_a_close_is_an_error() -> None:
    async def kamailio(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        burst = [
            '{"event":"registered","aor":"alice"}',
            "not json at all",
            '["an", "array"]',
            '{"event":"registered","aor":"bob"}',
            '{"event":"expired","aor":"alice"}',
        ]
        writer.write(b"".join(map(netstring, burst)))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(kamailio, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    batches: list[list[dict[str, Any]]] = []
    try:
        async with asyncio.timeout(5 * UNIT):
            with pytest.raises(SourceError, match="closed the connection"):
                async for batch in watch_events(f"tcp://127.0.0.1:{port}"):
                    batches.append(batch)
    finally:
        server.close()
        await server.wait_closed()
    events = [event["aor"] for batch in batches for event in batch]
    assert events == ["alice", "bob", "alice"]


async def test_nobody_listening_is_an_error_naming_the_url() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(SourceError, match=f"tcp://127.0.0.1:{port}: cannot connect"):
        async for _ in watch_events(f"tcp://127.0.0.1:{port}"):
            pass
