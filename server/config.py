"""rtm's settings: one frozen dataclass, read from ``RTM_*`` variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TABLES = ("accounts", "trunks", "queue")


class ConfigError(ValueError):
    """A setting has a value rtm cannot use; the message names the setting."""


# RTM_DB is a path (the SQLite store) or a URL of one of these schemes (server/postgres.py).
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_postgres(db: str) -> bool:
    """True when ``db`` (RTM_DB) names a PostgreSQL database rather than a SQLite file."""
    return db_scheme(db) is not None


def db_scheme(db: str) -> str | None:
    """None for a SQLite path, else the PostgreSQL scheme; ConfigError for any other URL,
    which would otherwise be taken for a relative path (a folder named ``mysql:``)."""
    match = _URL_LIKE.match(db)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme not in POSTGRES_SCHEMES:
        known = ", ".join(f"{s}://" for s in POSTGRES_SCHEMES)
        raise ConfigError(
            f"RTM_DB: unknown scheme {scheme}:// in {redacted_url(db)!r}; a path to a SQLite"
            f" file or one of {known}"
        )
    return scheme


def redacted_url(url: str) -> str:
    """``url`` without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _default_source(db: str) -> str:
    """The source URL reading the store at ``db``: its PostgreSQL URL or ``sqlite:///``."""
    if db_scheme(db) is not None:
        return "postgresql://" + db.split("://", 1)[1]
    return f"sqlite:///{db}"


@dataclass(frozen=True)
class Config:
    db: str = "var/rtm.db"
    host: str = "127.0.0.1"
    port: int = 8080
    tz: str = "UTC"
    # Source URLs; empty means the embedded store at ``db``.
    registrations: str = ""
    trunks: str = ""
    queue: str = ""
    # Poll interval per table, seconds.
    poll: Mapping[str, float] = field(
        default_factory=lambda: {"accounts": 1.0, "trunks": 1.0, "queue": 1.0}
    )
    # Change-fed sources (the embedded store's change log) are asked for news this often
    # (seconds), and checked against a full read every ``reconcile`` seconds.
    changes_interval: float = 0.05
    reconcile: float = 300.0
    kamailio_evapi: str = ""
    # The accounts directory of a PostgreSQL source: table[:field=column,...] (RTM_DIRECTORY).
    directory: str = ""
    allowed_origins: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    demo: bool = False
    # Open WebSockets at most; by default from the file-descriptor limit (room left for HTTP).
    ws_max_clients: int = field(default_factory=lambda: default_max_clients())
    # Limits of one WebSocket client.
    ws_max_frame: int = 65536
    ws_max_messages_per_10s: int = 50
    ws_send_timeout: float = 30.0  # a client that takes no frame for this long is closed
    client_queue_frames: int = 256
    client_queue_bytes: int = 16 * 1024 * 1024
    # Diffs kept per table for resuming clients.
    ring_size: int = 1024
    ring_bytes: int = 16 * 1024 * 1024
    trust_proxy_header: str = ""
    # Access control (server/auth/, docs/security.md): people's sessions die after
    # session_idle seconds without a request or session_max seconds after login.
    session_idle: float = 12 * 3600
    session_max: float = 7 * 24 * 3600
    # login_max_failures failed logins per user or per address lock it for login_lock
    # seconds; each failure is answered login_delay seconds later per earlier failure.
    login_max_failures: int = 5
    login_lock: float = 15 * 60
    login_delay: float = 0.5
    # CSP frame-ancestors sources; empty means no site may frame rtm.
    frame_ancestors: str = ""
    # Bearer token for /metrics from other hosts (loopback needs none).
    metrics_token: str = ""
    # rtm's own SIP OPTIONS prober (RTM_TRUNKS=options:, and beside kamailio+http trunks):
    # seconds between rounds, seconds a probe may take, a CA file trusted for TLS trunks.
    options_interval: float = 5.0
    options_timeout: float = 2.0
    options_ca_file: str = ""
    # How browsers reach rtm when that is not its listen address (a reverse proxy): kiosk and
    # setup links are built on it. Empty: the address rtm serves on.
    public_url: str = ""
    # Several rtm instances sharing one live state (server/cluster/, docs/scaling.md): the
    # Redis they share, redis:// or rediss://. Empty: one process.
    redis: str = ""

    @property
    def source_urls(self) -> dict[str, str]:
        default = _default_source(self.db)
        return {
            "accounts": self.registrations or default,
            "trunks": self.trunks or default,
            "queue": self.queue or default,
        }

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> Config:
        """Raise ConfigError naming the first unusable setting."""
        db_scheme(self.db)
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"RTM_TZ: unknown time zone {self.tz!r}") from exc
        if not 0 < self.port < 65536:
            raise ConfigError(f"RTM_PORT: {self.port} is not a TCP port")
        for table, seconds in self.poll.items():
            if not 0.05 <= seconds <= 3600:
                raise ConfigError(f"RTM_POLL_{table.upper()}: {seconds} s is out of 0.05..3600")
        if self.ws_max_clients < 1:
            raise ConfigError(f"RTM_WS_MAX_CLIENTS: {self.ws_max_clients} is not a count")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("RTM_TLS_CERT and RTM_TLS_KEY go together")
        if re.search(r"[;\r\n,]", self.frame_ancestors):
            raise ConfigError("RTM_FRAME_ANCESTORS: space-separated CSP sources, no ; or ,")
        for name, seconds, low, high in (
            ("RTM_CHANGES_INTERVAL", self.changes_interval, 0.01, 60),
            ("RTM_RECONCILE", self.reconcile, 1, 86400),
            ("RTM_OPTIONS_INTERVAL", self.options_interval, 0.1, 3600),
            ("RTM_OPTIONS_TIMEOUT", self.options_timeout, 0.05, 60),
        ):
            if not low <= seconds <= high:
                raise ConfigError(f"{name}: {seconds} s is out of {low}..{high}")
        public = urlsplit(self.public_url)
        if self.public_url and (
            public.scheme not in ("http", "https") or not public.netloc or public.query
        ):
            raise ConfigError(
                f"RTM_PUBLIC_URL: {self.public_url!r} is not an http(s)://host[:port][/path] URL"
            )
        if self.redis and urlsplit(self.redis).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"RTM_REDIS: {redacted_url(self.redis)!r} is not a redis://, rediss:// or"
                " unix:// URL"
            )
        if self.options_ca_file and not os.path.isfile(self.options_ca_file):
            raise ConfigError(f"RTM_OPTIONS_CA_FILE: no file at {self.options_ca_file!r}")
        return self


