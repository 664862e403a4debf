"""Throw-away Kamailio and sipp for tests: real processes on free 127.0.0.1 ports.

Fixtures
--------
``kamailio``
    A started :class:`Kamailio` with the defaults below (no trunks, one dispatcher
    destination that nothing answers). Stopped (by PID) when the test ends.
``kamailio_factory``
    ``kamailio_factory(**options) -> Kamailio`` for tests that need trunks or other knobs.
    Options (all keyword, all optional):

    - ``uacreg``: rows for Kamailio's ``uacreg`` table (outbound registrations, "trunks"),
      each a mapping of column -> value, e.g. ``{"l_uuid": "carrier-a", "l_username":
      "trunk-a", "l_domain": "127.0.0.1", "r_username": "lab", "r_domain": "127.0.0.1:5070",
      "realm": "127.0.0.1", "auth_username": "lab", "auth_password": "secret",
      "auth_proxy": "sip:127.0.0.1:5070", "expires": 30}``. Written before start.
    - ``dispatcher``: lines of the dispatcher list file (``"1 sip:127.0.0.1:5070 0 0
      duid=carrier-a;name=carrier-a"``). Default: one destination on a dead port.
    - ``defines``: extra ``-A NAME=value`` defines of ``lab/kamailio.cfg`` (e.g.
      ``{"ULTIMER": 60, "MSILO_CHECK": 1}``); string values are quoted for you.
    - ``memory``: (shared, private) memory in MB, ``-m`` and ``-M`` (default (64, 32)). A
      ``ul.dump`` is built in one process's private memory and queued in shared memory:
      100k contacts (54 MB of JSON) need about (512, 256).
    - ``start``: False to get an unstarted instance (call ``.start()`` yourself).

    The instance offers ``rpc(method, *params)`` (the JSON-RPC ``result``, raising
    :class:`RpcError`), ``sql(query, params)`` on its SQLite file (to add uacreg rows at
    runtime, then ``rpc("uac.reg_refresh", l_uuid)``), ``kill()`` (SIGKILL, a crash),
    ``stop()``, ``start()`` (again on the same ports), and the URLs rtm uses:
    ``source_url`` (``kamailio+http://127.0.0.1:PORT/RPC``), ``rpc_url``, ``evapi_url``
    (``tcp://127.0.0.1:PORT``) and ``msilo_url`` (``msilo+sqlite:///path``).
``sipp``
    A :class:`Sipp` runner: ``sipp.run(scenario, kamailio, rows=[...], ...)`` runs a
    scenario from ``lab/sipp/`` to completion and raises unless every call succeeded;
    ``sipp.start(...)`` runs one in the background (a UAS), stopped at teardown.
``require_lab``
    Skips (or fails when ``CI=true``) unless kamailio, sipp and the SQLite schema exist.

Every instance has its own directory under ``tmp_path`` (log in ``kamailio.log``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ...live_server import UNIT, free_port
from ...waiting import Exited, until

LAB = Path(__file__).resolve().parents[3] / "lab"
KAMAILIO_CFG = LAB / "kamailio.cfg"
SIPP_DIR = LAB / "sipp"
SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")
SCHEMAS = ("standard", "usrloc", "msilo", "uac")
READY_WITHIN = 10 * UNIT
STOP_WITHIN = 5 * UNIT


class RpcError(Exception):
    """Kamailio answered a JSON-RPC call with an error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def require_binaries() -> None:
    """Skip, or fail in CI (CI=true), when the lab's binaries or schema files are missing."""
    missing = [b for b in ("kamailio", "sipp") if shutil.which(b) is None]
    missing += [str(SCHEMA_DIR / f"{s}-create.sql") for s in SCHEMAS]
    missing = [m for m in missing if "/" not in m or not Path(m).exists()]
    if not missing:
        return
    reason = f"missing {', '.join(missing)} (make apt installs them)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _define(name: str, value: object) -> str:
    text = f'"{value}"' if isinstance(value, str) else str(value)
    return f"{name}={text}"


