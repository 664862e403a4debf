"""The secure message queue: rows of ``messages`` still ENQUEUED.

``payload`` is never selected: the column list below is explicit on purpose.
"""

from __future__ import annotations

from ..config import Config
from ..rows import Row
from ..times import iso
from .sqlite_source import QueryCollector, path_from_url

QUEUE_SQL = """
SELECT id, uuid, api_version, from_account, to_account, from_number, to_number,
       from_seq, to_seq, managed, received, sent, status
FROM messages WHERE status = 'ENQUEUED'
"""


def message_row(record: dict[str, object]) -> Row:
    received = record.get("received")
    from_account = str(record.get("from_account") or "")
    to_account = str(record.get("to_account") or "")
    return {
        "id": str(record["id"]),
        "uuid": str(record.get("uuid") or ""),
        "received": iso(received / 1000, millis=True)
        if isinstance(received, (int, float))
        else None,
        "from": str(record.get("from_number") or "") or from_account,
        "to": str(record.get("to_number") or "") or to_account,
        "from_account": from_account,
        "to_account": to_account,
        "status": str(record.get("status") or ""),
        "sent": record.get("sent"),
        "api_version": record.get("api_version"),
        "from_seq": record.get("from_seq"),
        "to_seq": record.get("to_seq"),
        "managed": bool(record.get("managed")),
    }


# The rows the change log names (a message that left the queue is not returned: deleted).
QUEUE_KEYED_SQL = QUEUE_SQL + " AND id IN ({keys})"


class QueueCollector(QueryCollector):
    def __init__(self, path: str) -> None:
        super().__init__(
            "queue", path, QUEUE_SQL, message_row, logged=("messages",), keyed_sql=QUEUE_KEYED_SQL
        )


def open_source(table: str, url: str, config: Config) -> QueryCollector:
    return QueueCollector(path_from_url(url))
