"""Who someone is to rtm: a `Principal`, the roles, the rules for names and passwords, and how
secrets are hashed before they reach the store (users.py, displays.py, sessions.py)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ROLES = ("admin", "operator")
DISPLAY_ROLE = "display"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class AuthError(ValueError):
    """A request the store refuses (bad name, unknown user, short password...)."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from; `credential` names what proves it (see `valid_credentials`)."""

    name: str
    role: str
    credential: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise AuthError(f"{name!r}: names are 1-64 of A-Z a-z 0-9 . _ @ - (letter or digit first)")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return password
