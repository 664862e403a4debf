"""A Kamailio killed and restarted under 500 clients (``python -m bench faults-kamailio``).

bench/faults.py's clients and figures on an rtm whose registrations come from a real
Kamailio (JSON-RPC plus evapi, as docs/kamailio.md recommends) with sipp's phones on it:
``kill -9`` of Kamailio, 10 s down, then Kamailio started again on the same ports and the
phones registering again (a restarted Kamailio with usrloc in memory has forgotten them).
Every client must be told the accounts are stale and why, get no accounts diff while
Kamailio is gone (its last rows stay, marked stale: never a wrong one), and end equal to
the server, whose accounts must be Kamailio's own contacts.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.collectors.kamailio.conftest import Kamailio, Sipp, free_port

from .faults import CONTACTS, Bench, closes, connect_all, queue_fault
from .measure import Figure, seconds

PHONES = CONTACTS


def register(sipp: Sipp, kamailio: Kamailio) -> None:
    # An hour's expiry: nothing lapses during the bench, so every change is the fault's.
    rows = [(f"phone{n:04d}", 3600) for n in range(PHONES)]
    sipp.run("register.xml", kamailio, rows=rows, rate=500, port=free_port(udp=True))


def killed(bench: Bench, kamailio: Kamailio, sipp: Sipp) -> Callable[[], None]:
    """``kill -9`` of Kamailio; the repair starts it again and re-registers the phones."""
    kamailio.kill()

    def restart() -> None:
        kamailio.start()
        register(sipp, kamailio)

    return restart


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="rtm-faults-kamailio-") as workdir:
        kamailio = Kamailio(Path(workdir) / "kamailio")
        kamailio.start()
        sipp = Sipp(Path(workdir) / "sipp")
        try:
            register(sipp, kamailio)
            sources = {
                "RTM_REGISTRATIONS": kamailio.source_url,
                "RTM_KAMAILIO_EVAPI": kamailio.evapi_url,
                "RTM_POLL_ACCOUNTS": "1",
            }
            (Path(workdir) / "rtm").mkdir()
            bench = Bench(Path(workdir) / "rtm", sources)
            try:
                figures = [
                    dataclasses.replace(f, what=f"{f.what}; accounts: {PHONES} phones on Kamailio")
                    for f in connect_all(bench)
                ]
                figures += queue_fault(
                    bench,
                    "Kamailio killed (kill -9) for 10 s, restarted, phones re-registered",
                    lambda: killed(bench, kamailio, sipp),
                    table="accounts",
                )
                began = time.monotonic()
                live = {c["Ruid"] for c in kamailio.contacts()}
                shown = set(bench.truth()["accounts"])
                first = f"at first {len(live - shown)} missing, {len(shown - live)} extra"
                while shown != live and time.monotonic() - began < 30:
                    time.sleep(0.25)
                    shown = set(bench.truth()["accounts"])
                same = shown == live
                if not same:  # what rtm said meanwhile, for whoever reads the failure
                    print(bench.server.log()[-4000:], file=sys.stderr)
                figures.append(
                    Figure("faults", "after Kamailio's restart: the server's accounts == "
                           "Kamailio's contacts", str(same), f"{len(live)} contacts; "
                           f"{seconds(time.monotonic() - began)} after the clients settled"
                           f" ({first})")
                )  # fmt: skip
                figures.append(closes(bench))
            finally:
                bench.stop()
        finally:
            sipp.close()
            kamailio.stop()
    return figures
