"""docs/alerts.yml is valid and fires when it should (promtool), and the rules and the Grafana
dashboard name only metrics rtm exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server import metrics
from server.hub import Hub

DOCS = Path(__file__).resolve().parent.parent / "docs"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool (Debian package prometheus) is missing; `make test` installs it")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


def test_rules_are_valid_and_fire_when_they_should() -> None:
    tool = promtool()
    checked = subprocess.run(
        [tool, "check", "rules", "alerts.yml"], cwd=DOCS, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool, "test", "rules", "alerts.test.yml"], cwd=DOCS, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def exported_names() -> set[str]:
    hub = Hub(["accounts", "trunks", "queue"])
    hub.publish_state("trunks", {"a": {"id": "a", "name": "a", "status": "OK", "since": None}})
    hub.publish_state("accounts", {"c": {"id": "c", "username": "u", "domain": "", "node": 1}})
    hub.observe_read("accounts", 0.01, True)
    text = metrics.exposition(metrics.registry(hub)).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("rtm_")
    }


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    names = exported_names()
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append((DOCS / "alerts.yml").read_text())
    used = {name for expr in exprs for name in re.findall(r"\brtm_[a-z_]+", expr)}
    assert used and used <= names, f"not exported: {sorted(used - names)}"
