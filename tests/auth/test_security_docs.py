"""docs/security.md keeps up with the code: every access-control setting and role is described."""

from __future__ import annotations

import re
from pathlib import Path

from server.auth.identity import ROLES
from server.auth.roles import ADMIN_ONLY, DISPLAY_ALLOWED, PUBLIC_EXACT

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
SETTINGS = (
    "RTM_SESSION_IDLE", "RTM_SESSION_MAX", "RTM_LOGIN_MAX_FAILURES", "RTM_LOGIN_LOCK",
    "RTM_LOGIN_DELAY", "RTM_ALLOWED_ORIGINS", "RTM_FRAME_ANCESTORS", "RTM_TRUST_PROXY_HEADER",
    "RTM_METRICS_TOKEN", "RTM_TLS_CERT", "RTM_TLS_KEY",
)  # fmt: skip


def test_every_security_setting_is_in_the_settings_table() -> None:
    table = DOC[DOC.index("## Settings") :]
    missing = [name for name in SETTINGS if f"`{name}`" not in table]
    assert not missing


def test_settings_named_in_the_docs_exist_in_config() -> None:
    config_source = (Path(__file__).resolve().parents[2] / "server" / "config.py").read_text()
    for name in set(re.findall(r"RTM_[A-Z_]+", DOC)):
        assert f'"{name}"' in config_source, f"{name} is documented but config.py never reads it"


def test_roles_public_paths_and_display_policy_are_documented() -> None:
    for role in (*ROLES, "display"):
        assert f"| {role}" in DOC
    for path in (*PUBLIC_EXACT, *ADMIN_ONLY, *DISPLAY_ALLOWED):
        assert f"`{path}" in DOC or f"`GET {path}`" in DOC, path
