"""The ``rtm`` command: ``rtm serve`` here; other subcommands come from their modules."""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import ConfigError, from_env, is_postgres

if TYPE_CHECKING:
    import uvicorn

DESCRIPTION = (
    "rtm shows a NOC, right now, who is registered on the SIP server, how its trunks are and"
    " which secure messages wait in the queue. 'rtm serve' runs the dashboard; settings come"
    " from RTM_* variables (README.md)."
)
# Each module exposes ``register(subparsers)`` adding its own subcommands.
SUBCOMMAND_MODULES = ("server.demo.run", "server.auth.cli")
STOP_GRACE = 5  # seconds a stopping server waits for requests still running


def _listening_server() -> type[uvicorn.Server]:
    """uvicorn's Server that still says "Uvicorn running on …" once it listens on a socket
    it was given (uvicorn only says so for sockets it binds itself; tests and operators'
    scripts wait for that line)."""
    import uvicorn

    class Listening(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and sockets:
                host, port = sockets[0].getsockname()[:2]
                scheme = "https" if self.config.is_ssl else "http"
                host = f"[{host}]" if ":" in host else host
                logging.getLogger("uvicorn.error").info(
                    "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", scheme, host, port
                )

    return Listening


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from . import database
    from .app import create_app
    from .auth.setup import SERVING_URL, announce, base_url
    from .wire import PreparedFrameProtocol

    overrides = {
        name: value
        for name, value in {
            "db": args.db,
            "host": args.host,
            "port": args.port,
            "tz": args.tz,
            "tls_cert": args.tls_cert,
            "tls_key": args.tls_key,
            "demo": True if args.demo else None,
        }.items()
        if value is not None
    }
    try:
        config = from_env().replace(**overrides).validate()
        app = create_app(config)
    except (ConfigError, ValueError, RuntimeError, OSError, *database.DatabaseError) as exc:
        print(f"rtm: {exc}", file=sys.stderr)
        return 2
    try:
        # Bound here, before anything is recorded: a port already taken fails now, with a
        # message, and leaves the store's address of the server that does run untouched.
        listener = socket.create_server(
            (config.host, config.port),
            family=socket.AF_INET6 if ":" in config.host else socket.AF_INET,
        )
    except OSError as exc:
        print(f"rtm: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr)
        return 2
    scheme = "https" if config.tls_cert else "http"
    print(f"rtm serving on {scheme}://{config.host}:{config.port}/", file=sys.stderr)
    # `rtm display add` (another process, maybe without our RTM_PORT) prints kiosk URLs on it.
    database.write_setting(config.db, SERVING_URL, base_url(config))
    announce(app.state.first_run, config)  # the setup link, when the store has no user yet
    server = _listening_server()(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            # rtm checks (and counts) frames over ws_max_frame itself; uvicorn keeps a hard
            # cap above it (4 bytes per character at worst) so memory stays bounded anyway.
            ws_max_size=4 * config.ws_max_frame,
            ssl_certfile=config.tls_cert or None,
            ssl_keyfile=config.tls_key or None,
            # Access logs would carry display tokens from URLs; rtm keeps no logs of who looked.
            access_log=False,
            # uvicorn would believe X-Forwarded-For/-Proto from any loopback peer; rtm trusts
            # a proxy header only when RTM_TRUST_PROXY_HEADER names it (server/auth/request.py).
            proxy_headers=False,
            log_level="info",
            # uvicorn's websockets-sansio protocol, writing frames prepared once for every
            # client (permessage-deflate without server context takeover): server/wire.py.
            ws=PreparedFrameProtocol,
            lifespan="on",
            # A stop (Ctrl-C, systemctl, a balancer draining) must not wait forever for a
            # request or a peer that stopped answering: at most this long, then it closes.
            timeout_graceful_shutdown=STOP_GRACE,
        )
    )
    server.run(sockets=[listener])
    # As uvicorn.run: a start-up that failed (the lifespan raised) exits non-zero.
    return 0 if server.started else 3


def _install_triggers(args: argparse.Namespace) -> int:
    from . import postgres, store

    tables = None
    if args.table:
        every = {**store.LOGGED_TABLES, **postgres.KAMAILIO_LOGGED_TABLES}
        tables = {}
        for spec in args.table:
            table, _, key = spec.partition("=")
            if not key and table not in every:
                print(f"rtm: --table {spec}: name its key column (TABLE=COLUMN)", file=sys.stderr)
                return 2
            tables[table] = key or every[table]
    try:
        if not is_postgres(args.url):
            raise ConfigError(f"{args.url!r} is not a postgresql:// URL")
        covered = postgres.install_triggers(args.url, tables)
    except (ConfigError, *postgres.DRIVER_ERRORS) as exc:
        print(f"rtm: {exc}", file=sys.stderr)
        return 1
    print(f"change log on: {', '.join(covered) or 'no table (none of them exists)'}")
    return 0


def _add_db_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="rtm's change log in a database rtm reads")
    actions = db.add_subparsers(dest="db_command", required=True)
    install = actions.add_parser(
        "install-triggers",
        help="add rtm_changes and its triggers to a PostgreSQL database rtm only reads",
        description="Create rtm_changes, one trigger function and a trigger per table on a"
        " database rtm reads but does not own (a Kamailio cluster's). Kamailio's tables get"
        " nothing else. Safe to run again.",
    )
    install.add_argument("url", help="postgresql://user@host/database")
    install.add_argument(
        "--table",
        action="append",
        metavar="TABLE[=KEY]",
        help="a table to follow and its key column (default: location, silo, subscriber and"
        " rtm's own tables, those that exist)",
    )
    install.set_defaults(handler=_install_triggers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtm", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the dashboard")
    serve.add_argument(
        "--db", help="store: a SQLite path or a postgresql:// URL (RTM_DB, default var/rtm.db)"
    )
    serve.add_argument("--host", help="listen address (RTM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (RTM_PORT, default 8080)")
    serve.add_argument("--tz", help="time zone for display (RTM_TZ, default UTC)")
    serve.add_argument("--tls-cert", help="PEM certificate: serve HTTPS/WSS (RTM_TLS_CERT)")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert (RTM_TLS_KEY)")
    serve.add_argument("--demo", action="store_true", help="generate demo traffic (RTM_DEMO=1)")
    serve.set_defaults(handler=_serve)
    _add_db_commands(commands)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # that part of rtm is not installed
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
