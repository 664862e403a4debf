"""SIP on the wire, as rtm meets it: hostile URIs to parse (`uri.py`), a small OPTIONS client
(`options.py`) and the background loop that probes every trunk host with it (`probes.py`).

May import: server.config and server.times only. Nothing here knows of tables, collectors,
the hub or the web; the collectors turn what it finds into rows.
"""
