"""Demo traffic: a simulated PBX writing into the store exactly as a SIP stack would.

`traffic.py` is the I/O-free model (phones registering, expiring, moving), with the made-up
`people.py`, the flapping `trunks.py` and the queued `messages.py`; `run.py` writes its
statements into a store, in the app's lifespan (`make run`) or alone (`rtm demo`).

May import: server.store, server.config, server.times. The demo never reads the live
pipeline: the collectors read its rows like anybody else's.
"""
