"""The JSON API's routes are explicit: one per table, and JSON for a path that has none."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

from server import store
from server.app import create_app
from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.config import TABLES, Config

from .credentials import ADMIN, ADMIN_PASSWORD
from .waiting import until

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx works the same for these tests.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient


def test_each_table_has_its_route_and_unknown_api_paths_answer_json(tmp_path: Path) -> None:
    config = Config(db=str(tmp_path / "rtm.db"))
    store.migrate(config.db)
    auth = Auth(config)
    auth.users.add(ADMIN, "admin", ADMIN_PASSWORD)
    app = create_app(config)
    cookies = {COOKIE_NAME: auth.sessions.start("user", ADMIN)}
    with TestClient(app, cookies=cookies) as client:  # the lifespan polls every source once
        check_routes(client)


def check_routes(client: TestClient) -> None:
    for table in TABLES:
        answer = client.get(f"/api/{table}")
        assert answer.status_code == 200
        assert set(answer.json()) == {"epoch", "seq", "rows", "source"}
    for path in ("/api/registrations", "/api/accounts-and-more", "/api/"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json"
        assert "not found" in answer.json()["error"]
    # Admin JSON routes are routes of their own, never read as a table name.
    assert client.get("/api/displays").json() == {"displays": []}
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.text == "Not Found"


def test_ready_once_every_source_was_polled_and_the_store_takes_writes(tmp_path: Path) -> None:
    config = Config(db=str(tmp_path / "rtm.db"))
    app = create_app(config)
    unstarted = TestClient(app)  # no lifespan: no source has been polled
    answer = unstarted.get("/readyz")
    assert answer.status_code == 503
    assert "accounts: not polled yet" in answer.json()["problems"]
    with TestClient(app) as client:
        until(lambda: client.get("/readyz").status_code == 200, 10, "ready")
        locker = sqlite3.connect(config.db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # a writer holding the store
        try:
            answer = client.get("/readyz")
            assert answer.status_code == 503 and "not writable" in answer.json()["problems"][0]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