def _number(env: Mapping[str, str], name: str, default: float, kind: type = float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a number") from exc


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from ``RTM_*`` variables (unset ones keep their defaults)."""
    env = os.environ if env is None else env
    base = Config()
    poll_default = _number(env, "RTM_POLL", 1.0)
    poll = {
        "accounts": _number(env, "RTM_POLL_ACCOUNTS", poll_default),
        "trunks": _number(env, "RTM_POLL_TRUNKS", poll_default),
        "queue": _number(env, "RTM_POLL_QUEUE", poll_default),
    }
    origins = tuple(o.strip() for o in env.get("RTM_ALLOWED_ORIGINS", "").split(",") if o.strip())
    return Config(
        db=env.get("RTM_DB") or base.db,
        host=env.get("RTM_HOST") or base.host,
        port=int(_number(env, "RTM_PORT", base.port, int)),
        tz=env.get("RTM_TZ") or base.tz,
        registrations=env.get("RTM_REGISTRATIONS", ""),
        trunks=env.get("RTM_TRUNKS", ""),
        queue=env.get("RTM_QUEUE", ""),
        poll=poll,
        changes_interval=_number(env, "RTM_CHANGES_INTERVAL", base.changes_interval),
        reconcile=_number(env, "RTM_RECONCILE", base.reconcile),
        kamailio_evapi=env.get("RTM_KAMAILIO_EVAPI", ""),
        directory=env.get("RTM_DIRECTORY", ""),
        allowed_origins=origins,
        tls_cert=env.get("RTM_TLS_CERT", ""),
        tls_key=env.get("RTM_TLS_KEY", ""),
        demo=env.get("RTM_DEMO", "") not in ("", "0", "false", "no"),
        ws_max_clients=int(_number(env, "RTM_WS_MAX_CLIENTS", 0, int)) or default_max_clients(),
        ws_max_frame=int(_number(env, "RTM_WS_MAX_FRAME", base.ws_max_frame, int)),
        ws_max_messages_per_10s=int(
            _number(env, "RTM_WS_MAX_MESSAGES", base.ws_max_messages_per_10s, int)
        ),
        ws_send_timeout=_number(env, "RTM_WS_SEND_TIMEOUT", base.ws_send_timeout),
        client_queue_frames=int(
            _number(env, "RTM_CLIENT_QUEUE_FRAMES", base.client_queue_frames, int)
        ),
        client_queue_bytes=int(
            _number(env, "RTM_CLIENT_QUEUE_BYTES", base.client_queue_bytes, int)
        ),
        ring_size=int(_number(env, "RTM_RING_SIZE", base.ring_size, int)),
        ring_bytes=int(_number(env, "RTM_RING_BYTES", base.ring_bytes, int)),
        trust_proxy_header=env.get("RTM_TRUST_PROXY_HEADER", ""),
        session_idle=_number(env, "RTM_SESSION_IDLE", base.session_idle),
        session_max=_number(env, "RTM_SESSION_MAX", base.session_max),
        login_max_failures=int(
            _number(env, "RTM_LOGIN_MAX_FAILURES", base.login_max_failures, int)
        ),
        login_lock=_number(env, "RTM_LOGIN_LOCK", base.login_lock),
        login_delay=_number(env, "RTM_LOGIN_DELAY", base.login_delay),
        frame_ancestors=env.get("RTM_FRAME_ANCESTORS", ""),
        metrics_token=env.get("RTM_METRICS_TOKEN", ""),
        options_interval=_number(env, "RTM_OPTIONS_INTERVAL", base.options_interval),
        options_timeout=_number(env, "RTM_OPTIONS_TIMEOUT", base.options_timeout),
        options_ca_file=env.get("RTM_OPTIONS_CA_FILE", ""),
        public_url=env.get("RTM_PUBLIC_URL", "").strip().rstrip("/"),
        redis=env.get("RTM_REDIS", "").strip(),
    )


def default_max_clients() -> int:
    """5,000, or fewer when the process may not open that many files: a tenth of the limit
    (and at least 100) stays free for the login page, the API and the sources."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return 1000
    if soft == resource.RLIM_INFINITY:
        return 5000
    return max(1, min(5000, soft - max(100, soft // 10)))


def ensure_parent(path: str) -> None:
    if db_scheme(path) is not None:  # never a folder named after a URL's scheme
        raise ConfigError(f"{redacted_url(path)!r} is a database URL, not a file path")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
