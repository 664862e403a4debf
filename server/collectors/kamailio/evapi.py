"""Kamailio ``evapi`` hints: events Kamailio pushes over TCP the moment something changes.

evapi frames each message as a netstring (``34:{"event":...},``) by default
(``netstring_format 1``); with ``netstring_format 0`` it writes the bare data, which we
split as consecutive JSON objects. Events are hints only: a frame that is not a JSON object
is skipped, and a lost connection ends ``watch_events`` so the runner reconnects with
backoff while polling carries on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from ..base import SourceError

CONNECT_TIMEOUT = 5.0
MAX_FRAME = 64 * 1024


class EvapiFramer:
    """Splits evapi's byte stream into messages (netstrings or bare JSON objects)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every complete message. Raises ValueError on garbage."""
        self._buffer += data
        messages: list[bytes] = []
        while self._buffer:
            message = self._next()
            if message is None:
                break
            messages.append(message)
        if len(self._buffer) > MAX_FRAME + 16:
            raise ValueError(f"evapi frame over {MAX_FRAME} bytes")
        return messages

    def _next(self) -> bytes | None:
        buffer = self._buffer.lstrip(b" \r\n\t")
        self._buffer = buffer
        if not buffer:
            return None
        if buffer[:1].isdigit():
            head, colon, rest = buffer.partition(b":")
            if not colon:
                if len(head) > 7:
                    raise ValueError("evapi netstring length too long")
                return None
            if not head.isdigit() or int(head) > MAX_FRAME:
                raise ValueError("evapi netstring length is not a number within limits")
            size = int(head)
            if len(rest) < size + 1:
                return None
            if rest[size : size + 1] != b",":
                raise ValueError("evapi netstring not terminated by ','")
            self._buffer = rest[size + 1 :]
            return rest[:size]
        if not buffer.startswith(b"{"):
            raise ValueError("evapi sent neither a netstring nor a JSON object")
        return self._next_json()

    def _next_json(self) -> bytes | None:
        text = self._buffer.decode("utf-8", errors="replace")
        try:
            _, end = self._decoder.raw_decode(text)
        except json.JSONDecodeError:
            return None  # incomplete; wait for more (feed() bounds the buffer)
        message = text[:end].encode()
        self._buffer = text[end:].encode()
        return message


def evapi_address(url: str) -> tuple[str, int]:
    """``tcp://127.0.0.1:8448`` → ("127.0.0.1", 8448)."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError(f"{url!r}: expected tcp://host:port for RTM_KAMAILIO_EVAPI")
    return parts.hostname, parts.port


async def watch_events(
    url: str, on_connect: Callable[[], None] = lambda: None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the event objects of each read (a burst arrives as one batch); raise SourceError
    when the link fails. ``on_connect`` runs once the link is up, before any event."""
    host, port = evapi_address(url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"evapi {url}: cannot connect ({exc or 'timed out'})") from exc
    on_connect()
    framer = EvapiFramer()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                raise SourceError(f"evapi {url}: Kamailio closed the connection")
            try:
                messages = framer.feed(data)
            except ValueError as exc:
                raise SourceError(f"evapi {url}: {exc}") from exc
            events = [e for e in map(_decode, messages) if e is not None]
            if events:
                yield events
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


def _decode(message: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
