"""Sources that ask a running Kamailio: JSON-RPC over HTTP (`rpc.py`), registrations from
`ul.dump` with evapi hints (`registrations.py`, `evapi.py`), and trunks from `uac.reg_dump` and
`dispatcher.list` (`trunks.py`, parsed in `parts.py`).

May import: what server.collectors may (its base, directory and trunk rows, server.rows,
server.sip, server.config, server.times).
"""
