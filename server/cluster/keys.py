"""The names of rtm's keys in the Redis a cluster shares (one cluster per Redis database)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Every key under one prefix, so that ``redis-cli --scan --pattern 'rtm:*'`` finds them."""

    prefix: str = "rtm:"

    @property
    def lease(self) -> str:
        """The leader's fencing token and name, set NX with a TTL."""
        return self.prefix + "lease"

    @property
    def fence(self) -> str:
        """A counter: each new lease takes the next token."""
        return self.prefix + "fence"

    @property
    def epoch(self) -> str:
        """The cluster's epoch: the resume tokens of every instance's clients."""
        return self.prefix + "epoch"

    def stream(self, table: str) -> str:
        """The table's diffs (and source health), in seq order."""
        return f"{self.prefix}stream:{table}"

    def snapshot(self, table: str) -> str:
        """A hash: ``meta`` (epoch, seq, stream id, source, parts) and the rows at that
        seq in ``rows:0``, ``rows:1``, … (entries.py)."""
        return f"{self.prefix}snapshot:{table}"

    def snapshot_draft(self, table: str, token: str) -> str:
        """A snapshot being written by the leader holding ``token``, renamed to
        ``snapshot(table)`` once whole (publisher.py); it expires if that leader dies."""
        return f"{self.prefix}snapshot-draft:{table}:{token}"
