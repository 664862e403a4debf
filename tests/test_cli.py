"""``rtm serve`` refuses a bad setting with one clear line and exit code 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import TABLES, Config, ConfigError, is_postgres

from .live_server import UNIT, free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RTM_TZ": "Mars/Olympus_Mons"}, "RTM_TZ: unknown time zone"),
        ({"RTM_PORT": "eighty"}, "RTM_PORT: 'eighty' is not a number"),
        ({"RTM_POLL_QUEUE": "0"}, "RTM_POLL_QUEUE"),
        ({"RTM_REGISTRATIONS": "gopher://x/RPC"}, "unknown source scheme 'gopher' for accounts"),
        ({"RTM_QUEUE": "sqlite://host/x.db"}, "a sqlite URL has no host"),
        ({"RTM_TLS_CERT": "/nonexistent.pem"}, "RTM_TLS_CERT and RTM_TLS_KEY go together"),
        ({"RTM_FRAME_ANCESTORS": "'self'; script-src *"}, "RTM_FRAME_ANCESTORS: space-separated"),
        ({"RTM_OPTIONS_TIMEOUT": "0"}, "RTM_OPTIONS_TIMEOUT: 0.0 s is out of"),
        ({"RTM_OPTIONS_CA_FILE": "/nonexistent.pem"}, "RTM_OPTIONS_CA_FILE: no file at"),
        ({"RTM_RING_SIZE": "many"}, "RTM_RING_SIZE: 'many' is not a number"),
        ({"RTM_PUBLIC_URL": "noc.example:8080"}, "RTM_PUBLIC_URL: 'noc.example:8080' is not"),
        ({"RTM_DB": "mysql://rtm:secret@db/rtm"}, "RTM_DB: unknown scheme mysql:// in"),
        # A PostgreSQL that does not answer: one line, no traceback.
        ({"RTM_DB": f"postgresql://rtm@127.0.0.1:{free_port()}/rtm"}, "rtm: "),
    ],
)
def test_bad_settings_exit_2_with_the_setting_named(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        env={**os.environ, "RTM_DB": str(tmp_path / "rtm.db"), "RTM_PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # a URL's password is never echoed
    assert not (REPO / "mysql:").exists()  # once, such a URL became a relative folder


def test_rtm_db_is_a_path_or_a_postgresql_url() -> None:
    config = Config(db="postgres://rtm@db.example/rtm").validate()
    assert config.source_urls == dict.fromkeys(TABLES, "postgresql://rtm@db.example/rtm")
    assert Config(db="var/rtm.db").source_urls["queue"] == "sqlite:///var/rtm.db"
    assert is_postgres("postgresql://x/y") and not is_postgres("/var/lib/rtm/rtm.db")
    for wrong in ("mysql://x/y", "sqlite:///var/rtm.db", "redis://127.0.0.1"):
        with pytest.raises(ConfigError, match="RTM_DB: unknown scheme .*postgresql://"):
            Config(db=wrong).validate()


def test_help_speaks_to_an_operator() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0
    assert "rtm serve' runs the dashboard" in " ".join(result.stdout.split())
    assert "``" not in result.stdout  # no developer docstring markup
