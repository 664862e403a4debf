"""Kamailio's JSON-RPC over HTTP (xhttp + jsonrpcs): one async client, a timeout on every call.

A large ``ul.dump`` can leave Kamailio's reply hanging (too little private memory), so no
call waits longer than ``timeout`` seconds in total, whatever the socket does meanwhile.
Failures become :class:`~server.collectors.base.SourceError` with an operator-readable text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..base import SourceError

# httpx logs every request at INFO: one line per poll and per hint would drown rtm's log.
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
# A 20,000-contact ul.dump is ~11 MB; refuse replies far beyond anything sane.
MAX_REPLY_BYTES = 256 * 1024 * 1024


class RpcError(SourceError):
    """Kamailio answered with a JSON-RPC error object (e.g. 500 "AOR not found")."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"Kamailio {method}: {code} {message}")
        self.code = code
        self.message = message


class RpcTimeout(SourceError):
    """Kamailio did not answer within the call's limit (it may still be building the reply)."""


def http_url(source_url: str) -> str:
    """``kamailio+http://127.0.0.1:8088/RPC`` → ``http://127.0.0.1:8088/RPC`` (https too)."""
    parts = urlsplit(source_url)
    scheme = parts.scheme.split("+", 1)[-1]
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{source_url!r}: expected kamailio+http://host:port/RPC")
    return urlunsplit((scheme, parts.netloc, parts.path or "/RPC", parts.query, ""))


class KamailioRpc:
    """A JSON-RPC 2.0 client for one Kamailio endpoint (one keep-alive HTTP connection)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)
        # Only the connect has its own limit: Kamailio says nothing while it builds a large
        # reply, so the whole call is bounded by ``within`` instead (see ``call``).
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=min(timeout, CONNECT_TIMEOUT)),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        )

    async def call(self, method: str, *params: Any, within: float | None = None) -> Any:
        """Call ``method``; return its ``result``. Raises RpcError or SourceError.

        ``within`` seconds (default: the client's timeout) bound the whole call, body included.
        """
        limit = self.timeout if within is None else within
        request: dict[str, Any] = {
            "jsonrpc": "2.0",
            "method": method,
            "params": list(params),
            "id": next(self._ids),
        }
        try:
            async with asyncio.timeout(limit):
                reply = await self._post(request)
        except TimeoutError as exc:
            raise RpcTimeout(f"Kamailio {method}: no reply within {limit:g} s") from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"Kamailio {method} at {self.url}: {_describe(exc)}") from exc
        error = reply.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else error
            raise RpcError(method, code if isinstance(code, int) else 0, str(text))
        return reply.get("result")

    async def _post(self, request: dict[str, Any]) -> dict[str, Any]:
        # Kamailio sends a JSON-RPC error with the error's code as HTTP status (500 "AOR not
        # found"), so the body is read whatever the status and decides.
        async with self._client.stream("POST", self.url, json=request) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise SourceError(f"Kamailio JSON-RPC reply over {MAX_REPLY_BYTES} bytes")
        try:
            reply = json.loads(b"".join(chunks))
        except ValueError as exc:
            raise SourceError(
                f"Kamailio JSON-RPC at {self.url}: HTTP {response.status_code}, not JSON"
            ) from exc
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise SourceError(f"Kamailio JSON-RPC at {self.url}: HTTP {response.status_code}")
        return reply

    async def close(self) -> None:
        await self._client.aclose()


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is Kamailio running, xhttp + jsonrpcs loaded?)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__
