"""What the demo's made-up people, phones and carriers look like.

Pure builders driven by one ``random.Random``, so a seed replays the same directory.
Addresses come from the documentation ranges (RFC 5737) and domains from ``example.*``:
demo rows can never point at anybody's real host.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

DOMAIN = "pbx.example.com"
GROUPS = ("Sales", "NOC", "Exec", "Support", "Legal", "Finance", "R&D", "Field Ops")
FIRST_NAMES = (
    "Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Matteo", "Sara",
    "Davide", "Elena", "Paolo", "Anna", "Stefano", "Laura", "Andrea", "Martina",
    "James", "Emma", "Oliver", "Sophie", "Lukas", "Hannah", "Pierre", "Camille",
    "Javier", "Lucia", "Ahmed", "Yuki", "Nadia", "Tomasz",
)  # fmt: skip
LAST_NAMES = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano",
    "Smith", "Brown", "Müller", "Schmidt", "Dubois", "Martin", "García", "López",
    "Nowak", "Tanaka", "Haddad", "O'Brien", "Jensen", "Novak",
)  # fmt: skip
# Realistic User-Agent headers; the last is what a hostile client may send, and the page
# must show it as text.
USER_AGENTS = (
    "PrivateGSM Enterprise 4.2.1 (iOS 17.4; iPhone15,2)",
    "PrivateGSM Enterprise 4.2.0 (Android 14; SM-S918B)",
    "PrivateGSM Professional 3.9.2 (BlackBerry 10.3.3)",
    "PrivateGSM Enterprise 4.1.7 (Android 13; Pixel 7)",
    "Acrobits Softphone/6.5.2 (iOS 17.3; iPhone14,5)",
    "Acrobits Groundwire/24.1.0 (Android 14; Pixel 8 Pro)",
    "Zoiper rv2.10.20.3",
    "Z 5.6.1 v2.10.20.3",
    "Linphone/5.2.3 (Debian GNU/Linux 12) LinphoneCore/5.3.14",
    "MicroSIP/3.21.3",
    'Evil <img src=x onerror="alert(1)"> Phone/1.0',
)
UA_WEIGHTS = (30, 18, 3, 12, 10, 8, 6, 4, 3, 3, 1)
# (country code, area prefixes) for virtual numbers.
NUMBER_PLANS = (("+39", ("02", "06", "011", "051", "348", "335")), ("+44", ("20", "7700")),
                ("+41", ("44", "79")), ("+49", ("30", "89")))  # fmt: skip
TRUNKS = (
    ("it-milano-1", "sip.milano.carrier-a.example.net", 5061, "TLS", True),
    ("it-roma-backup", "sip.roma.carrier-a.example.net", 5060, "UDP", False),
    ("uk-london", "voice.carrier-b.example.co.uk", 5061, "TLS", True),
    ("ch-zurich", "sbc.carrier-c.example.ch", 5060, "TCP", False),
    ("de-frankfurt", "trunk.carrier-d.example.de", 5061, "TLS", True),
    ("us-east-sip", "us-east.carrier-e.example.com", 5060, "UDP", False),
    ("lab-carrier", "lab.example.org", 5060, "UDP", False),
    ("legacy-isdn-gw", "isdn-gw.example.org", 5060, "UDP", False),
)
# Why a trunk is down, as the registrar or prober reports it.
FAILURE_REASONS = (
    "408 Request Timeout",
    "503 Service Unavailable",
    "403 Forbidden",
    "480 Temporarily Unavailable",
    "no reply to OPTIONS",
    "TLS handshake failed",
    "connection refused",
)
PUBLIC_NETS = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True)
class Account:
    username: str
    owner: str
    caller_id: str
    caller_id_2: str
    group: str
    email: str


def virtual_number(rng: random.Random) -> str:
    country, areas = rng.choice(NUMBER_PLANS)
    return f"{country}{rng.choice(areas)}{rng.randrange(10**6, 10**7)}"


def make_accounts(rng: random.Random, count: int) -> list[Account]:
    """``count`` directory entries with unique usernames."""
    accounts: list[Account] = []
    taken: set[str] = set()
    for _ in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = _ascii(f"{first[0]}.{last}".lower())
        username, suffix = base, 1
        while username in taken:
            suffix += 1
            username = f"{base}{suffix}"
        taken.add(username)
        accounts.append(
            Account(
                username=username,
                owner=f"{first} {last}",
                caller_id=virtual_number(rng) if rng.random() < 0.9 else "",
                caller_id_2=virtual_number(rng) if rng.random() < 0.3 else "",
                group=rng.choice(GROUPS),
                email=f"{username}@example.com",
            )
        )
    return accounts


def _ascii(name: str) -> str:
    """``o'brien`` -> ``obrien``, ``müller`` -> ``muller``: SIP usernames are plain ASCII."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum() or ch == ".")


def public_ip(rng: random.Random) -> str:
    return f"{rng.choice(PUBLIC_NETS)}.{rng.randrange(1, 255)}"


def private_ip(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"192.168.{rng.randrange(0, 3)}.{rng.randrange(2, 255)}"
    return f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(2, 255)}"


def user_agent(rng: random.Random) -> str:
    return rng.choices(USER_AGENTS, weights=UA_WEIGHTS)[0]


def registration_interval(rng: random.Random) -> int:
    """Expires a phone asks for: mobiles on push use an hour, desktops minutes, some 60 s."""
    return rng.choices((60, 120, 300, 600, 1800, 3600), weights=(30, 10, 20, 10, 10, 20))[0]