class Kamailio:
    """One Kamailio process running lab/kamailio.cfg in its own directory and ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        uacreg: Sequence[Mapping[str, Any]] = (),
        dispatcher: Sequence[str] | None = None,
        defines: Mapping[str, object] | None = None,
        memory: tuple[int, int] = (64, 32),
    ) -> None:
        self.workdir = workdir
        self.memory = memory
        self.rundir = workdir / "run"
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.db_path = workdir / "kamailio.sqlite"
        self.log_path = workdir / "kamailio.log"
        self.sip_port = free_port(udp=True)
        self.http_port = free_port()
        self.evapi_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._defines = dict(defines or {})
        dead = free_port(udp=True)
        lines = dispatcher if dispatcher is not None else [f"1 sip:127.0.0.1:{dead} 0 0 duid=none"]
        (workdir / "dispatcher.list").write_text("".join(f"{line}\n" for line in lines))
        self._create_db(uacreg)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/RPC"

    @property
    def source_url(self) -> str:
        return f"kamailio+http://127.0.0.1:{self.http_port}/RPC"

    @property
    def evapi_url(self) -> str:
        return f"tcp://127.0.0.1:{self.evapi_port}"

    @property
    def msilo_url(self) -> str:
        return f"msilo+sqlite:///{self.db_path}"

    @property
    def sip_address(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def _create_db(self, uacreg: Sequence[Mapping[str, Any]]) -> None:
        conn = sqlite3.connect(self.db_path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            for name in SCHEMAS:
                conn.executescript((SCHEMA_DIR / f"{name}-create.sql").read_text())
            for row in uacreg:
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                insert = f"INSERT INTO uacreg ({columns}) VALUES ({marks})"
                conn.execute(insert, tuple(row.values()))
            conn.commit()
        finally:
            conn.close()

    def command(self) -> list[str]:
        defines = {
            "SIP_PORT": self.sip_port,
            "HTTP_PORT": self.http_port,
            "EVAPI_BIND": f"127.0.0.1:{self.evapi_port}",
            "DBURL": f"sqlite://{self.db_path}",
            "DBFILE": f"{self.db_path}=WAL;",
            "RUNDIR": str(self.rundir),
            "CTL_SOCK": f"unix:{self.rundir}/kamailio_ctl",
            "DS_LIST": str(self.workdir / "dispatcher.list"),
            "CONTACT_ADDR": f"127.0.0.1:{self.sip_port}",
            "SELF_URI": f"sip:127.0.0.1:{self.sip_port}",
            "CHILDREN": 2,
            **self._defines,
        }
        shm, pkg = self.memory
        argv = ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-m", str(shm), "-M", str(pkg)]
        for name, value in defines.items():
            argv += ["-A", _define(name, value)]
        return argv

    def start(self) -> None:
        """Start and wait until JSON-RPC answers; retries while the old ports are released."""
        deadline = time.monotonic() + READY_WITHIN
        while True:
            with self.log_path.open("ab") as log:
                # Own session: stop()/kill() signal this process group, found by our PID.
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            if self._wait_ready(deadline):
                return
            self._signal(signal.SIGKILL)
            if time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"kamailio did not start:\n{tail}")

    def _wait_ready(self, deadline: float) -> bool:
        """True once JSON-RPC and evapi answer; False if Kamailio exits or the deadline passes.

        JSON-RPC alone is not enough: Kamailio's children start in no set order, and one that
        cannot bind (evapi's dispatcher, say) takes the whole Kamailio down after the RPC
        workers already answer."""
        assert self.process is not None
        try:
            until(
                lambda: self.rpc("core.uptime", timeout=1) or True,
                max(0.0, deadline - time.monotonic()),
                "kamailio's JSON-RPC",
                not_yet=(OSError, RpcError),
                process=self.process,
            )
            until(
                lambda: socket.create_connection(("127.0.0.1", self.evapi_port), 1).close() or True,
                max(0.0, deadline - time.monotonic()),
                "kamailio's evapi",
                not_yet=(OSError,),
                process=self.process,
            )
        except (Exited, TimeoutError):
            return False
        return True

    def _signal(self, signum: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_WITHIN)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM to its process group), SIGKILL if it lingers."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Crash it: SIGKILL to the whole process group."""
        self._signal(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rpc(self, method: str, *params: Any, timeout: float = 10) -> Any:
        """Call a JSON-RPC method over HTTP; return its result or raise RpcError / OSError."""
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1})
        request = urllib.request.Request(
            self.rpc_url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.load(response)
        if "error" in reply:
            raise RpcError(int(reply["error"].get("code", 0)), str(reply["error"].get("message")))
        return reply.get("result")

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on Kamailio's SQLite file and commit; return its rows."""
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            rows = conn.execute(query, tuple(params)).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    def all_contacts(self) -> list[dict[str, Any]]:
        """Every contact in ul.dump with its AoR, the ones it holds as "expired" included."""
        dump = self.rpc("ul.dump")
        return [
            {"AoR": aor["Info"]["AoR"], **item["Contact"]}
            for domain in dump["Domains"]
            for aor in domain["Domain"]["AoRs"]
            for item in aor["Info"]["Contacts"]
        ]

    def contacts(self) -> list[dict[str, Any]]:
        """Every live contact in ul.dump (Expires a number), as Kamailio reports it."""
        return [c for c in self.all_contacts() if isinstance(c.get("Expires"), int)]


# kamailio_factory(uacreg=..., dispatcher=..., defines=..., start=True) -> Kamailio
StartKamailio = Callable[..., Kamailio]


class Sipp:
    """Runs lab/sipp scenarios against a Kamailio; every run in its own working directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._background: list[subprocess.Popen[bytes]] = []
        self._runs = 0

    def _argv(
        self,
        scenario: str | Path,
        target: Kamailio | str | None,
        rows: Sequence[Sequence[object]] | None,
        calls: int | None,
        rate: int,
        transport: str,
        port: int | None,
        keys: Mapping[str, object] | None,
        extra: Sequence[str],
    ) -> tuple[list[str], Path]:
        self._runs += 1
        rundir = self.workdir / f"run{self._runs}"
        rundir.mkdir()
        path = Path(scenario) if Path(scenario).is_absolute() else SIPP_DIR / scenario
        argv = ["sipp"]
        if target is not None:
            argv.append(target.sip_address if isinstance(target, Kamailio) else target)
        argv += ["-sf", str(path), "-i", "127.0.0.1", "-nostdin", "-r", str(rate)]
        argv += ["-p", str(port or free_port(udp=True))]
        if transport == "tcp":
            argv += ["-t", "t1"]
        if rows is not None:
            csv = rundir / "data.csv"
            text = "".join(";".join(str(v) for v in row) + ";\n" for row in rows)
            csv.write_text("SEQUENTIAL\n" + text)
            argv += ["-inf", str(csv)]
            calls = len(rows) if calls is None else calls
        if calls is not None:
            argv += ["-m", str(calls)]
        for name, value in (keys or {}).items():
            argv += ["-key", name, str(value)]
        return argv + list(extra), rundir

    def run(
        self,
        scenario: str | Path,
        target: Kamailio | str,
        *,
        rows: Sequence[Sequence[object]] | None = None,
        calls: int | None = None,
        rate: int = 200,
        transport: str = "udp",
        port: int | None = None,
        keys: Mapping[str, object] | None = None,
        extra: Sequence[str] = (),
        timeout: float = 30,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run to completion; raise unless sipp exits 0 (every call succeeded) when ``check``."""
        argv, rundir = self._argv(scenario, target, rows, calls, rate, transport, port, keys, extra)
        argv += ["-timeout", f"{int(timeout)}s", "-timeout_error"]
        done = subprocess.run(
            argv, cwd=rundir, capture_output=True, timeout=timeout + 10 * UNIT, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"sipp {Path(scenario).name} exit {done.returncode}:\n"
                f"{done.stdout.decode(errors='replace')[-3000:]}"
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )
        return done

    def start(
        self,
        scenario: str | Path,
        target: Kamailio | str | None = None,
        *,
        rows: Sequence[Sequence[object]] | None = None,
        calls: int | None = None,
        rate: int = 10,
        transport: str = "udp",
        port: int | None = None,
        keys: Mapping[str, object] | None = None,
        extra: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start in the background (e.g. a UAS on ``port``); terminated at teardown."""
        argv, rundir = self._argv(scenario, target, rows, calls, rate, transport, port, keys, extra)
        with (rundir / "sipp.out").open("wb") as out:
            process = subprocess.Popen(argv, cwd=rundir, stdout=out, stderr=subprocess.STDOUT)
        self._background.append(process)
        return process

    def close(self) -> None:
        for process in self._background:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_WITHIN)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def require_lab() -> None:
    require_binaries()


@pytest.fixture
def kamailio_factory(tmp_path: Path, require_lab: None) -> Iterator[StartKamailio]:
    started: list[Kamailio] = []

    def start_kamailio(
        *,
        uacreg: Sequence[Mapping[str, Any]] = (),
        dispatcher: Sequence[str] | None = None,
        defines: Mapping[str, object] | None = None,
        memory: tuple[int, int] = (64, 32),
        start: bool = True,
    ) -> Kamailio:
        instance = Kamailio(
            tmp_path / f"kamailio{len(started)}",
            uacreg=uacreg,
            dispatcher=dispatcher,
            defines=defines,
            memory=memory,
        )
        started.append(instance)
        if start:
            instance.start()
        return instance

    yield start_kamailio
    for instance in started:
        instance.stop()


@pytest.fixture
def kamailio(kamailio_factory: StartKamailio) -> Kamailio:
    return kamailio_factory()


@pytest.fixture
def sipp(tmp_path: Path, require_lab: None) -> Iterator[Sipp]:
    runner = Sipp(tmp_path / "sipp")
    yield runner
    runner.close()
