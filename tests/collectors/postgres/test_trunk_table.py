"""The trunks table of a PostgreSQL store (RTM_DB=postgresql://) feeding the Kamailio trunk
source: the configured host, port and virtual number join Kamailio's uac state."""

from __future__ import annotations

from typing import Any

import pytest

from server.collectors import open_source
from server.collectors.trunk_rows import TrunkTable
from server.config import Config

from ..kamailio.conftest import free_port
from ..kamailio.test_trunks import uac
from .conftest import MakeDatabase, pg_write

pytestmark = pytest.mark.asyncio

TRUNK = (
    "INSERT INTO trunks (name, host, port, transport, virtual_number) VALUES (%s, %s, %s, %s, %s)"
)


async def test_the_trunk_table_of_a_postgresql_store_is_read_and_reread(
    kamailio_db: MakeDatabase,
) -> None:
    url = kamailio_db(kamailio=False)
    pg_write(url, TRUNK, ("carrier-a", "192.0.2.7", 5061, "TLS", "+4930111"))
    table = TrunkTable(url)
    try:
        (trunk,) = await table.read()
        assert (trunk.name, trunk.host, trunk.port, trunk.transport) == (
            "carrier-a", "192.0.2.7", 5061, "TLS",
        )  # fmt: skip
        pg_write(url, "UPDATE trunks SET virtual_number = '+4930222'")
        assert [t.virtual_number for t in await table.read()] == ["+4930222"]
    finally:
        await table.close()


async def test_kamailio_trunks_join_the_trunks_of_a_postgresql_store(
    kamailio_db: MakeDatabase, kamailio_factory: Any
) -> None:
    # It used to fail with "no database at postgresql://…": the join read only SQLite files.
    url, dead = kamailio_db(kamailio=False), free_port(udp=True)
    pg_write(url, TRUNK, ("carrier-a", "127.0.0.1", dead, "UDP", "+4930111"))
    kamailio = kamailio_factory(uacreg=[uac("carrier-a", "acme", dead)])
    collector = open_source("trunks", kamailio.source_url, Config(db=url))
    try:
        rows = await collector.fetch()
        assert rows["carrier-a"]["virtual_number"] == "+4930111"
        assert rows["carrier-a"]["host"] == f"127.0.0.1:{dead}"
    finally:
        await collector.close()
