"""Real PostgreSQL, Redis and HAProxy servers on free loopback ports, for the cluster tests.

Each runs from a throw-away directory and is stopped (and its directory removed by pytest's
tmp_path) at teardown. PostgreSQL refuses to run as root, so as root it runs as the
``postgres`` system user (``Popen(user=)``). Readiness is polled, never slept for.

In CI (``CI=true``) a missing server binary fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .live_server import UNIT, free_port
from .waiting import until

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def require(binary: str | Path, package: str) -> None:
    """Skip (fail in CI) when a server binary is missing: ``make test`` installs it."""
    found = Path(binary).is_file() if os.sep in str(binary) else shutil.which(str(binary))
    if not found:
        message = f"{binary} is missing (Debian package {package}; make test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Poll (tests/waiting.py) until ``ready()`` or the server exits; either way, say why."""
    try:
        until(lambda: proc.poll() is not None or ready(), 30 * UNIT, what)
    except TimeoutError:
        raise RuntimeError(f"{what} not ready: {log.read_text(errors='replace')[-2000:]}") from None
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, within: float) -> None:
    """Signal a server that still runs; kill it if it has not exited ``within`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PostgresServer:
    """One PostgreSQL 15 cluster: ``initdb`` into ``workdir``, trust on 127.0.0.1 only.

    ``url`` is the ``postgres`` database; ``database(name)`` creates another and returns its
    URL. ``restart()`` keeps the data (a PostgreSQL restart under a running rtm).
    """

    def __init__(self, workdir: Path) -> None:
        require(PG_BIN / "postgres", "postgresql-15")
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.log_path = workdir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # Popen(user=...) rather than runuser: signals then reach postgres itself.
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            shutil.chown(workdir, "postgres")
            # tmp_path's parents are root's 0700: postgres must reach its own directory.
            for parent in workdir.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{workdir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 128MB\n"
            )
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        self.url = self.database_url("postgres")

    def _run(self, argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True, cwd=self.workdir, **self._as())

    def _as(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._user, "extra_groups": []}

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> PostgresServer:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                **self._as(),
            )
        _wait(self._ready, self.proc, "postgres", self.log_path)
        return self

    def _ready(self) -> bool:
        probe = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return probe.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql; return its unaligned, tuples-only output."""
        done = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.database_url(database)],
            input=sql.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def database(self, name: str) -> str:
        """Create database ``name`` (empty) and return its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown; SIGKILL a crash."""
        _stop(self.proc, sig, 30 * UNIT)

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer:
    """One ``redis-server`` on a free port, no persistence (``--save ''``).

    ``restart()`` (or ``stop()`` then ``start()``) on the same port comes back **empty**,
    unless ``save()`` wrote a dump before: then it loads what was saved (and loses what
    came after, as a Redis restored from its last RDB snapshot does).
    """

    def __init__(self, workdir: Path) -> None:
        require("redis-server", "redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = workdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = self._popen(log)
        _wait(lambda: _listening(self.port), self.proc, "redis", self.log_path)
        return self

    def _popen(self, log: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
        )

    def save(self) -> None:
        """``SAVE`` the dataset to ``dump.rdb`` in its directory: the next start loads it."""
        subprocess.run(["redis-cli", "-p", str(self.port), "SAVE"], check=True, capture_output=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.proc, sig, 10 * UNIT)

    def restart(self) -> None:
        self.stop()
        self.start()


class HAProxy:
    """HAProxy on a free port balancing HTTP and WebSockets over ``backends`` (host:port).

    Health checks ask ``/healthz`` every 200 ms, so a killed rtm leaves the pool at once.
    ``tcp=True``: a plain TCP relay to the first backend (one rtm's way to Redis), which
    ``partition()`` freezes, every packet unanswered as behind a cut link, until ``heal()``.
    """

    def __init__(self, workdir: Path, backends: list[str], *, tcp: bool = False) -> None:
        require("haproxy", "haproxy")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.config = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        if tcp:
            mode, check, servers = "tcp", "", f"    server relay {backends[0]}"
        else:
            mode, check = "http", "    option httpchk GET /healthz\n"
            servers = "\n".join(
                f"    server rtm{i} {address} check inter 200 fall 2 rise 1"
                for i, address in enumerate(backends)
            )
        self.config.write_text(
            f"""global
    maxconn 4000
defaults
    mode {mode}
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend rtm
    bind 127.0.0.1:{self.port}
    default_backend rtm
backend rtm
    balance roundrobin
{check}{servers}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def partition(self) -> None:
        """Stop relaying (SIGSTOP): connections stay open and nothing comes back."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def heal(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def start(self) -> HAProxy:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        _wait(lambda: _listening(self.port), self.proc, "haproxy", self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen one cannot take SIGTERM
        _stop(self.proc, signal.SIGTERM, 10 * UNIT)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 of this test's own (initdb takes ~1 s).

    As root its directory is a fresh one under /tmp, not under tmp_path: every pytest
    session that starts (another run on the machine) takes o+x back off
    /tmp/pytest-of-root, which postgres, running as its own user, must traverse: a server
    restarted, or even checkpointing, after that would fail with "Permission denied".
    """
    private = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="rtm-pg-")) if private else tmp_path / "pg"
    workdir.mkdir(exist_ok=True)
    server = PostgresServer(workdir).start()
    yield server
    server.stop()
    if private:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir).start()
    yield server
    server.stop()
