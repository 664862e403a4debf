"""Several sources feeding one table, one per SIP node (``RTM_REGISTRATIONS``, ``RTM_TRUNKS``).

A table's setting names one source URL or several, separated by whitespace (a URL has no
spaces). Each is a node, named by a ``node=`` query parameter or else by its host:port; a
Kamailio node's events come from an ``evapi=`` parameter. Both are removed before the
source sees its URL. One URL without ``node=`` is a single source, exactly as before:
its rows are neither renamed nor stamped. Otherwise every row carries its ``node`` and,
when the table has more than one node, an id starting with ``node:`` so ids stay unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from ..config import Config, ConfigError, redacted_url
from . import open_source
from .base import Collector

SETTINGS = {"accounts": "RTM_REGISTRATIONS", "trunks": "RTM_TRUNKS", "queue": "RTM_QUEUE"}
# Query parameters that are rtm's, not the source's.
OURS = ("node", "evapi")
# A node's name shows on the page and in metric labels: short and plain.
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


@dataclass(frozen=True)
class NodeURL:
    """One source of a table: its URL (without rtm's parameters) and its node's name."""

    url: str
    node: str | None  # None: the table's only source, not named
    evapi: str = ""  # its Kamailio's evapi address (``evapi=``), if any


@dataclass(frozen=True)
class NodeCollector:
    """A node's collector and how the runner publishes it (node name, id prefix)."""

    collector: Collector
    node: str | None
    prefix: str


def parse_sources(setting: str, value: str) -> list[NodeURL]:
    """The sources a setting names; ConfigError (naming ``setting``) for an empty list, a
    URL rtm cannot read, a bad or duplicate node name."""
    urls = value.split()
    if not urls:
        raise ConfigError(f"{setting}: no source URL")
    parsed = [_parse_one(setting, url, several=len(urls) > 1) for url in urls]
    seen: set[str] = set()
    for source in parsed:
        if source.node is not None and source.node in seen:
            raise ConfigError(
                f"{setting}: node {source.node!r} is named twice; name each with node=NAME"
            )
        seen.add(source.node or "")
    return parsed


def _parse_one(setting: str, url: str, *, several: bool) -> NodeURL:
    shown = redacted_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{setting}: {shown!r} is not a URL ({exc})") from exc
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", parts.scheme):
        raise ConfigError(f"{setting}: {shown!r} is not a URL (no scheme://)")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    node = params.get("node")
    if node is None and several:
        if host is None:
            raise ConfigError(f"{setting}: {shown!r} has no host:port; name it with node=NAME")
        node = host if port is None else f"{host}:{port}"
    if node is not None and not NODE_NAME.match(node):
        raise ConfigError(
            f"{setting}: node name {node!r} in {shown!r}: 1-64 letters, digits or ._:@-"
        )
    if not any(name in params for name in OURS):
        return NodeURL(url, node)  # as written, byte for byte
    # Only rtm's parameters leave; the source's stay as written (not re-encoded).
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in OURS]
    # String surgery, not urlunsplit: that turns sqlite://// paths into sqlite://.
    head, _, rest = url.partition("?")
    fragment = rest.partition("#")[2]
    clean = head + (f"?{'&'.join(kept)}" if kept else "") + (f"#{fragment}" if fragment else "")
    return NodeURL(clean, node, params.get("evapi", ""))


def open_nodes(table: str, config: Config) -> list[NodeCollector]:
    """Every collector of ``table``'s setting, each with its node and id prefix."""
    setting = SETTINGS[table]
    sources = parse_sources(setting, config.source_urls[table])
    several = len(sources) > 1
    if several and config.kamailio_evapi:
        raise ConfigError(
            "RTM_KAMAILIO_EVAPI: one Kamailio's events, but several nodes; give each its"
            f" own with evapi=tcp://HOST:PORT in its URL in {setting}"
        )
    opened: list[NodeCollector] = []
    for source in sources:
        node_config = config.replace(kamailio_evapi=source.evapi) if source.evapi else config
        try:
            collector = open_source(table, source.url, node_config)
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{setting}: {exc}") from exc
        prefix = f"{source.node}:" if several else ""
        opened.append(NodeCollector(collector, source.node, prefix))
    return opened
