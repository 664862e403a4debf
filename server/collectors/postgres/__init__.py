"""Sources in PostgreSQL: Kamailio's own tables (usrloc's ``location``, msilo's ``silo``,
auth_db's ``subscriber``) and rtm's (``accounts``, ``trunks``, ``trunk_status``,
``messages``) when ``RTM_DB`` is that database, read by psycopg 3's ``AsyncConnection``.

Change-driven like the embedded store: ``changes.py`` follows the ``rtm_changes`` log that
server/postgres.py's triggers fill, by an indexed poll of ``(txid, seq)``; ``feed.py`` of
the collectors package does the full reads and the reconcile. One source per file:
``registrations.py`` (contacts + the directory of ``directory.py``), ``queue.py``,
``trunks.py``; ``connection.py`` is the one read connection they each hold.

May import: what every collector may (server.rows, server.config, server.times,
server.sip), the collectors' shared modules, and psycopg. Never server.postgres (the
writer's side: migrations and triggers) nor anything above the collectors.
"""
