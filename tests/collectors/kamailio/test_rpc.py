"""The JSON-RPC client against loopback HTTP servers that misbehave the ways Kamailio can."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.collectors.base import SourceError
from server.collectors.kamailio.rpc import KamailioRpc, RpcError

from ...live_server import UNIT

pytestmark = pytest.mark.asyncio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def rpc_against(handler: Handler, **options: float) -> AsyncIterator[KamailioRpc]:
    """A KamailioRpc (``options`` as its keywords) to a loopback server running ``handler``
    per connection; the client and every connection are closed when the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    rpc = KamailioRpc(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/RPC", **options)
    try:
        yield rpc
    finally:
        await rpc.close()
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def reply(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))


async def test_a_reply_that_never_comes_is_cut_at_the_time_limit() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"jsonrpc"')
        await writer.drain()
        await reader.read()  # hold the connection open, like a stuck Kamailio worker

    async with rpc_against(hang, timeout=10 * UNIT) as rpc:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SourceError, match="no reply within 0.3 s"):
            await rpc.call("ul.dump", within=0.3)
        assert loop.time() - started < 2 * UNIT


async def test_error_objects_sent_with_http_500_are_rpc_errors() -> None:
    async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = {"jsonrpc": "2.0", "error": {"code": 500, "message": "AOR not found"}, "id": 1}
        writer.write(reply("500 AOR not found", json.dumps(body).encode()))
        await writer.drain()

    async with rpc_against(not_found) as rpc:
        with pytest.raises(RpcError) as caught:
            await rpc.call("ul.lookup", "location", "nobody")
        assert caught.value.code == 500


async def test_an_html_error_page_is_a_readable_error() -> None:
    async def proxy_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply("502 Bad Gateway", b"<html>bad gateway</html>"))
        await writer.drain()

    async with rpc_against(proxy_page) as rpc:
        with pytest.raises(SourceError, match="HTTP 502, not JSON"):
            await rpc.call("ul.dump")
