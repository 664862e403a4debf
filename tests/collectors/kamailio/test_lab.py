"""`make lab` itself: lab/run.sh brings up the SIP stack, traffic and rtm; Ctrl-C ends it all."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ...live_server import UNIT, udp_port_free
from ...waiting import until
from .conftest import free_port

pytestmark = pytest.mark.kamailio

RUN_SH = Path(__file__).resolve().parents[3] / "lab" / "run.sh"
LabRun = tuple[subprocess.Popen[bytes], Path]  # the lab script's process and its output


def wait_until(lab: subprocess.Popen[bytes], condition: Any, within: float, what: str) -> Any:
    """Poll ``condition`` (errors count as not yet) until truthy; fail if the lab exits first."""
    return until(
        condition, within, what, not_yet=(httpx.HTTPError, OSError, ValueError), process=lab
    )


@contextlib.contextmanager
def running_lab(script: Path, env: dict[str, str], tmp_path: Path) -> Iterator[LabRun]:
    """Run a lab script in its own session (the "terminal" whose Ctrl-C reaches every process
    in it); on leaving, Ctrl-C and wait for it, and check it says it stopped everything. The
    lab's output is printed when the body fails."""
    log = tmp_path / "lab.out"
    with log.open("wb") as out:
        lab = subprocess.Popen(
            ["bash", str(script)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield lab, log
    except BaseException:
        print(log.read_text()[-3000:])
        raise
    finally:
        os.killpg(lab.pid, signal.SIGINT)  # Ctrl-C
        lab.wait(timeout=30 * UNIT)
    assert "lab: stopped" in log.read_text()


@contextlib.contextmanager
def sign_in(run: LabRun, base: str, within: float) -> Iterator[httpx.Client]:
    """A client of the lab's rtm at ``base``, signed in as the admin whose password it printed."""
    lab, log = run
    printed = lambda: re.search(r"password: (\S+)", log.read_text())  # noqa: E731
    found = wait_until(lab, printed, within, "password")
    with httpx.Client(base_url=base, headers={"Origin": base}) as client:
        login = client.post("/login", data={"username": "lab", "password": found.group(1)})
        assert login.status_code == 303
        yield client


def rows(client: httpx.Client, table: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/{table}")
    return list(answer.json()["rows"]) if answer.status_code == 200 else []


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
    base = f"http://127.0.0.1:{ports['RTM_PORT']}"
    with running_lab(RUN_SH, env, tmp_path) as run:
        lab = run[0]
        wait_until(lab, lambda: httpx.get(base + "/healthz").status_code == 200, 50 * UNIT, "rtm")
        with sign_in(run, base, 30 * UNIT) as client:
            accounts = wait_until(
                lab,
                lambda: len(rows(client, "accounts")) >= 25 and rows(client, "accounts"),
                20 * UNIT,
                "rows",
            )
            assert any(row["owner"].startswith("Lab User") for row in accounts)
            wait_until(lab, lambda: rows(client, "queue"), 30 * UNIT, "a queued MESSAGE")
    # run.sh waited for every process it started: nothing holds the lab's ports any more
    for name in ("LAB_SIP_PORT", "LAB_UPSTREAM_PORT", "LAB_CARRIER_PORT"):
        assert udp_port_free(ports[name]), name
    for name in ("LAB_HTTP_PORT", "LAB_EVAPI_PORT", "RTM_PORT"):
        assert not tcp_port_listening(ports[name]), name
