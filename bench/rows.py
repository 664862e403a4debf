"""Synthetic wire rows shaped like the registrations collector's, for the pure benchmarks."""

from __future__ import annotations

import random

from server.rows import Row


def contact_row(i: int, rng: random.Random) -> Row:
    """A row with the accounts table's wire fields and realistic value sizes."""
    user = f"user{i % 50_000}"
    ip = f"203.0.113.{rng.randrange(1, 255)}"
    return {
        "id": f"uloc-6b093a7c-73f8-{i:x}",
        "username": user,
        "domain": "pbx.example.com",
        "owner": f"Owner Number {i}",
        "caller_id": f"+3902{rng.randrange(10**6, 10**7)}",
        "caller_id_2": "",
        "group": rng.choice(("Sales", "NOC", "Exec", "Support")),
        "ip": ip,
        "port": rng.randrange(1024, 65536),
        "transport": rng.choice(("UDP", "TCP", "TLS")),
        "expires": f"2026-11-27T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
        "user_agent": "PrivateGSM Enterprise 4.2.1 (iOS 17.4; iPhone15,2)",
        "contact": f"sip:{user}@{ip}:5060;transport=udp",
        "node": 0,
    }


def table(count: int, seed: int = 1) -> dict[str, Row]:
    rng = random.Random(seed)
    rows = (contact_row(i, rng) for i in range(count))
    return {row["id"]: row for row in rows}


def refetched(rows: dict[str, Row], changed_share: float, seed: int = 2) -> dict[str, Row]:
    """The same table as a collector's next fetch builds it: fresh dicts, a share changed.

    Every row is a new (equal) dict, as after a real query; ``changed_share`` of them have
    a new ``expires`` (a refreshed registration).
    """
    rng = random.Random(seed)
    fresh = {key: dict(row) for key, row in rows.items()}
    for key in rng.sample(sorted(fresh), int(len(fresh) * changed_share)):
        fresh[key]["expires"] = "2026-11-28T00:00:00Z"
    return fresh
