"""The soak's figures: the per-minute table, the growth verdicts, and the chart.

The chart is an SVG drawn here and rendered to PNG by the Chromium the soak already runs
(no plotting library to install): one panel per figure, each line relative to its value
where growth starts being judged, so 5% reads the same on every panel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _page(name: str, key: str, scale: float = 1) -> Callable[[Any], float]:
    return lambda sample: float(sample.pages[name][key]) / scale


FIGURES: tuple[tuple[str, Callable[[Any], float]], ...] = (  # (label, read from a sample)
    ("desk heap MiB", _page("desk", "heap", MIB)),
    ("desk DOM nodes", _page("desk", "nodes")),
    ("desk listeners", _page("desk", "listeners")),
    ("kiosk heap MiB", _page("kiosk", "heap", MIB)),
    ("kiosk DOM nodes", _page("kiosk", "nodes")),
    ("kiosk listeners", _page("kiosk", "listeners")),
    ("rtm RSS MiB", lambda sample: float(sample.rss) / MIB),
    ("rtm open fds", lambda sample: float(sample.fds)),
    ("steady RSS MiB", lambda sample: float(sample.steady_rss) / MIB),
    ("steady open fds", lambda sample: float(sample.steady_fds)),
)
# Server memory is judged on the rtm never restarted: the other is a new process every
# restart period, so its two windows compare different processes, not one growing.
JUDGED = (
    "desk heap MiB",
    "desk DOM nodes",
    "kiosk heap MiB",
    "kiosk DOM nodes",
    "steady RSS MiB",
)


def header() -> str:
    return "  min  " + "  ".join(f"{label:>15}" for label, _ in FIGURES) + "    writes  contacts"


def row(sample: Any) -> str:
    figures = "  ".join(f"{read(sample):15.1f}" for _, read in FIGURES)
    return f"{sample.second / 60:5.1f}  {figures}  {sample.writes:8,}  {sample.contacts:8,}"


def verdicts(
    samples: list[Any], growth_from: float, window: float, limit: float
) -> list[tuple[str, bool, str]]:
    """(what, passed, detail) for each judged figure: the growth of its mean over the last
    ``window`` seconds against its mean over the ``window`` from ``growth_from``.

    The window is one restart period, so each mean holds samples of every age after a
    restart (a fresh rtm reads ~25% more RSS in its first minute) and of every phase of the
    heap's collection band; two single samples land anywhere in that band.
    """
    end = max((s.second for s in samples), default=0.0)
    first = [s for s in samples if growth_from <= s.second < growth_from + window]
    last = [s for s in samples if s.second > end - window and s.second >= growth_from]
    if not first or not last or end - growth_from < window:
        return [
            (
                "growth",
                True,
                f"not judged: the run is shorter than two windows of {window / 60:g} min",
            )
        ]
    results = []
    for label, read in FIGURES:
        if label not in JUDGED:
            continue
        before = sum(map(read, first)) / len(first)
        after = sum(map(read, last)) / len(last)
        growth = (after - before) / before if before else 0.0
        detail = (
            f"mean {before:.1f} (minutes {first[0].second / 60:.0f}–{first[-1].second / 60:.0f})"
            f" → {after:.1f} (minutes {last[0].second / 60:.0f}–{last[-1].second / 60:.0f},"
            f" {growth:+.1%})"
        )
        results.append((f"{label} grows ≤ {limit:.0%}", growth <= limit, detail))
    return results


def svg(samples: list[Any], width: int = 1200, panel: int = 150) -> str:
    """Every figure over the run, one panel each, as an SVG document."""
    height = panel * len(FIGURES)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>'
    ]
    end = max((s.second for s in samples), default=1) or 1
    for n, (label, read) in enumerate(FIGURES):
        base, values = (n + 1) * panel - 20, [read(s) for s in samples]
        low, high = min(values, default=0), max(values, default=1)
        span = (high - low) or max(abs(high), 1) * 0.1
        points = " ".join(
            f"{60 + s.second / end * (width - 80):.1f},{base - (v - low) / span * (panel - 40):.1f}"
            for s, v in zip(samples, values, strict=True)
        )
        parts.append(f'<text x="60" y="{base - panel + 34}">{label}: {low:.1f} … {high:.1f}</text>')
        parts.append(f'<line x1="60" x2="{width - 20}" y1="{base}" y2="{base}" stroke="#999"/>')
        parts.append(f'<polyline fill="none" stroke="#2060c0" stroke-width="2" points="{points}"/>')
    parts.append(f'<text x="{width - 140}" y="{height - 4}">{end / 60:.0f} minutes</text></svg>')
    return "".join(parts)


def draw(samples: list[Any], path: Path, browser: Any) -> None:
    """Render the chart to a PNG at ``path`` with Chromium."""
    document = svg(samples)
    page = browser.new_page(viewport={"width": 1200, "height": 150 * len(FIGURES)})
    page.set_content(document)
    page.screenshot(path=str(path), full_page=True)
    page.close()
    path.with_suffix(".svg").write_text(document)
