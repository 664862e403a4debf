"""Static rules for web/: no markup from strings, CSP-clean HTML, JSDoc, documented parameters."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCRIPTS = sorted((WEB / "js").glob("*.js"))

FORBIDDEN = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"createContextualFragment|DOMParser|setAttribute\(\s*['\"]style|\bwindow\.\w+\s*=|globalThis"
)
# A function or method definition at the start of a line.
DEFINITION = re.compile(
    r"^\s*(export\s+)?(async\s+)?function\s+\w+\s*\("
    r"|^  (static\s+)?(async\s+)?(?!if\b|for\b|while\b|switch\b|catch\b)\w+\s*\([^)]*\)\s*\{\s*$"
)


def test_no_markup_from_strings_anywhere_in_web() -> None:
    assert SCRIPTS, "web/js has no modules"
    for path in [*SCRIPTS, WEB / "index.html"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not FORBIDDEN.search(line), f"{path.name}:{number}: {line.strip()}"


def test_index_html_is_csp_clean() -> None:
    html = (WEB / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="/static/js/main.js">'
    ]
    assert not re.search(r"\son\w+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=|<style", html), "inline style"


def test_modules_import_explicit_relative_files() -> None:
    specs = [
        (path, spec)
        for path in SCRIPTS
        for spec in re.findall(r"^import .* from '([^']+)';$", path.read_text(), re.M)
    ]
    assert specs, "the import pattern matched nothing: it no longer checks anything"
    for path, spec in specs:
        assert spec.startswith("./") and spec.endswith(".js"), f"{path.name}: {spec}"
        assert (path.parent / spec).exists(), f"{path.name}: {spec} missing"


def test_every_function_has_jsdoc() -> None:
    missing, definitions = [], 0
    for path in SCRIPTS:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if DEFINITION.match(line):
                definitions += 1
                if not lines[number - 1].strip().endswith("*/"):
                    missing.append(f"{path.name}:{number + 1}: {line.strip()}")
    assert definitions, "DEFINITION matched no function: it no longer checks anything"
    assert not missing, missing


def test_url_parameters_are_documented() -> None:
    source = (WEB / "js" / "url-state.js").read_text()
    names = set(re.findall(r"params\.get\('(\w+)'\)", source))
    names |= set(re.findall(r"'(group|status|transport)'", source))
    assert {"view", "sort", "dir", "q", "kiosk", "rotate", "queue_alarm"} <= names
    doc = (ROOT / "docs" / "frontend.md").read_text()
    for name in sorted(names):
        assert f"`{name}`" in doc, f"docs/frontend.md does not document ?{name}="
