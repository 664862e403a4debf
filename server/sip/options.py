"""A small asyncio SIP OPTIONS client: is a trunk host alive, and how fast does it answer?

One ``probe()`` sends one OPTIONS over UDP, TCP or TLS and returns a ``ProbeResult``: the final
reply's code and phrase, or why there was none (timeout, refused connection, TLS failure), and
the round-trip time from sending the request to the final reply. It never raises for network
trouble, and every byte it reads is treated as hostile: a reply is bounded in size and a phrase
that is not printable text is cleaned before anyone shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
import time
from dataclasses import dataclass

TRANSPORTS = ("UDP", "TCP", "TLS")
# RFC 3261 timer T1: UDP retransmits at T1, 2*T1, 4*T1 ... until the probe times out.
T1 = 0.5
MAX_REPLY_BYTES = 65536
MAX_PHRASE_CHARS = 80


@dataclass(frozen=True)
class ProbeResult:
    """What one OPTIONS got: a final reply (code, phrase) or an error, and the round trip."""

    code: int | None = None
    phrase: str = ""
    error: str | None = None
    latency_ms: float | None = None

    @property
    def reply(self) -> str | None:
        """``"200 OK"`` for a reply, None when there was none."""
        return None if self.code is None else f"{self.code} {self.phrase}".strip()


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the certificate and host name (``ca_file`` adds a CA)."""
    return ssl.create_default_context(cafile=ca_file or None)


async def probe(
    host: str,
    port: int,
    transport: str = "UDP",
    *,
    within: float = 2.0,
    context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Send one OPTIONS to host:port and wait ``within`` s for the reply; never raises on I/O."""
    transport = transport.upper()
    if transport not in TRANSPORTS:
        return ProbeResult(error=f"unsupported transport {transport[:10]!r}")
    try:
        async with asyncio.timeout(within):
            if transport == "UDP":
                return await _probe_udp(host, port)
            tls = (context or tls_context()) if transport == "TLS" else None
            return await _probe_stream(host, port, transport, tls)
    except TimeoutError:
        return ProbeResult(error=f"timeout after {within:.1f} s")
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult(error=f"TLS: {exc.verify_message or exc.reason or 'bad certificate'}")
    except ssl.SSLError as exc:
        return ProbeResult(error=f"TLS: {exc.reason or exc}")
    except ConnectionRefusedError:
        return ProbeResult(error="connection refused")
    except ConnectionResetError:
        return ProbeResult(error="connection reset")
    except socket.gaierror as exc:
        return ProbeResult(error=f"DNS: {exc.strerror or exc}")
    except OSError as exc:
        return ProbeResult(error=exc.strerror or str(exc) or type(exc).__name__)


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def build_options(host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    """The OPTIONS request; its Call-ID and Via branch are fresh for every probe."""
    target = f"{_format_host(host)}:{port}"
    params = "" if transport == "UDP" else f";transport={transport.lower()}"
    branch = "z9hG4bK-rtm-" + secrets.token_hex(8)
    here = f"{_format_host(local[0])}:{local[1]}"
    lines = [
        f"OPTIONS sip:{target}{params} SIP/2.0",
        f"Via: SIP/2.0/{transport} {here};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:rtm-probe@{here}>;tag={secrets.token_hex(6)}",
        f"To: <sip:{target}>",
        f"Call-ID: {secrets.token_hex(12)}@rtm",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:rtm-probe@{here}{params}>",
        "Accept: application/sdp",
        "User-Agent: rtm-options-probe",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii", "replace")


def _header(request: bytes, name: bytes) -> bytes:
    for line in request.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].strip()
    return b""


def parse_status(message: bytes) -> tuple[int, str] | None:
    """``(code, phrase)`` from a SIP reply's status line, or None when it is not a reply."""
    line = message.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0].upper() != b"SIP/2.0" or not parts[1].isdigit():
        return None
    code = int(parts[1])
    if not 100 <= code <= 699:
        return None
    raw = parts[2].decode("utf-8", "replace") if len(parts) == 3 else ""
    phrase = "".join(ch if ch.isprintable() else "?" for ch in raw).strip()
    return code, phrase[:MAX_PHRASE_CHARS]


def _matches(reply: bytes, call_id: bytes) -> bool:
    head = reply.split(b"\r\n\r\n", 1)[0]
    return call_id in (_header(head, b"Call-ID"), _header(head, b"i"))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class _UdpReplies(asyncio.DatagramProtocol):
    """Collects datagrams (bounded) and the error a connected UDP socket reports (ICMP)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=32)

    def datagram_received(self, data: bytes, addr: object) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data[:MAX_REPLY_BYTES])

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(exc)


async def _probe_udp(host: str, port: int) -> ProbeResult:
    loop = asyncio.get_running_loop()
    endpoint, replies = await loop.create_datagram_endpoint(_UdpReplies, remote_addr=(host, port))
    try:
        local = endpoint.get_extra_info("sockname")[:2]
        request = build_options(host, port, "UDP", local)
        call_id = _header(request, b"Call-ID")
        started = time.perf_counter()
        interval = T1
        endpoint.sendto(request)
        while True:
            try:
                async with asyncio.timeout(interval):
                    item = await replies.queue.get()
            except TimeoutError:
                interval *= 2
                endpoint.sendto(request)
                continue
            if isinstance(item, OSError):
                raise item
            status = parse_status(item)
            if status and status[0] >= 200 and _matches(item, call_id):
                return ProbeResult(status[0], status[1], latency_ms=_elapsed_ms(started))
    finally:
        endpoint.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One SIP message from a stream: headers, then the body its Content-Length announces."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise ConnectionResetError("connection closed without a reply") from exc
    except asyncio.LimitOverrunError as exc:
        raise ConnectionResetError("reply headers too large") from exc
    length = _header(head, b"Content-Length") or _header(head, b"l")
    size = int(length) if length.isdigit() else 0
    if size > MAX_REPLY_BYTES:
        raise ConnectionResetError("reply body too large")
    if size:
        await reader.readexactly(size)
    return head


async def _probe_stream(
    host: str, port: int, transport: str, context: ssl.SSLContext | None
) -> ProbeResult:
    reader, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname=host if context else None, limit=MAX_REPLY_BYTES
    )
    try:
        local = writer.get_extra_info("sockname")[:2]
        request = build_options(host, port, transport, local)
        call_id = _header(request, b"Call-ID")
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        while True:
            message = await _read_message(reader)
            status = parse_status(message)
            if status is None and message.strip():
                return ProbeResult(error="not a SIP reply", latency_ms=_elapsed_ms(started))
            if status and status[0] >= 200 and _matches(message, call_id):
                return ProbeResult(status[0], status[1], latency_ms=_elapsed_ms(started))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 0.5)
