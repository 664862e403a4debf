"""The demo's simulated PBX: phones registering, trunks flapping, messages queueing.

I/O-free: ``DemoTraffic`` keeps its own model of what it wrote and turns each tick into a
short list of SQL statements, the same rows a SIP stack would write (``location`` as
Kamailio's usrloc writes it in db_mode 2, Julian days and all). Given the same seed and
the same clock readings it produces the same statements.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..times import unix_to_julian as julian  # REAL Julian days, as db_sqlite stores them
from . import people as data
from .messages import MessageQueue
from .trunks import TrunkBoard

Statement = tuple[str, tuple[Any, ...]]
# Kamailio's usrloc timer sweeps expired contacts this often (the lab runs 10 s).
SWEEP_SECONDS = 10.0
# Share of accounts the demo keeps online, and the chance per tick of each churn event.
ONLINE_SHARE = 0.65
P_SILENT = 0.08  # a phone misses its refresh (battery, network) and its contact expires
P_DEREGISTER = 0.15
P_REGISTER = 0.6
P_SECOND_DEVICE = 0.1
P_NAT = 0.7
P_REBIND = 0.03  # the NAT box gives the phone a new public port
SETUP_CHUNK = 200
_INSERT_CONTACT = (
    "INSERT INTO location (ruid, username, domain, contact, received, path, expires, q,"
    " callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance,"
    " reg_id, server_id, connection_id, keepalive, partition)"
    " VALUES (?, ?, ?, ?, ?, NULL, ?, 1.0, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0)"
)


@dataclass
class Contact:
    """One registered device, as the demo last wrote it."""

    ruid: str
    username: str
    interval: int
    expires_at: float
    refresh_at: float
    cseq: int
    contact: str
    received: str | None
    silent: bool = False


class DemoTraffic:
    """A deterministic PBX driven by ``rng``; each method returns the statements to run."""

    def __init__(self, rng: random.Random, accounts: int, started: float) -> None:
        self.rng = rng
        self.accounts = data.make_accounts(rng, accounts)
        self.contacts: dict[str, Contact] = {}
        # Kamailio's ruid: uloc-<start time hex>-<pid hex>-<counter hex>
        self._ruid_prefix = f"uloc-{int(started):x}-{rng.randrange(0x100, 0x8000):x}"
        self._ruid_counter = 0
        self._next_sweep = started + SWEEP_SECONDS
        self.trunks = TrunkBoard(rng)
        self.queue = MessageQueue(rng, self.accounts)
        # How location's times are written: db_sqlite's Julian days, or (run.py, on
        # PostgreSQL) the TIMESTAMP db_postgres writes.
        self.stamp: Callable[[float], object] = julian
        self.bitmap: Callable[[int], int] = int  # methods; PostgreSQL's INTEGER is signed

    def setup(self, now: float) -> Iterator[list[Statement]]:
        """Batches that clear the demo's old rows and write the directory and a steady state;
        written as one transaction (run.py), so readers see the old rows or the new ones."""
        yield [
            ("DELETE FROM location WHERE domain = ?", (data.DOMAIN,)),
            (
                "DELETE FROM messages WHERE from_account IN"
                " (SELECT username FROM accounts WHERE domain = ?)",
                (data.DOMAIN,),
            ),
        ]
        for start in range(0, len(self.accounts), SETUP_CHUNK):
            yield [self._account_row(a, now) for a in self.accounts[start : start + SETUP_CHUNK]]
        yield self.trunks.setup(now)
        online = [a for a in self.accounts if self.rng.random() < ONLINE_SHARE]
        for start in range(0, len(online), SETUP_CHUNK):
            batch = []
            for account in online[start : start + SETUP_CHUNK]:
                batch += self._register(account.username, now, steady=True)
            yield batch

    def tick(self, now: float) -> list[Statement]:
        """A handful of changes, as a busy PBX makes them in half a second."""
        statements = self._refresh(now) + self._sweep(now) + self._churn(now)
        statements += self.trunks.tick(now)
        statements += self.queue.tick(now, self.online_usernames())
        return statements

    def online_usernames(self) -> set[str]:
        return {c.username for c in self.contacts.values() if not c.silent}

    def _account_row(self, account: data.Account, now: float) -> Statement:
        return (
            'INSERT INTO accounts (username, domain, owner, caller_id, caller_id_2, "group",'
            " email, enabled, created) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT (username, domain) DO UPDATE SET owner = excluded.owner,"
            " caller_id = excluded.caller_id, caller_id_2 = excluded.caller_id_2,"
            ' "group" = excluded."group", email = excluded.email',
            (account.username, data.DOMAIN, account.owner, account.caller_id,
             account.caller_id_2, account.group, account.email, int(now)),
        )  # fmt: skip

    def _register(self, username: str, now: float, *, steady: bool = False) -> list[Statement]:
        devices = 2 if self.rng.random() < P_SECOND_DEVICE else 1
        return [self._new_contact(username, now, steady) for _ in range(devices)]

    def _new_contact(self, username: str, now: float, steady: bool) -> Statement:
        rng = self.rng
        transport = rng.choices(("udp", "tcp", "tls"), weights=(5, 2, 3))[0]
        interval = data.registration_interval(rng)
        # A steady-state contact registered some time ago; some phones have gone silent
        # and a few of those already expired, waiting for the usrloc timer as in a real store.
        silent = steady and rng.random() < P_SILENT
        expires_at = now + interval
        if steady:
            expires_at = now + rng.uniform(-SWEEP_SECONDS, interval / 2 if silent else interval)
        nat = rng.random() < P_NAT
        local_ip = data.private_ip(rng) if nat else data.public_ip(rng)
        local_port = rng.randrange(1024, 65536) if nat else 5060
        contact = f"sip:{username}@{local_ip}:{local_port};transport={transport}"
        received = self._received(transport) if nat else None
        self._ruid_counter += 1
        ruid = f"{self._ruid_prefix}-{self._ruid_counter:x}"
        cseq = rng.randrange(1, 400) if steady else 1
        self.contacts[ruid] = Contact(
            ruid, username, interval, expires_at, self._refresh_time(now, expires_at, interval),
            cseq, contact, received, silent=silent or expires_at <= now,
        )  # fmt: skip
        has_instance = rng.random() < 0.5
        instance = f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}>" if has_instance else None
        socket = f"{transport}:127.0.0.1:{5061 if transport == 'tls' else 5060}"
        return (
            _INSERT_CONTACT,
            (ruid, username, data.DOMAIN, contact, received, self.stamp(expires_at),
             f"{rng.getrandbits(64):016x}@{local_ip}", cseq, self.stamp(expires_at - interval),
             64 if nat else 0, data.user_agent(rng), socket,
             self.bitmap(rng.choice((4294967295, 8191, 5087))), instance, 1 if instance else 0,
             -1 if transport == "udp" else rng.randrange(1, 5000), 1 if nat else 0),
        )  # fmt: skip

    def _received(self, transport: str) -> str:
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:{data.public_ip(self.rng)}:{self.rng.randrange(1024, 65536)}{suffix}"

    def _refresh_time(self, now: float, expires_at: float, interval: int) -> float:
        # Phones refresh some way before expiry, never earlier than now.
        return max(now, expires_at - interval * self.rng.uniform(0.1, 0.5))

    def _refresh(self, now: float) -> list[Statement]:
        statements = []
        for c in self.contacts.values():
            if c.silent or c.refresh_at > now:
                continue
            if self.rng.random() < P_SILENT:
                c.silent = True
                continue
            c.cseq += self.rng.choice((1, 2))  # 2 when the refresh was challenged
            c.expires_at = now + c.interval
            c.refresh_at = self._refresh_time(now, c.expires_at, c.interval)
            if c.received and self.rng.random() < P_REBIND:
                c.received = self._received(c.contact.rsplit("=", 1)[1])
            statements.append(
                (
                    "UPDATE location SET expires = ?, last_modified = ?, cseq = ?, received = ?"
                    " WHERE ruid = ?",
                    (self.stamp(c.expires_at), self.stamp(now), c.cseq, c.received, c.ruid),
                )
            )
        return statements

    def _sweep(self, now: float) -> list[Statement]:
        """Kamailio's usrloc timer: expired contacts leave the table only when it runs."""
        if now < self._next_sweep:
            return []
        self._next_sweep = now + SWEEP_SECONDS
        expired = [r for r, c in self.contacts.items() if c.expires_at <= now]
        for ruid in expired:
            del self.contacts[ruid]
        return [("DELETE FROM location WHERE ruid = ?", (ruid,)) for ruid in expired]

    def _churn(self, now: float) -> list[Statement]:
        statements: list[Statement] = []
        live = [r for r, c in self.contacts.items() if not c.silent]
        if live and self.rng.random() < P_DEREGISTER:
            ruid = self.rng.choice(live)  # REGISTER with Expires: 0
            del self.contacts[ruid]
            statements.append(("DELETE FROM location WHERE ruid = ?", (ruid,)))
        online = {c.username for c in self.contacts.values()}
        if len(online) < ONLINE_SHARE * len(self.accounts) and self.rng.random() < P_REGISTER:
            offline = [a.username for a in self.accounts if a.username not in online]
            if offline:
                statements += self._register(self.rng.choice(offline), now)
        return statements
