"""Leadership: one Redis key, set NX with a TTL, renewed by its holder, released on a clean stop.

The key's value is the holder's **fencing token** (a counter taken at each acquisition)
and name. Renewing, releasing and every write the leader makes (publisher.py) are scripts
that first check the key still holds that token, so a leader that was paused past its TTL
(a GC pause, a frozen VM) cannot renew, nor publish, once another took over: Redis says
``FENCED`` and it steps down.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .keys import Keys

log = logging.getLogger("rtm.cluster")

# TTL 3 s renewed every 1 s: a holder that dies is replaced within TTL + one acquire
# attempt (ACQUIRE_EVERY), under 5 s; a holder must miss three renewals to lose it.
TTL = 3.0
RENEW_EVERY = 1.0
ACQUIRE_EVERY = 0.5
# How long the leader's event loop may be busy (a first full read of a million contacts
# builds rows for ~25 s) and still keep the lease: renewed by a thread meanwhile.
STALL_LIMIT = 60.0

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """This instance's claim on the leadership (``value`` is None when it holds none)."""

    def __init__(self, redis: Any, keys: Keys, holder: str, ttl: float = TTL) -> None:
        self.redis = redis
        self.keys = keys
        self.holder = holder
        self.ttl_ms = int(ttl * 1000)
        self.value: str | None = None
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this instance now does."""
        if await self.redis.exists(self.keys.lease):
            return False  # the common case: no token is spent while a leader lives
        token = await self.redis.incr(self.keys.fence)
        value = f"{token}:{self.holder}"
        if await self.redis.set(self.keys.lease, value, nx=True, px=self.ttl_ms):
            self.value = value
            return True
        return False

    async def renew(self) -> bool:
        """Push the TTL back; False (and the lease forgotten) when another holds it now."""
        if self.value is None:
            return False
        if await self._renew(keys=[self.keys.lease], args=[self.value, self.ttl_ms]):
            return True
        self.value = None
        return False

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so the next leader need not wait out
        the TTL."""
        value, self.value = self.value, None
        if value is not None:
            await self._release(keys=[self.keys.lease], args=[value])

    async def holder_name(self) -> str | None:
        """Who holds the lease now (its name), for the status page."""
        value = await self.redis.get(self.keys.lease)
        return None if value is None else str(value).split(":", 1)[-1]


class KeepAlive(threading.Thread):
    """Renews a held lease from a thread of its own (a synchronous Redis connection), so a
    leader whose event loop is busy for longer than the TTL (a first full read of a big
    table) keeps it. The loop ``beat()``s whenever it runs; beats stopping for STALL_LIMIT
    (a hung loop) stop the renewals and another instance takes over. A stopped or killed
    process stops this thread with it, so failover is as before. ``lost`` is set once the
    lease is another's (or Redis refused for longer than the TTL)."""

    def __init__(self, url: str, keys: Keys, value: str, ttl: float = TTL,
                 stall_limit: float = STALL_LIMIT) -> None:  # fmt: skip
        super().__init__(name="rtm-lease", daemon=True)
        import redis  # only a cluster needs it

        self.every = ttl * RENEW_EVERY / TTL  # three renewals per TTL, as the loop did
        self.client = redis.Redis.from_url(
            url, socket_timeout=self.every, socket_connect_timeout=self.every
        )
        self.keys, self.value, self.ttl, self.stall_limit = keys, value, ttl, stall_limit
        self.lost = threading.Event()
        self.renewals = 0  # done so far (for tests: the lease outlived the loop's silence)
        self._stop = threading.Event()
        self._beat = time.monotonic()

    def beat(self) -> None:
        self._beat = time.monotonic()

    def run(self) -> None:
        renewed = time.monotonic()
        try:
            while True:
                slept = time.monotonic()
                if self._stop.wait(self.every):
                    break
                if time.monotonic() - self._beat > self.stall_limit:
                    log.warning("the event loop is hung: letting the lease lapse")
                    break
                self._late("woke", slept, self.every)  # the GIL held, or the VM paused
                asked = time.monotonic()
                try:
                    if not self.client.eval(
                        RENEW, 1, self.keys.lease, self.value, int(self.ttl * 1000)
                    ):
                        log.warning("the lease is another's: not renewed")
                        break
                    renewed = time.monotonic()
                    self.renewals += 1
                    self._late("renewal answered", asked, 0.0)
                except Exception as exc:  # noqa: BLE001 - Redis away: retry until the TTL is gone
                    log.warning("lease renewal failed: %s", str(exc) or type(exc).__name__)
                    if time.monotonic() - renewed >= self.ttl:
                        break
        finally:
            self.lost.set()
            self.client.close()

    def _late(self, what: str, since: float, due: float) -> None:
        """Log a step of the renewal that came a third of the TTL late: whoever reads why
        a lease was lost sees whether this process (woke late) or Redis (answered late)
        was slow."""
        late = time.monotonic() - since - due
        if late > self.ttl / 3:
            log.warning("lease %s %.2f s late", what, late)

    def stop(self) -> None:
        self._stop.set()
