"""A real rtm (``rtm serve`` in a subprocess, real uvicorn) on a free loopback port."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

# Every wait in the tests is a multiple of this unit; raise RTM_TEST_TIMEOUT_UNIT on a slow box.
UNIT = float(os.environ.get("RTM_TEST_TIMEOUT_UNIT", "1"))


# Test ports are drawn from below the kernel's ephemeral range (32768-60999 on Linux), so an
# outgoing connection or an unbound UDP send can never take one between the draw and the
# server's bind; from a slice of their own per xdist worker, so two workers never draw the
# same; and a process never draws one twice, so one Kamailio's SIP, HTTP and evapi ports
# are three ports. Asking the kernel for port 0 gave none of that: once it handed the same
# port to a Kamailio's SIP and evapi draws, and that Kamailio died just after it answered.
PORTS = range(20000, 32000)
_drawn: set[int] = set()
_draws = random.Random()


def _worker_ports() -> range:
    """This process's slice of PORTS: xdist worker gwN of M takes the N-th of M slices."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") else 0
    size = len(PORTS) // max(count, 1)
    start = PORTS.start + size * index
    return range(start, start + size)


def free_port(*, udp: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP too when ``udp``), never drawn before here."""
    ports = _worker_ports()
    for _ in range(1000):
        port = _draws.choice(ports)
        if port in _drawn:
            continue
        _drawn.add(port)  # taken or not, never offered again
        if port_free(port, socket.SOCK_STREAM) and (not udp or port_free(port, socket.SOCK_DGRAM)):
            return port
    raise RuntimeError(f"no free port left in {ports}")


def port_free(port: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> bool:
    """Whether nothing holds ``port`` on 127.0.0.1 for ``kind`` right now (binds, lets go)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def udp_port_free(port: int) -> bool:
    """Whether nothing holds UDP ``port`` on 127.0.0.1 right now."""
    return port_free(port, socket.SOCK_DGRAM)


class RtmServer:
    """One rtm process with its own store, log file and port; restartable on the same port.

    ``headers`` / ``cookies`` carry whatever credentials the server requires, so tests use
    ``get()`` and ``ws()`` rather than building requests themselves.
    """

    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        # Its store: a SQLite file of its own, or the PostgreSQL database env's RTM_DB names.
        self.db = (env or {}).get("RTM_DB") or str(workdir / "rtm.db")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log_path = workdir / "rtm.log"
        self.env = {
            **os.environ,
            "RTM_DB": self.db,
            "RTM_PORT": str(self.port),
            "RTM_HOST": "127.0.0.1",
            "PYTHONASYNCIODEBUG": "1",
            **(env or {}),
        }
        self.headers: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20 * UNIT) -> RtmServer:
        """Start rtm and return once uvicorn says it listens (no polling)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        started = threading.Event()
        threading.Thread(target=self._copy_output, args=(self.proc, started), daemon=True).start()
        if not started.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError(f"rtm did not start: {self.log()[-2000:]}")
        assert httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        return self

    def _copy_output(self, proc: subprocess.Popen[bytes], started: threading.Event) -> None:
        """Copy the child's output into the log file, flagging the startup line (or its end)."""
        assert proc.stdout is not None
        with proc.stdout, open(self.log_path, "ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if b"Uvicorn running on" in line:  # logged once the socket listens
                    started.set()
        started.set()  # it exited: start() sees the dead process instead of waiting out

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10 * UNIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(
            self.url + path, headers=self.headers, cookies=self.cookies, timeout=10, **kwargs
        )

    def ws(self, **kwargs: Any) -> AbstractAsyncContextManager[ClientConnection]:
        """A websockets client connection carrying the server's credentials and own Origin."""
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        kwargs.setdefault("origin", self.url)
        kwargs.setdefault("open_timeout", 10 * UNIT)
        return connect(self.ws_url, additional_headers=headers, **kwargs)  # type: ignore[arg-type]
