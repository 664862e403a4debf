"""Timing and the result row every benchmark returns.

The machines are shared and noisy, so a figure is the best of several repeats (the least
disturbed run), interleaved with a baseline measured the same way in the same run, and
reported as a ratio to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One line of the table: what was measured, its absolute value and its ratio."""

    benchmark: str
    what: str
    value: str
    ratio: str


def best_seconds(run: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Seconds per call of ``run``: best of ``repeat`` rounds of ``number`` calls."""
    return interleaved((run, number), repeat=repeat)[0]


def interleaved(*runs: tuple[Callable[[], object], int], repeat: int = 5) -> list[float]:
    """Seconds per call of each ``(run, number)``, best of ``repeat`` interleaved rounds.

    Rounds alternate between the runs, so a burst of load from a neighbour slows them
    alike and their ratio survives it.
    """
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, (run, number) in enumerate(runs):
            started = time.perf_counter()
            for _ in range(number):
                run()
            best[i] = min(best[i], (time.perf_counter() - started) / number)
    return best


def seconds(value: float) -> str:
    """12.3 ms, 45.6 µs: a duration in the unit that keeps three significant digits."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} GiB"


def compared(
    benchmark: str,
    what: str,
    value: float,
    baseline: float,
    against: str,
    unit: Callable[[float], str] = seconds,
) -> Figure:
    """A figure with its ratio to ``baseline``: ``4.2× dict(rows) (1.4 ms)``."""
    ratio = f"{value / baseline:.3g}× {against} ({unit(baseline)})"
    return Figure(benchmark, what, unit(value), ratio)
