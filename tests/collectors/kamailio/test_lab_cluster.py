"""`make lab CLUSTER=1`: lab/cluster.sh brings up PostgreSQL, two Kamailio nodes, Redis, two
rtm instances and HAProxy; through the balancer one table holds both nodes' phones, the
trunk shows once per node; Ctrl-C ends it all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from ...live_server import UNIT, udp_port_free
from .conftest import free_port
from .test_lab import rows, running_lab, sign_in, tcp_port_listening, wait_until

pytestmark = pytest.mark.kamailio

CLUSTER_SH = Path(__file__).resolve().parents[3] / "lab" / "cluster.sh"


def node_ports() -> list[int]:
    """SIP (UDP and TCP), JSON-RPC, evapi, then sipp's four (lab/traffic.sh)."""
    return [free_port(udp=True), free_port(), free_port()] + [free_port(udp=True) for _ in range(4)]


def test_make_lab_cluster_serves_both_nodes_through_haproxy_and_stops_on_ctrl_c(
    require_lab: None, tmp_path: Path
) -> None:
    for binary in (
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/bin/redis-server",
        "/usr/sbin/haproxy",
    ):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing (make test installs it)")
    nodes = [node_ports(), node_ports()]
    rtm = [free_port(), free_port()]
    ports = {
        "RTM_PORT": free_port(),
        "LAB_PG_PORT": free_port(),
        "LAB_REDIS_PORT": free_port(),
        "LAB_CARRIER_PORT": free_port(udp=True),
    }
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "LAB_NODE1_PORTS": " ".join(map(str, nodes[0])),
        "LAB_NODE2_PORTS": " ".join(map(str, nodes[1])),
        "LAB_RTM_PORTS": " ".join(map(str, rtm)),
        "LAB_STATE": str(tmp_path / "lab"),
        "LAB_USERS": "20",
    }
    base = f"http://127.0.0.1:{ports['RTM_PORT']}"
    with running_lab(CLUSTER_SH, env, tmp_path) as run, sign_in(run, base, 60 * UNIT) as client:
        lab = run[0]

        def both_nodes() -> list[dict[str, Any]]:
            accounts = rows(client, "accounts")
            return accounts if {str(r["node"]) for r in accounts} == {"1", "2"} else []

        accounts = wait_until(lab, both_nodes, 30 * UNIT, "contacts of both nodes")
        assert any(str(row["owner"]).startswith("Lab User") for row in accounts)

        def per_node() -> list[dict[str, Any]]:
            trunks = rows(client, "trunks")
            return trunks if len(trunks) == 2 else []

        trunks = wait_until(lab, per_node, 30 * UNIT, "the trunk of each node")
        assert {row["node"] for row in trunks} == {"node1", "node2"}
        assert all(row["virtual_number"] == "+390600001" for row in trunks)
        # the same signed-in session on each instance behind the balancer (shared RTM_DB)
        for port in rtm:
            me = httpx.get(f"http://127.0.0.1:{port}/api/me", cookies=client.cookies)
            assert me.status_code == 200 and me.json()["name"] == "lab"
    for node in nodes:
        assert udp_port_free(node[0])
        assert not tcp_port_listening(node[1]) and not tcp_port_listening(node[2])
    for port in [*rtm, ports["RTM_PORT"], ports["LAB_PG_PORT"], ports["LAB_REDIS_PORT"]]:
        assert not tcp_port_listening(port), port
