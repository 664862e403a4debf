"""`make lab` itself: lab/run.sh brings up the SIP stack, traffic and rtm; Ctrl-C ends it all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ...live_server import UNIT
from .conftest import free_port, udp_port_free

pytestmark = pytest.mark.kamailio

RUN_SH = Path(__file__).resolve().parents[3] / "lab" / "run.sh"


def wait_until(lab: subprocess.Popen[bytes], condition: Any, within: float, what: str) -> Any:
    """Poll ``condition`` (errors count as not yet) until truthy; fail if the lab exits first."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {within} s")
        try:
            lab.wait(timeout=0.1)  # between polls, returning at once if the lab died
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"lab/run.sh exited {lab.returncode} while waiting for {what}")


def tcp_port_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_make_lab_serves_rtm_wired_to_kamailio_and_stops_on_ctrl_c(
    require_lab: None, tmp_path: Path
) -> None:
    ports = {
        "LAB_SIP_PORT": free_port(udp=True),
        "LAB_HTTP_PORT": free_port(),
        "LAB_EVAPI_PORT": free_port(),
        "LAB_UPSTREAM_PORT": free_port(udp=True),
        "LAB_CARRIER_PORT": free_port(udp=True),
        "RTM_PORT": free_port(),
    }
    client_ports = " ".join(str(free_port(udp=True)) for _ in range(4))
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "LAB_CLIENT_PORTS": client_ports,
        "LAB_STATE": str(tmp_path / "lab"),
        "LAB_USERS": "30",
    }
    log = tmp_path / "lab.out"
    with log.open("wb") as out:
        # its own session: the "terminal" whose Ctrl-C reaches every process in it
        lab = subprocess.Popen(
            ["bash", str(RUN_SH)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{ports['RTM_PORT']}"
    try:
        password = wait_until(
            lab, lambda: re.search(r"password: (\S+)", log.read_text()), 30 * UNIT, "password"
        ).group(1)
        wait_until(lab, lambda: httpx.get(base + "/healthz").status_code == 200, 20 * UNIT, "rtm")
        with httpx.Client(base_url=base, headers={"Origin": base}) as client:
            login = client.post("/login", data={"username": "lab", "password": password})
            assert login.status_code == 303

            def rows(table: str) -> list[dict[str, Any]]:
                answer = client.get(f"/api/{table}")
                return list(answer.json()["rows"]) if answer.status_code == 200 else []

            accounts = wait_until(
                lab, lambda: len(rows("accounts")) >= 25 and rows("accounts"), 20 * UNIT, "rows"
            )
            assert any(row["owner"].startswith("Lab User") for row in accounts)
            wait_until(lab, lambda: rows("queue"), 30 * UNIT, "a queued MESSAGE")
    except BaseException:
        print(log.read_text()[-3000:])
        raise
    finally:
        os.killpg(lab.pid, signal.SIGINT)  # Ctrl-C
        lab.wait(timeout=30 * UNIT)
    assert "lab: stopped" in log.read_text()
    # run.sh waited for every process it started: nothing holds the lab's ports any more
    for name in ("LAB_SIP_PORT", "LAB_UPSTREAM_PORT", "LAB_CARRIER_PORT"):
        assert udp_port_free(ports[name]), name
    for name in ("LAB_HTTP_PORT", "LAB_EVAPI_PORT", "RTM_PORT"):
        assert not tcp_port_listening(ports[name]), name
