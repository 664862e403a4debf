"""The message queue from Kamailio's msilo: MESSAGEs stored for offline users (table ``silo``).

``RTM_QUEUE=msilo+sqlite:////abs/kamailio.sqlite``. msilo deletes a row once the message is
delivered, so every row is still queued. ``body`` (the message text) is never selected:
the column list is explicit on purpose. ``PRAGMA data_version`` makes an unchanged file
cost one pragma per poll.
"""

from __future__ import annotations

from ..config import Config
from ..rows import Row
from ..sip.uri import user_of
from ..times import iso
from .sqlite_source import QueryCollector, path_from_url

SILO_SQL = """
SELECT id, src_addr, dst_addr, username, domain, inc_time, exp_time, snd_time, ctype,
       extra_hdrs, callid, status
FROM silo
"""


def silo_row(record: dict[str, object]) -> Row:
    """One queue row for one stored message."""
    received = record.get("inc_time")
    sent = record.get("snd_time")
    src = str(record.get("src_addr") or "")
    return {
        "id": str(record["id"]),
        "uuid": str(record.get("callid") or ""),
        "received": iso(float(received), millis=True)
        if isinstance(received, (int, float)) and received > 0
        else None,
        "from": src,
        "to": str(record.get("dst_addr") or ""),
        "from_account": user_of(src),
        "to_account": str(record.get("username") or ""),
        "status": "ENQUEUED",
        # msilo stamps snd_time when it tried a delivery (m_dump); the row stays until it works.
        "sent": 1 if isinstance(sent, int) and sent > 0 else 0,
        "api_version": None,
        "from_seq": None,
        "to_seq": None,
        "managed": False,
    }


class MsiloCollector(QueryCollector):
    def __init__(self, path: str) -> None:
        super().__init__("queue", path, SILO_SQL, silo_row, scheme="msilo+sqlite")


def open_source(table: str, url: str, config: Config) -> QueryCollector:
    return MsiloCollector(path_from_url(url))
