"""The demo's SIP trunks: configured rows, and a status that fails and recovers now and then.

``trunk_status`` is what a trunk watcher (registrar client or OPTIONS prober) writes: one
row per trunk name with status, reason, since (unix seconds) and latency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from . import people as data

Statement = tuple[str, tuple[Any, ...]]
# Per trunk and tick: an OK trunk fails, a failed one starts re-registering, a pending one
# comes up (or fails again). About one failure every ten seconds across the board.
P_FAIL = 0.006
P_RETRY = 0.06
P_UP = 0.3
P_FAIL_AGAIN = 0.1
P_LATENCY = 0.03
_UPSERT_TRUNK = (
    "INSERT INTO trunks (name, host, port, transport, encryption, virtual_number, username)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
    " port = excluded.port, transport = excluded.transport, encryption = excluded.encryption,"
    " virtual_number = excluded.virtual_number, username = excluded.username"
)


@dataclass
class TrunkState:
    name: str
    status: str
    reason: str | None
    since: int
    latency_ms: float | None


class TrunkBoard:
    """Every demo trunk's live state; ``tick`` returns the status rows that changed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.states: dict[str, TrunkState] = {}

    def setup(self, now: float) -> list[Statement]:
        statements: list[Statement] = []
        for name, host, port, transport, encrypted in data.TRUNKS:
            number, username = data.virtual_number(self.rng), f"pbx{self.rng.randrange(1000, 9999)}"
            params = (name, host, port, transport, int(encrypted), number, username)
            statements.append((_UPSERT_TRUNK, params))
            since = int(now) - self.rng.randrange(60, 86400)
            if name.startswith("legacy"):
                state = TrunkState(name, "DISABLED", "disabled by administrator", since, None)
            else:
                state = TrunkState(name, "OK", None, since, self._latency())
            self.states[name] = state
            statements.append(self._row(state))
        return statements

    def tick(self, now: float) -> list[Statement]:
        statements = []
        for state in self.states.values():
            before = (state.status, state.latency_ms)
            self._step(state, int(now))
            if (state.status, state.latency_ms) != before:
                statements.append(self._row(state))
        return statements

    def _step(self, state: TrunkState, now: int) -> None:
        roll = self.rng.random()
        if state.status == "OK" and roll < P_FAIL:
            self._become(state, "FAILED", self.rng.choice(data.FAILURE_REASONS), now)
        elif state.status == "OK" and roll < P_FAIL + P_LATENCY:
            state.latency_ms = self._latency()
        elif state.status == "FAILED" and roll < P_RETRY:
            self._become(state, "PENDING", "registering", now)
        elif state.status == "PENDING" and roll < P_UP:
            self._become(state, "OK", None, now)
            state.latency_ms = self._latency()
        elif state.status == "PENDING" and roll < P_UP + P_FAIL_AGAIN:
            self._become(state, "FAILED", "408 Request Timeout", now)

    @staticmethod
    def _become(state: TrunkState, status: str, reason: str | None, now: int) -> None:
        state.status, state.reason, state.since = status, reason, now
        state.latency_ms = None

    def _latency(self) -> float:
        return round(self.rng.lognormvariate(3.3, 0.4), 1)  # around 27 ms, long tail

    @staticmethod
    def _row(state: TrunkState) -> Statement:
        return (
            "INSERT INTO trunk_status (trunk, status, reason, since, latency_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (trunk) DO UPDATE SET status = excluded.status,"
            " reason = excluded.reason, since = excluded.since, latency_ms = excluded.latency_ms",
            (state.name, state.status, state.reason, state.since, state.latency_ms),
        )
