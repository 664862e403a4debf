"""Several ``rtm serve`` instances sharing one live state through Redis (``RTM_REDIS``).

One instance at a time holds the **lease** (``lease.py``) and runs the collectors into a
hub of its own, whose diffs the **publisher** (``publisher.py``) appends to a Redis Stream
per table, fenced by the lease's token, with a snapshot of each table beside it. Every
instance, the leader included, serves what its **follower** (``follower.py``) reads from
those streams, at the leader's seq, so a browser can resume on any instance under the
cluster's epoch, which ``epochs.py`` replaces when Redis lost history. ``entries.py`` is
what travels (pure); ``keys.py`` the names in Redis; ``node.py`` the instance's part in
the cluster, started by the app's lifespan.

May import: server.hub, server.protocol, server.diff, server.rows, server.times,
server.config and server.supervise (never the app, the web side or the collectors, which
the app hands over as a function that starts them).
"""
