"""`rtm user add|passwd|del|list` and `rtm display add|list|revoke`.

Passwords come from the first line of stdin when stdin is not a terminal (scripts, tests),
otherwise from two hidden prompts; they are never taken from argv, where `ps` shows them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable

from .. import database, store
from ..config import Config, ConfigError, db_scheme, from_env
from . import Auth
from .identity import ROLES, AuthError
from .setup import SERVING_URL, base_url


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `user` and `display` commands to rtm's command line."""
    user = subparsers.add_parser("user", help="manage people who may sign in")
    users = user.add_subparsers(dest="user_command", required=True)
    add = _command(users, "add", "create a user (password from stdin or prompt)", _user_add)
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    _command(users, "passwd", "change a password; ends the user's sessions", _user_passwd)
    _command(users, "del", "delete a user and end their sessions", _user_del)
    _command(users, "list", "list users and roles", _user_list)
    for name in ("passwd", "del"):
        users.choices[name].add_argument("name")

    display = subparsers.add_parser("display", help="manage wall displays")
    displays = display.add_subparsers(dest="display_command", required=True)
    add = _command(displays, "add", "create a display; prints its kiosk URL", _display_add)
    add.add_argument("name")
    add.add_argument("--base-url", help="how the display reaches rtm, e.g. https://rtm.example")
    _command(displays, "list", "list displays", _display_list)
    revoke = _command(displays, "revoke", "revoke a display; its screen goes dark", _display_rm)
    revoke.add_argument("name")


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace, Auth], None],
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text)
    parser.add_argument(
        "--db", help="store path or postgresql:// URL (default: $RTM_DB or var/rtm.db)"
    )
    parser.set_defaults(handler=lambda args: _run(args, handler))
    return parser


def _run(args: argparse.Namespace, handler: Callable[[argparse.Namespace, Auth], None]) -> int:
    try:
        config = from_env()
        if args.db:
            config = config.replace(db=args.db)
        db_scheme(config.db)  # an unknown URL scheme fails here, not as a folder
        store.migrate(config.db)
        handler(args, Auth(config))
    except (AuthError, ConfigError, RuntimeError, OSError, *database.DatabaseError) as exc:
        print(f"rtm: {exc}", file=sys.stderr)
        return 1
    return 0


def read_password() -> str:
    """First line of stdin if piped, else asked twice on the terminal."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AuthError("the two passwords differ")
    return first


def _user_add(args: argparse.Namespace, auth: Auth) -> None:
    auth.users.add(args.name, args.role, read_password())
    print(f"user {args.name} ({args.role}) added")


def _user_passwd(args: argparse.Namespace, auth: Auth) -> None:
    if args.name not in {u["name"] for u in auth.users.rows()}:
        raise AuthError(f"no user {args.name!r}")
    auth.users.set_password(args.name, read_password())
    print(f"password of {args.name} changed; their sessions ended")


def _user_del(args: argparse.Namespace, auth: Auth) -> None:
    auth.users.delete(args.name)
    print(f"user {args.name} deleted")


def _user_list(args: argparse.Namespace, auth: Auth) -> None:
    for user in auth.users.rows():
        print(f"{user['name']}\t{user['role']}\t{_when(user['created'])}")


def _display_add(args: argparse.Namespace, auth: Auth) -> None:
    token = auth.displays.add(args.name)
    base = (args.base_url or kiosk_base(auth.config)).rstrip("/")
    # The URL is the credential: print it only to stdout, for the person setting up the wall.
    print(f"{base}/?display={token}")


def kiosk_base(config: Config) -> str:
    """Where a wall reaches rtm: RTM_PUBLIC_URL, else where the last `rtm serve` on this
    store listened, else this command's own settings (with a warning: they may differ)."""
    if config.public_url:
        return config.public_url
    serving = database.read_setting(config.db, SERVING_URL)
    if serving:
        return serving
    print(
        "rtm: no rtm serve has run on this store yet; the URL assumes its settings are these"
        " (RTM_HOST, RTM_PORT): give --base-url or RTM_PUBLIC_URL if not",
        file=sys.stderr,
    )
    return base_url(config)


def _display_list(args: argparse.Namespace, auth: Auth) -> None:
    for display in auth.displays.rows():
        seen = _when(display["last_seen"]) if display["last_seen"] else "never"
        print(f"{display['name']}\tcreated {_when(display['created'])}\tlast seen {seen}")


def _display_rm(args: argparse.Namespace, auth: Auth) -> None:
    if not auth.displays.revoke(args.name):
        raise AuthError(f"no display {args.name!r}")
    print(f"display {args.name} revoked")


def _when(epoch: object) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(str(epoch))))
