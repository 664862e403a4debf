"""Fixtures shared by every test: a real rtm on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from server import store

from . import credentials
from .live_server import RtmServer

StartRtm = Callable[..., RtmServer]


@pytest.fixture
def start_rtm(tmp_path: Path) -> Iterator[StartRtm]:
    """Start real rtm servers: ``start_rtm(env={...}, seed=callable(db_path))``.

    Each gets its own store under tmp_path (migrated before start, then ``seed(db)`` if
    given), an admin session in ``server.cookies`` unless ``users=False`` (a first start:
    no user at all), and is stopped at teardown.
    """
    servers: list[RtmServer] = []

    def start(
        env: Mapping[str, str] | None = None,
        seed: Callable[[str], None] | None = None,
        name: str = "rtm",
        users: bool = True,
    ) -> RtmServer:
        workdir = tmp_path / f"{name}{len(servers)}"
        workdir.mkdir()
        server = RtmServer(workdir, env)
        store.migrate(server.db)
        if seed is not None:
            seed(server.db)
        if users:
            credentials.grant(server)  # an admin session in server.cookies
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def rtm_server(start_rtm: StartRtm) -> RtmServer:
    """A real rtm on the embedded store (empty, migrated), default settings."""
    return start_rtm()


# Real PostgreSQL and Redis servers for the cluster tests (tests/services.py).
from .services import postgres, redis_server  # noqa: E402, F401
