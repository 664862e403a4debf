"""``python -m bench [NAME ...] [--quick] [--markdown]``: run rtm's benchmarks and print one table.

Each benchmark module has ``run() -> list[Figure]``. Figures are ratios to a baseline
measured in the same run, so they hold on a noisy, shared machine where absolute times
do not. ``--markdown`` prints the table ready for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time

from .measure import Figure

BENCHMARKS = {
    "diff": "bench.diff_cost",
    "fanout": "bench.fanout",
    "snapshot": "bench.snapshot",
    "memory": "bench.memory",
    "collector": "bench.collector_cycle",
    "e2e": "bench.end_to_end",
    "kamailio": "bench.kamailio_scale",
    "churn": "bench.churn",
    "browser": "bench.browser_churn",
    "browser-connect": "bench.browser_connect",
    "connect": "bench.connect",
    "postgres": "bench.postgres_scale",
    "cluster": "bench.cluster",
    "faults": "bench.faults",
    "faults-kamailio": "bench.faults_kamailio",
}
# Run only when named (``python -m bench postgres``, ``make bench BENCH_ONLY=cluster,faults``):
# each starts servers and crowds of its own (a million rows in PostgreSQL, 1,000 clients,
# 500 clients through faults) for minutes, and together they would take half an hour;
# ``make bench`` alone stays under 10 minutes (issue 9).
ON_REQUEST = ("postgres", "cluster", "connect", "browser-connect", "faults", "faults-kamailio")
DEFAULT = [name for name in BENCHMARKS if name not in ON_REQUEST]
# ``--quick``: a one-minute subset, each at its smaller size (BENCH_QUICK=1).
QUICK = ("diff", "collector", "churn")
HEADERS = ("benchmark", "measured", "value", "ratio")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    for line in open("/proc/cpuinfo") if os.path.exists("/proc/cpuinfo") else ():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def plain_table(figures: list[Figure]) -> str:
    cells = [HEADERS] + [(f.benchmark, f.what, f.value, f.ratio) for f in figures]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(figures: list[Figure]) -> str:
    rows = [HEADERS, ("---",) * 4] + [(f.benchmark, f.what, f.value, f.ratio) for f in figures]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--quick", action="store_true", help=f"a quick subset: {', '.join(QUICK)}")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    # BENCH_ONLY=faults,churn (make bench BENCH_ONLY=…) runs those alone.
    only = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]
    names = args.names or only or list(QUICK if args.quick else DEFAULT)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    figures: list[Figure] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        figures += importlib.import_module(BENCHMARKS[name]).run()
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"rtm benchmarks, {today}, {machine()}, {time.monotonic() - started:.0f} s\n")
    print(markdown_table(figures) if args.markdown else plain_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
