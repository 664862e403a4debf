"""WebSocket frames prepared once for every client, and uvicorn's protocol that writes them.

At 1,000 clients, websockets' permessage-deflate compressed each frame once per client (with
that client's compression context) and wrote it through the protocol's own buffer: most of
rtm's CPU while following a busy table. Here permessage-deflate is negotiated without server
context takeover (RFC 7692 lets a server add ``server_no_context_takeover`` even when the
client did not offer it), so a frame's bytes depend only on its text and the window size:
they are built once, kept in a small cache keyed by the frame string (every client is sent
the same ``str`` within milliseconds) and written straight to each client's transport. A
client without permessage-deflate gets the uncompressed frame, built once too.

The price: small diffs compress less without the context of the frames before them
(docs/benchmarks.md, issue 10).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

# The ASGI scope extension through which the app finds the connection's protocol: Starlette's
# middleware wraps ``send`` in closures, so the send callable does not lead back to it.
EXTENSION = "rtm.prepared_frames"
# uvicorn's own permessage-deflate settings, plus no server context takeover.
WINDOW_BITS = 12
MEM_LEVEL = 5
# A handful of frames are in flight at any moment (one diff each table and poll, a source
# change); snapshot pages (hundreds of KB each) are bounded by bytes.
CACHE_FRAMES = 256
CACHE_BYTES = 32 << 20
PLAIN = 0  # the cache key's window bits for a frame sent without permessage-deflate


class SocketClosed(Exception):
    """The connection is closed or closing: nothing more may be sent on it."""


class PreparedFrames:
    """A bounded LRU of serialized text frames, by (frame string, window bits or PLAIN)."""

    def __init__(self, max_frames: int = CACHE_FRAMES, max_bytes: int = CACHE_BYTES) -> None:
        self._frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._bytes = 0
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.built = 0  # frames serialized (and compressed) so far: one per text and window

    def get(self, text: str, window_bits: int) -> bytes:
        key = (text, window_bits)
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
            return frame
        frame = serialize(text, window_bits)
        self.built += 1
        size = len(text) + len(frame)
        if size <= self.max_bytes:
            self._frames[key] = frame
            self._bytes += size
            while len(self._frames) > self.max_frames or self._bytes > self.max_bytes:
                (old, _), dropped = self._frames.popitem(last=False)
                self._bytes -= len(old) + len(dropped)
        return frame

    def __len__(self) -> int:
        return len(self._frames)


def serialize(text: str, window_bits: int) -> bytes:
    """One unmasked text frame, compressed by websockets' own permessage-deflate without
    context takeover (a fresh raw deflate per message) unless ``window_bits`` is PLAIN."""
    frame = Frame(Opcode.TEXT, text.encode())
    if window_bits == PLAIN:
        return frame.serialize(mask=False)
    return frame.serialize(mask=False, extensions=[_deflate(window_bits)])


@functools.cache
def _deflate(window_bits: int) -> PerMessageDeflate:
    # Stateless for sending: with local_no_context_takeover it makes a new encoder per
    # message (and it never decodes here).
    return PerMessageDeflate(True, True, 15, window_bits, {"memLevel": MEM_LEVEL})


FRAMES = PreparedFrames()  # one per process: every connection shares it


class PreparedFrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, negotiating permessage-deflate without server
    context takeover, that can write a text frame prepared once for every client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:
            factory = ServerPerMessageDeflateFactory(
                server_no_context_takeover=True,
                server_max_window_bits=WINDOW_BITS,
                client_max_window_bits=WINDOW_BITS,
                compress_settings={"memLevel": MEM_LEVEL},
            )
            self.conn = ServerProtocol(
                extensions=[factory], max_size=self.config.ws_max_size, logger=self.conn.logger
            )
        self._window_bits: int | None = None  # known once the handshake is done

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            self.scope["extensions"][EXTENSION] = {"protocol": self}

    def window_bits(self) -> int | None:
        """PLAIN, or the negotiated window for prepared deflate frames; None when this
        connection's frames cannot be shared (an extension keeping context)."""
        if self._window_bits is None:
            extensions = self.conn.extensions
            if not extensions:
                self._window_bits = PLAIN
            elif (
                len(extensions) == 1
                and isinstance(extensions[0], PerMessageDeflate)
                and extensions[0].local_no_context_takeover
            ):
                self._window_bits = extensions[0].local_max_window_bits
            else:
                self._window_bits = -1
        return None if self._window_bits < 0 else self._window_bits

    def write_now(self, text: str) -> int:
        """Write ``text`` as one prepared frame if the transport takes it now; the bytes
        written, or 0 when it cannot (paused by uvicorn's flow control, or no shared
        frames on this connection). Raises SocketClosed once the socket is closing."""
        if self.disconnected or self.close_sent or self.transport.is_closing():
            raise SocketClosed()
        if self.conn.state is not State.OPEN:
            raise SocketClosed()
        bits = self.window_bits()
        if bits is None or not self.writable.is_set():
            return 0
        frame = FRAMES.get(text, bits)
        self.transport.write(frame)
        return len(frame)

    async def send_prepared(self, text: str) -> int:
        """Send ``text`` once uvicorn's flow control allows; the bytes written (the text's
        length when the frame went through websockets' own encoder)."""
        await self.writable.wait()
        written = self.write_now(text)
        if written:
            return written
        try:
            await self.send({"type": "websocket.send", "text": text})  # no shared frames here
        except OSError as exc:  # uvicorn's ClientDisconnected
            raise SocketClosed() from exc
        return len(text.encode())
