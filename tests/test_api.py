"""The JSON API's routes are explicit: one per table, and JSON for a path that has none."""

from __future__ import annotations

import warnings
from pathlib import Path

from server import store
from server.app import create_app
from server.auth import Auth
from server.auth.sessions import COOKIE_NAME
from server.config import TABLES, Config

from .credentials import ADMIN, ADMIN_PASSWORD

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
    client = TestClient(app, cookies={COOKIE_NAME: auth.sessions.start("user", ADMIN)})
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
