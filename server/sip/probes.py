"""Probe every trunk host with SIP OPTIONS at an interval, in one background task.

``ProbeLoop.track(targets)`` says what to probe; the loop probes them all every
``interval`` seconds (at once when a new target appears), at most ``concurrency`` at a time,
each within ``timeout`` seconds, and keeps only the latest result per target. The task is
started by the first ``track()`` and restarted by the next one if it ever died; a crash is
reported once (``ProbeLoopCrashed``) so the runner shows the source stale instead of losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ..config import Config
from .options import TRANSPORTS, ProbeResult, probe, tls_context
from .uri import DEFAULT_PORTS

log = logging.getLogger("rtm.trunks.options")


# A bound on one source's probing work: beyond it, the rest stay unprobed (PENDING).
MAX_TARGETS = 2000
# Where SIP listens, for the transports the OPTIONS client speaks, when a URI or the trunk
# table gives no port.
PROBED_PORTS = {transport: DEFAULT_PORTS[transport] for transport in TRANSPORTS}


class ProbeLoopCrashed(RuntimeError):
    """The probing task died of a bug; raised once by the next ``track()``, which restarts it."""


class Target(NamedTuple):
    """Where a trunk answers SIP."""

    host: str
    port: int
    transport: str


@dataclass(frozen=True)
class ProbeSettings:
    """How often and how patiently trunks are probed; ``ca_file`` adds a trusted TLS CA."""

    interval: float = 5.0
    timeout: float = 2.0
    ca_file: str = ""
    concurrency: int = 32

    @classmethod
    def from_config(cls, config: Config) -> ProbeSettings:
        """From RTM_OPTIONS_INTERVAL, RTM_OPTIONS_TIMEOUT and RTM_OPTIONS_CA_FILE."""
        return cls(config.options_interval, config.options_timeout, config.options_ca_file)


class ProbeLoop:
    """Keeps the latest OPTIONS result of every tracked target, probing in the background."""

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        # Built once: loading the CA store per probe would cost more than the probe.
        self._context = tls_context(settings.ca_file)
        self._targets: frozenset[Target] = frozenset()
        self._results: dict[Target, ProbeResult] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._round_done = asyncio.Condition()
        self.rounds = 0

    def track(self, targets: Iterable[Target]) -> None:
        """Probe exactly these targets from now on; raises ProbeLoopCrashed once after a crash."""
        wanted = frozenset(sorted(set(targets))[:MAX_TARGETS])
        if wanted - self._targets:
            self._wake.set()
        self._targets = wanted
        task = self._task
        if task is not None and not task.done():
            return
        self._task = asyncio.create_task(self._run(), name="rtm-options-prober")
        if task is not None and not task.cancelled() and task.exception() is not None:
            raise ProbeLoopCrashed(f"OPTIONS prober restarted after: {task.exception()!r}")

    def result(self, target: Target) -> ProbeResult | None:
        """The latest result for ``target``, None before its first probe has finished."""
        return self._results.get(target)

    async def probe_all(self) -> None:
        """Probe every tracked target once, concurrently (bounded), and keep the results."""
        targets = sorted(self._targets)
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(target: Target) -> ProbeResult:
            async with gate:
                return await probe(
                    target.host,
                    target.port,
                    target.transport,
                    within=self.settings.timeout,
                    context=self._context,
                )

        results = await asyncio.gather(*(one(target) for target in targets))
        self._results = dict(zip(targets, results, strict=True))
        async with self._round_done:
            self.rounds += 1
            self._round_done.notify_all()

    async def wait_rounds(self, count: int) -> None:
        """Return once ``count`` probe rounds in all have finished."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds >= count)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self.probe_all()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.interval):
                    await self._wake.wait()

    async def close(self) -> None:
        """Stop probing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
