"""Imports point one way: down the layers each package's docstring names, never back up.

The rules below are the architecture in one table (README, Design). A module may import its
own package and what its entry allows; anything else fails here with the line to look at.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"

# Layer -> the rtm modules or packages it may import (besides its own package).
CORE = {"server.rows", "server.times", "server.config"}
ALLOWED: dict[str, set[str]] = {
    "server.rows": set(),
    "server.times": set(),
    "server.config": set(),
    "server.supervise": set(),
    "server.diff": {"server.rows"},
    # The store's migrate() hands a PostgreSQL URL to server.postgres, which keeps the same
    # tables and change log there (RTM_DB=postgresql://).
    "server.store": {"server.config", "server.postgres"},
    "server.postgres": {"server.config", "server.store"},
    # One synchronous seam over either store, for the auth layer, CLI, API and demo.
    "server.database": {"server.config", "server.store", "server.postgres"},
    "server.protocol": {"server.rows"},
    "server.hub": {
        "server.rows",
        "server.times",
        "server.config",
        "server.protocol",
        "server.diff",
    },
    # WebSocket frames on the wire (uvicorn's protocol, prepared frames): nothing of rtm.
    "server.wire": set(),
    # ... and the task helpers (a socket's pump and reader run with supervise.first_of).
    "server.ws": {
        "server.config",
        "server.times",
        "server.protocol",
        "server.hub",
        "server.wire",
        "server.supervise",
    },
    "server.api": {"server.config", "server.hub", "server.metrics", "server.database"},
    "server.metrics": {"server.hub", "server.times"},
    # SIP on the wire: knows nothing of tables, collectors or the web.
    "server.sip": {"server.config", "server.times"},
    # Sources: read their source, publish through the runner into the hub. Never the app,
    # the web side (ws, api, auth) or the demo.
    "server.collectors": CORE | {"server.sip"},
    # ... but the runner, which publishes into the hub and restarts hint streams.
    "server.collectors.runner": CORE | {"server.hub", "server.supervise", "server.collectors"},
    # Access control: the store and settings; nothing of the live pipeline.
    "server.auth": {"server.config", "server.store", "server.database"},
    # The demo writes a store the way a SIP stack would; it reads nothing of rtm's pipeline.
    "server.demo": {"server.config", "server.store", "server.database", "server.times"},
    # Several instances on Redis: follows and publishes the hub's tables; the app hands it
    # the collectors as a function, so it imports none of them, nor the web side.
    "server.cluster": CORE | {"server.hub", "server.protocol", "server.diff", "server.supervise"},
    # The top: wires everything together.
    "server.app": {"*"},
    "server.cli": {"*"},
    "server": set(),
}


def module_name(path: Path) -> str:
    parts = ["server", *path.relative_to(SERVER).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of rtm's own modules in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` may name a submodule: judge the submodule.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                is_module = (SERVER.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                is_package = (SERVER.parent / sub.replace(".", "/") / "__init__.py").exists()
                found.append((node.lineno, sub if is_module or is_package else target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, module) for line, module in found if module.split(".")[0] == "server"]


def layer_of(module: str) -> str:
    """The ALLOWED entry governing `module`: its longest listed prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in ALLOWED:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} belongs to no layer: add it to ALLOWED in this test")


def within(module: str, prefixes: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


MODULES = sorted(SERVER.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SERVER.parent)))
def test_imports_point_down(path: Path) -> None:
    layer = layer_of(module_name(path))
    allowed = ALLOWED[layer]
    wrong = [
        f"{path.relative_to(SERVER.parent)}:{line} imports {target}"
        for line, target in imports(path)
        if "*" not in allowed and not within(target, {layer} | allowed)
    ]
    assert not wrong, f"{layer} may import only {sorted(allowed)}:\n" + "\n".join(wrong)


def test_every_package_says_what_it_is_and_may_import() -> None:
    for init in SERVER.rglob("__init__.py"):
        if init.parent == SERVER:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{init}: its docstring says what it may import"


def test_the_rules_can_fail() -> None:
    # A collector importing the WebSocket endpoint would be an upward import.
    assert not within("server.ws", {"server.collectors"} | ALLOWED["server.collectors"])
    assert not within("server.collectors.base", ALLOWED["server.sip"])
    assert layer_of("server.collectors.kamailio.rpc") == "server.collectors"
    assert not within("server.hub", ALLOWED["server.collectors"])  # only the runner publishes
