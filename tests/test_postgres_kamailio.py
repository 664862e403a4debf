"""A real Kamailio 5.6 (usrloc db_mode 3, db_postgres) writing the location table rtm's
migration created: it notices nothing, and every REGISTER lands in rtm's change log."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server import database, store

from .live_server import UNIT
from .services import PostgresServer, require
from .waiting import until

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "db_postgres.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_url", "{db_url}")
modparam("usrloc", "db_mode", 3)
request_route {{
    if (is_method("REGISTER")) {{
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    sl_send_reply("404", "Not here");
}}
"""


@pytest.fixture(autouse=True)
def _no_pooled_connections() -> Iterator[None]:
    yield
    database.close_pools()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


Processes = list[subprocess.Popen[bytes]]


@pytest.fixture
def kamailios() -> Iterator[Processes]:
    """The Kamailio processes a test started (start_kamailio), stopped by PID at teardown."""
    started: Processes = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(10 * UNIT)


def start_kamailio(workdir: Path, db_url: str, started: Processes) -> tuple[int, Path]:
    require("kamailio", "kamailio")
    if not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so").exists():
        pytest.skip("db_postgres is missing (Debian package kamailio-postgres-modules)")
    port = free_udp_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(CONFIG.format(port=port, db_url=db_url.replace("postgresql://", "postgres://")))
    log = workdir / "kamailio.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [shutil.which("kamailio") or "kamailio", "-f", str(cfg), "-DD", "-E", "-m", "32",
             "-M", "8", "-w", str(workdir), "-Y", str(workdir)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started.append(process)
    return port, log


def register(sock: socket.socket, port: int, user: str, expires: int, cseq: int) -> str:
    """One REGISTER; the status line of Kamailio's answer, or '' when none came in time."""
    own = sock.getsockname()[1]
    message = (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{own};branch=z9hG4bK{secrets.token_hex(8)}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {user}-rtm-test\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{own}>;expires={expires}\r\n"
        "User-Agent: rtm-test\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    sock.sendto(message.encode(), ("127.0.0.1", port))
    try:
        answer = sock.recv(65536).decode(errors="replace")
    except TimeoutError:
        return ""
    return answer.split("\r\n", 1)[0]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_kamailio_writes_rtms_location_and_feeds_its_change_log(
    postgres: PostgresServer, tmp_path: Path, kamailios: Processes
) -> None:
    url = postgres.database("kamailio")
    store.migrate(url)  # rtm made location, as on first start with RTM_DB=postgresql://
    port, log = start_kamailio(tmp_path, url, kamailios)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        answers: list[str] = []

        # Kamailio answers once it listens: ask until then.
        def answered() -> bool:
            assert kamailios[0].poll() is None, log.read_text(errors="replace")[-1500:]
            answers.append(register(sock, port, "alice", 300, 1))
            return bool(answers[-1])

        until(
            answered,
            20 * UNIT,
            f"kamailio's answer: {log.read_text(errors='replace')[-1500:]}",
        )
        assert answers[-1] == "SIP/2.0 200 OK", log.read_text(errors="replace")[-1500:]
        ((username, agent, expires, modified),) = rows(
            url, "SELECT username, user_agent, expires, last_modified FROM location"
        )
        assert (username, agent) == ("alice", "rtm-test")
        assert (expires - modified).total_seconds() == 300  # type: ignore[operator]
        assert register(sock, port, "alice", 0, 2) == "SIP/2.0 200 OK"  # de-registration
    assert rows(url, "SELECT count(*) FROM location") == [(0,)]
    logged = rows(url, "SELECT tbl, op FROM rtm_changes ORDER BY txid, seq")
    assert logged[0] == ("location", "I") and logged[-1] == ("location", "D")
    assert "ERROR" not in log.read_text(errors="replace")
