"""Accelerated life for the soak (bench/soak.py): a SIP service's writes into rtm's store.

One thread, one connection, as Kamailio's db_sqlite and the PrivateServer write: ``RATE``
contact changes a second around ``CONTACTS`` contacts (re-registrations, new
registrations, short ones that lapse by themselves, de-registrations, hostile User-Agents),
the expired contacts purged as Kamailio's timer does, trunks failing and recovering every
``trunk_period`` seconds, and messages queued and delivered. ``pause()`` holds the writes
(so a page can be compared with the server at rest); a write refused while the store is
busy is retried on the next tick, never lost or fatal.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid

from server import store
from server.times import unix_to_julian
from tests.store_rows import CONTACT_SQL, contact_params

CONTACTS = 20_000
RATE = 200  # contact changes per second
TRUNKS = 12
HOSTILE_AGENTS = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "javascript:alert(document.cookie)",
    "\u202eevil\u202c-agent",
    '=HYPERLINK("http://attacker.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "A" * 2048,
)


def seed(db: str, contacts: int = CONTACTS) -> list[int]:
    """A migrated store with ``contacts`` contacts and ``TRUNKS`` trunks; the contacts' ids."""
    store.migrate(db)
    conn = store.connect(db)
    try:
        conn.execute("BEGIN")
        conn.executemany(CONTACT_SQL, (contact_params(f"u{n}", 7200) for n in range(contacts)))
        for n in range(TRUNKS):
            conn.execute("INSERT INTO trunks (name, host) VALUES (?, ?)", (f"trunk-{n}", "sbc"))
            conn.execute(
                "INSERT INTO trunk_status (trunk, status, since) VALUES (?, 'OK', ?)",
                (f"trunk-{n}", int(time.time())),
            )
        conn.execute("COMMIT")
        return [row[0] for row in conn.execute("SELECT id FROM location")]
    finally:
        conn.close()


class Life(threading.Thread):
    """Writes ``RATE`` contact changes a second (and trunk and queue traffic) until stopped."""

    def __init__(self, db: str, ids: list[int], trunk_period: float) -> None:
        super().__init__(daemon=True)
        self.db, self.ids, self.trunk_period = db, list(ids), trunk_period
        self.rng = random.Random(12)
        self.stopped, self.running, self.idle = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.running.set()
        self.written = self.refused = 0
        self.next_user = len(ids)
        self.queued: list[str] = []

    def pause(self) -> None:
        """Hold the writes; return once the last one is committed."""
        self.running.clear()
        self.idle.wait(30)

    def resume(self) -> None:
        self.idle.clear()
        self.running.set()

    def stop(self) -> None:
        self.stopped.set()
        self.running.set()
        self.join(30)

    def run(self) -> None:
        conn = store.connect(self.db)
        conn.execute("PRAGMA busy_timeout = 2000")
        start, n, last_second, last_trunks = time.monotonic(), 0, 0, time.monotonic()
        try:
            while not self.stopped.is_set():
                if not self.running.is_set():
                    self.idle.set()
                    self.running.wait()
                    start, n = time.monotonic(), 0
                    continue
                time.sleep(max(0.0, start + n / RATE - time.monotonic()))
                n += 1
                try:
                    self.contact_change(conn)
                    if int(time.monotonic()) != last_second:  # once a second
                        last_second = int(time.monotonic())
                        self.every_second(conn)
                    if time.monotonic() - last_trunks >= self.trunk_period:
                        last_trunks = time.monotonic()
                        self.flip_trunks(conn)
                    self.written += 1
                except sqlite3.OperationalError:  # busy (a frozen reader): next tick
                    self.refused += 1
        finally:
            conn.close()

    def contact_change(self, conn: sqlite3.Connection) -> None:
        roll, rng = self.rng.random(), self.rng
        grow = len(self.ids) < CONTACTS  # registrations and removals keep the size near
        if roll < 0.6 or not self.ids:
            target = rng.choice(self.ids)
            conn.execute(
                "UPDATE location SET expires = ?, cseq = cseq + 1, user_agent = ? WHERE id = ?",
                (unix_to_julian(time.time() + 7200), f"PrivateGSM/{rng.randrange(10**6)}", target),
            )
        elif roll < 0.65:
            agent = rng.choice(HOSTILE_AGENTS) + str(rng.randrange(1000))
            conn.execute(
                "UPDATE location SET user_agent = ? WHERE id = ?", (agent, rng.choice(self.ids))
            )
        elif roll < (0.9 if grow else 0.75):  # more registrations than removals below the size
            # A registration; one in four is short (5-15 s) and lapses by itself (an expiry):
            # short, so a comparison (writes held) waits little for those in flight to lapse.
            expires = rng.uniform(5, 15) if rng.random() < 0.25 else 7200
            self.next_user += 1
            params = contact_params(f"u{self.next_user}", expires, port=rng.randrange(1024, 65535))
            cursor = conn.execute(CONTACT_SQL, params)
            self.ids.append(int(cursor.lastrowid or 0))
        else:  # a de-registration
            index = rng.randrange(len(self.ids))
            self.ids[index], self.ids[-1] = self.ids[-1], self.ids[index]
            conn.execute("DELETE FROM location WHERE id = ?", (self.ids.pop(),))

    def every_second(self, conn: sqlite3.Connection) -> None:
        """Purge lapsed contacts (as Kamailio's timer), queue two messages, deliver two."""
        lapsed = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM location WHERE expires < ?", (unix_to_julian(time.time() - 5),)
            )
        ]
        if lapsed:
            gone = set(lapsed)
            self.ids = [i for i in self.ids if i not in gone]
            conn.executemany("DELETE FROM location WHERE id = ?", [(i,) for i in lapsed])
        for _ in range(2):
            message = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO messages (id, uuid, from_account, to_account, received, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message, message.upper(), "u1", "u2", int(time.time() * 1000), b"never read"),
            )
            self.queued.append(message)
        while len(self.queued) > 40:
            conn.execute(
                "UPDATE messages SET status = 'DELIVERED', sent = sent + 1 WHERE id = ?",
                (self.queued.pop(0),),
            )

    def flip_trunks(self, conn: sqlite3.Connection) -> None:
        """A third of the trunks fail (with a reason) and the failed ones recover."""
        for n in range(TRUNKS):
            failed = self.rng.random() < 1 / 3
            conn.execute(
                "UPDATE trunk_status SET status = ?, reason = ?, since = ? WHERE trunk = ?",
                (
                    "FAILED" if failed else "OK",
                    "408 Request Timeout" if failed else None,
                    int(time.time()),
                    f"trunk-{n}",
                ),
            )
