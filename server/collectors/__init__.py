"""Collectors: one source per file, each behind the one small Protocol in ``base.py``, and
the ``runner.py`` that polls them all into the hub.

Sources by URL: each (scheme, table) names the module whose ``open_source`` builds it.
Modules are imported lazily so a source's dependencies load only when it is used.

May import: server.rows, server.config, server.times, server.sip, and (the runner, to
publish) server.hub and server.supervise. Never the app, ws, api, auth or the demo.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from ..config import Config
from .base import Collector

SOURCES: dict[tuple[str, str], str] = {
    ("sqlite", "accounts"): "server.collectors.registrations",
    ("sqlite", "trunks"): "server.collectors.trunks",
    ("sqlite", "queue"): "server.collectors.queue",
    ("kamailio+http", "accounts"): "server.collectors.kamailio.registrations",
    ("kamailio+http", "trunks"): "server.collectors.kamailio.trunks",
    ("options", "trunks"): "server.collectors.options",
    ("msilo+sqlite", "queue"): "server.collectors.msilo",
    ("postgresql", "accounts"): "server.collectors.postgres.registrations",
    ("postgresql", "trunks"): "server.collectors.postgres.trunks",
    ("postgresql", "queue"): "server.collectors.postgres.queue",
    # libpq's other spelling of the same URL.
    ("postgres", "accounts"): "server.collectors.postgres.registrations",
    ("postgres", "trunks"): "server.collectors.postgres.trunks",
    ("postgres", "queue"): "server.collectors.postgres.queue",
}


def open_source(table: str, url: str, config: Config) -> Collector:
    """Build the collector for ``table`` from its URL; ValueError names an unknown scheme."""
    scheme = urlsplit(url).scheme
    module_name = SOURCES.get((scheme, table))
    if module_name is None:
        known = sorted({s for s, t in SOURCES if t == table})
        raise ValueError(
            f"unknown source scheme {scheme!r} for {table} in {url!r}; known: {', '.join(known)}"
        )
    module = importlib.import_module(module_name)
    collector: Collector = module.open_source(table, url, config)
    return collector
