"""The cluster's epoch in Redis: created once, replaced when Redis lost part of its history.

Every instance's clients resume under the epoch, so its seqs must name one history. Redis
restarted empty lost the epoch with everything else: the first instance back makes a new
one (``SET NX``). Redis restored from an older save (an RDB snapshot, an AOF fsync'd every
second) keeps the epoch but loses the stream entries written after that save, which the
instances and their clients took; a leader that never read them would number other diffs
with the same seqs, and an instance holding them would skip those as "held already". So an
instance that finds a stream ending before the entry it took last, or a new entry
numbered with a seq it holds, replaces the epoch: compare-and-set, so several instances
noticing at once make one new epoch. Every instance then reloads, the leader steps down
and the next one republishes the snapshots, and every client is sent a fresh snapshot.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from .keys import Keys

REPLACE = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
"""


class HistoryLost(Exception):
    """Redis's history of a table is not what this instance took from it any more."""


def new_epoch() -> str:
    return f"{int(time.time())}-{secrets.token_hex(4)}"


def order(stream_id: str) -> tuple[int, int]:
    """A stream id (``ms-seq``) as something that sorts as Redis orders them."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def current(redis: Any, keys: Keys) -> str:
    """The cluster's epoch, made now if Redis holds none (a new cluster, or Redis emptied)."""
    await redis.set(keys.epoch, new_epoch(), nx=True)
    return str(await redis.get(keys.epoch))


async def replace(redis: Any, keys: Keys, old: str) -> str:
    """Replace epoch ``old`` by a new one, unless another instance did already; the epoch
    now."""
    return str(await redis.eval(REPLACE, 1, keys.epoch, old, new_epoch()))


async def lost_table(redis: Any, keys: Keys, taken: Mapping[str, str]) -> str | None:
    """The first table whose stream ends before the entry this instance took last from it
    (``taken``: table -> stream id), or None when Redis still holds all of them."""
    for table, stream_id in taken.items():
        if order(stream_id) == (0, 0):
            continue  # nothing taken from the stream yet
        last = await redis.xrevrange(keys.stream(table), count=1)
        if not last or order(str(last[0][0])) < order(stream_id):
            return table
    return None
