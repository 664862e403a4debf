"""The demo's secure message queue: messages arrive ENQUEUED, delivery is retried, they leave.

A message is DELIVERED once its recipient is online (and the attempt succeeds), EXPIRED
after too many attempts; either way its row is deleted a little later, as the server
purges. The payload is random bytes written once and never read, logged or kept here.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .people import Account

Statement = tuple[str, tuple[Any, ...]]
P_NEW = 0.35  # per tick
MAX_ENQUEUED = 40
P_DELIVERED = 0.8  # an attempt to an online recipient succeeds
MAX_ATTEMPTS = 5
FIRST_ATTEMPT = (1.0, 6.0)  # seconds after arrival
RETRY = (3.0, 10.0)
PURGE_AFTER = (2.0, 15.0)


@dataclass
class QueuedMessage:
    id: str
    to_account: str
    next_attempt: float
    sent: int = 0
    status: str = "ENQUEUED"
    purge_at: float = 0.0


class MessageQueue:
    """The demo's view of ``messages``; ``tick`` enqueues, attempts delivery and purges."""

    def __init__(self, rng: random.Random, accounts: list[Account]) -> None:
        self.rng = rng
        self.accounts = accounts
        self.messages: dict[str, QueuedMessage] = {}
        # Per-account sequence numbers of messages sent and received.
        self._from_seq: Counter[str] = Counter()
        self._to_seq: Counter[str] = Counter()

    def tick(self, now: float, online: set[str]) -> list[Statement]:
        statements = self._attempt(now, online) + self._purge(now)
        enqueued = sum(m.status == "ENQUEUED" for m in self.messages.values())
        if len(self.accounts) > 1 and enqueued < MAX_ENQUEUED and self.rng.random() < P_NEW:
            statements.append(self._enqueue(now))
        return statements

    def _enqueue(self, now: float) -> Statement:
        rng = self.rng
        sender, recipient = rng.sample(self.accounts, 2)
        message = QueuedMessage(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            to_account=recipient.username,
            next_attempt=now + rng.uniform(*FIRST_ATTEMPT),
        )
        self.messages[message.id] = message
        self._from_seq[sender.username] += 1
        self._to_seq[recipient.username] += 1
        payload = rng.randbytes(rng.randrange(64, 1024))
        return (
            "INSERT INTO messages (id, uuid, api_version, from_account, to_account, from_number,"
            " to_number, from_seq, to_seq, managed, received, sent, status, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'ENQUEUED', ?)",
            (message.id, str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
             rng.choice((1, 1, 1, 2)), sender.username, recipient.username,
             sender.caller_id, recipient.caller_id, self._from_seq[sender.username],
             self._to_seq[recipient.username], int(rng.random() < 0.2),
             int(now * 1000), payload),
        )  # fmt: skip

    def _attempt(self, now: float, online: set[str]) -> list[Statement]:
        statements = []
        for m in self.messages.values():
            if m.status != "ENQUEUED" or m.next_attempt > now:
                continue
            m.sent += 1
            if m.to_account in online and self.rng.random() < P_DELIVERED:
                m.status = "DELIVERED"
            elif m.sent >= MAX_ATTEMPTS:
                m.status = "EXPIRED"
            m.next_attempt = now + self.rng.uniform(*RETRY)
            m.purge_at = now + self.rng.uniform(*PURGE_AFTER)
            statements.append(
                ("UPDATE messages SET sent = ?, status = ? WHERE id = ?", (m.sent, m.status, m.id))
            )
        return statements

    def _purge(self, now: float) -> list[Statement]:
        done = [
            m.id for m in self.messages.values() if m.status != "ENQUEUED" and m.purge_at <= now
        ]
        for message_id in done:
            del self.messages[message_id]
        return [("DELETE FROM messages WHERE id = ?", (message_id,)) for message_id in done]
