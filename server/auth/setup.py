"""First start: while the store has no user, a one-time link creates the first admin.

`rtm serve` calls `announce()`: when nobody can sign in yet it makes a random 256-bit token,
keeps only its SHA-256 in this process's memory and prints the link once on stderr. The
gate (gate.py) lets `/setup` through without credentials only while `is_open()`;
the admin created there, or any user created another way, ends it for good. A wrong token
counts as a failed sign-in (same slowing and lockout as `/login`).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import Config
from . import Auth
from .identity import MAX_PASSWORD, AuthError, check_name, token_hash
from .request import client_address, read_form
from .roles import SETUP_PATH
from .routes import signed_in, slow_failure, templates

MIN_ADMIN_PASSWORD = 12
# Wrong tokens are counted against this name (never a valid user name, so no real user's
# counter is shared) and against the client's address, exactly like failed logins.
LOCK_SUBJECT = "/setup"
WRONG = "This setup link is not valid. Use the exact link rtm printed on its console at start."
LOCKED = "Too many wrong setup links. Try again later, or use `rtm user add` on the server."
DONE = "rtm is set up already: somebody can sign in. Users are managed with `rtm user`."


class FirstRun:
    """The one-time setup token: issued at most once per process, dead once a user exists."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self._digest: str | None = None
        # One setup at a time: the second of two racing requests finds the token dead.
        self.lock = asyncio.Lock()

    def issue(self) -> str | None:
        """A fresh token if the store has no user yet (only its hash is kept), else None."""
        if self.auth.users.rows():
            return None
        token = secrets.token_urlsafe(32)
        self._digest = token_hash(token)
        return token

    def is_open(self) -> bool:
        """Whether `/setup` may be used now; blocking (reads the store while open)."""
        if self._digest is None:
            return False
        if self.auth.users.rows():
            self.close()  # made by `rtm user add` meanwhile: the token dies all the same
            return False
        return True

    def matches(self, token: str) -> bool:
        digest = self._digest
        if digest is None or not 0 < len(token) <= 256:
            return False
        return secrets.compare_digest(token_hash(token), digest)

    def close(self) -> None:
        self._digest = None


# The store remembers where the last `rtm serve` on it listened, for `rtm display add`.
SERVING_URL = "serving_url"


def base_url(config: Config) -> str:
    """Where a browser reaches rtm: RTM_PUBLIC_URL, else the listen address (a wildcard
    address becomes this host's name)."""
    if config.public_url:
        return config.public_url
    scheme = "https" if config.tls_cert else "http"
    host = socket.getfqdn() if config.host in ("0.0.0.0", "::", "") else config.host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{config.port}"


def announce(first_run: FirstRun, config: Config) -> None:
    """Print the setup link on stderr when the store has no user: its only appearance."""
    token = first_run.issue()
    if token is not None:
        url = f"{base_url(config)}{SETUP_PATH}?token={token}"
        print(
            f"rtm: no users yet - create the first admin at {url} (valid until a user exists)",
            file=sys.stderr,
            flush=True,
        )


def form_problem(username: str, password: str, password2: str) -> str:
    """What is wrong with the new admin's name or password, or "" when nothing is."""
    try:
        check_name(username)
    except AuthError as exc:
        return str(exc)
    if password != password2:
        return "The two passwords differ."
    if not MIN_ADMIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"The password needs {MIN_ADMIN_PASSWORD} to {MAX_PASSWORD} characters."
    return ""


class SetupForm:
    """`GET /setup?token=...` shows the form, `POST /setup` creates the first admin."""

    def __init__(self, auth: Auth, first_run: FirstRun) -> None:
        self.auth = auth
        self.first_run = first_run

    async def setup(self, request: Request) -> Response:
        if not await asyncio.to_thread(self.first_run.is_open):
            return page(request, 404, DONE)
        if request.method != "POST":
            token = request.query_params.get("token", "")
            return await self.refusal(request, token) or page(request, 200, "", token)
        form = await read_form(request)
        if form is None:
            return Response("form too large", status_code=413)
        return await self.create(request, form)

    async def create(self, request: Request, form: dict[str, str]) -> Response:
        """Create the admin the posted form names, once, and sign them in."""
        token, name = form.get("token", ""), form.get("username", "")[:256]
        wrong = await self.refusal(request, token)
        if wrong is not None:
            return wrong
        problem = form_problem(name, form.get("password", ""), form.get("password2", ""))
        if problem:
            return page(request, 400, problem, token, name)
        async with self.first_run.lock:
            if not self.first_run.matches(token):  # the other of two racing requests won
                return page(request, 404, DONE)
            add_first_admin = self.auth.users.add_first_admin
            created = await asyncio.to_thread(add_first_admin, name, form["password"])
            self.first_run.close()
        if not created:  # a user appeared through `rtm user add` in the meantime
            return page(request, 404, DONE)
        return await signed_in(self.auth, request, name, "/")

    async def refusal(self, request: Request, token: str) -> Response | None:
        """None when `token` is right; else the 403/429 page, after the login's delay."""
        address = client_address(request.scope, self.auth.config)
        outcome = await asyncio.to_thread(
            self.auth.check_secret, LOCK_SUBJECT, address, lambda: self.first_run.matches(token)
        )
        if outcome.locked:
            return page(request, 429, LOCKED)
        if outcome.principal is None:
            await slow_failure(self.auth.config, outcome.failures)
            return page(request, 403, WRONG)
        return None


def page(request: Request, status: int, error: str, token: str = "", name: str = "") -> Response:
    context = {
        "error": error,
        "token": token,  # only ever the requester's own, right token, into the form
        "username": name,
        "min_password": MIN_ADMIN_PASSWORD,
        "done": status == 404,
    }
    return templates.TemplateResponse(request, "setup.html", context, status_code=status)


def routes(auth: Auth, first_run: FirstRun) -> list[Route]:
    """The `/setup` route, bound to `auth` and this process's `first_run` token."""
    return [Route(SETUP_PATH, SetupForm(auth, first_run).setup, methods=["GET", "POST"])]
