"""Which table of the database is the accounts directory, and which of its columns feed a
contact's owner, caller ids and group: ``RTM_DIRECTORY``.

``accounts`` (the default) is rtm's own table, every field its own column. Kamailio's
``subscriber`` has none of them, so an operator who keeps people there names the columns
they added: ``subscriber:owner=rpid,caller_id=cli,caller_id_2=cli2,group=team``. A field
left out shows empty; ``none`` turns the directory off. Every table needs ``username`` and
``domain`` columns (Kamailio's and rtm's have them), matched as the SQLite store matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg import sql

FIELDS = ("owner", "caller_id", "caller_id_2", "group")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class DirectorySpec:
    """A directory table and the column behind each field (None: the field stays empty)."""

    table: str | None = "accounts"
    columns: dict[str, str | None] = field(default_factory=lambda: {f: f for f in FIELDS})

    def select(self, where: sql.Composable | None = None) -> sql.Composed:
        """``SELECT username, domain, <column> AS owner, ...`` from the table."""
        assert self.table is not None
        fields = [
            sql.SQL("coalesce({}::text, '') AS {}").format(
                sql.Identifier(column) if column else sql.Literal(""), sql.Identifier(name)
            )
            for name, column in self.columns.items()
        ]
        query = sql.SQL(
            "SELECT username::text AS username, coalesce(domain::text, '') AS domain, {} FROM {}"
        ).format(sql.SQL(", ").join(fields), sql.Identifier(self.table))
        return query if where is None else query + sql.SQL(" WHERE ") + where


def parse_directory(text: str) -> DirectorySpec:
    """``RTM_DIRECTORY``'s value; ValueError says what is wrong with it."""
    text = text.strip()
    if text in ("", "accounts"):
        return DirectorySpec()
    if text == "none":
        return DirectorySpec(table=None, columns={})
    table, _, mapping = text.partition(":")
    table = table.strip()
    if not IDENTIFIER.fullmatch(table):
        raise ValueError(f"RTM_DIRECTORY: {table!r} is not a table name")
    columns: dict[str, str | None] = {name: None for name in FIELDS}
    if not mapping.strip() and table == "accounts":
        return DirectorySpec()
    for part in filter(None, (p.strip() for p in mapping.split(","))):
        name, equals, column = (s.strip() for s in part.partition("="))
        if name not in FIELDS or not equals:
            raise ValueError(
                f"RTM_DIRECTORY: {part!r} is not FIELD=column (fields: {', '.join(FIELDS)})"
            )
        if not IDENTIFIER.fullmatch(column):
            raise ValueError(f"RTM_DIRECTORY: {column!r} is not a column name")
        columns[name] = column
    return DirectorySpec(table=table, columns=columns)
