"""``python -m bench [--quick]``: run every benchmark, print the table, write the results.

The server runs as a ``psr-server serve`` subprocess on loopback; the client side (baseline and
add-on) runs in this process. Results go to ``bench/results/latest.json`` (git-ignored) and
the table to ``bench/RESULTS.md`` (shown by the README).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import measure
from bench.baseline import Login, login
from bench.dataset import BENCH_PASSWORD, BENCH_USER, CLIENT_ID, bench_server, database_name
from bench.stats import Figure, as_json, machine, render_table

HERE = Path(__file__).resolve().parent


def _guard(rows: list[Figure], name: str, unit: str, target: str,
           fn: Callable[[], list[Figure]]) -> None:
    """Run one measurement; a failure becomes a 'pending' row instead of ending the run."""
    started = time.perf_counter()
    try:
        got = fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        got = [measure.not_measured(name, unit, target, exc)]
    for row in got:
        print(f"  {row.name}: {row.value!r} {row.unit} [{row.status}]", file=sys.stderr)
    print(f"  ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    rows.extend(got)


def run(quick: bool) -> list[Figure]:
    """All measurements; ``quick`` uses smaller databases and fewer runs."""
    from bench.engine import page_limit
    from bench.hooks import hook_figures

    sizes = (5_000, 20_000) if quick else (10_000, 100_000)
    runs = 2 if quick else 3
    rows: list[Figure] = []
    work = Path(tempfile.mkdtemp(prefix="psr-bench-"))
    limit = page_limit()
    with bench_server(work / "server", sizes) as server:
        print(f"server {server.url}; loaded {sizes}", file=sys.stderr)
        who: dict[int, Login] = {
            size: login(server.url, database_name(size), BENCH_USER, BENCH_PASSWORD, CLIENT_ID)
            for size in sizes
        }
        big = who[max(sizes)]
        for size in sizes:

            def first(size: int = size) -> list[Figure]:
                return measure.first_sync(who[size], size, runs, limit, work)

            _guard(rows, f"first sync {size // 1000}k: rate", "records/s", ">= 0.65x", first)
        rtt = measure.round_trip_ms(big)
        holder: list[measure.BigCopy] = []

        def prepare() -> list[Figure]:
            holder.append(measure.BigCopy(server, big, limit, work))
            return []

        _guard(rows, "big copy for incremental figures", "-", "-", prepare)
        if holder:
            copy = holder[0]
            _guard(rows, "100 changes into the big copy", "ms", "< 10 ms + 1 round trip",
                   lambda: measure.changed_100(copy, runs, rtt))
            _guard(rows, "sync with nothing new", "ms", "one round trip",
                   lambda: measure.nothing_new(copy, 5 if quick else 10, rtt))
            _guard(rows, "open a copy with its password", "ms", "KDF cost",
                   lambda: [measure.open_with_password(copy, 3 if quick else 5)])
            _guard(rows, "full-text search", "ms", "< 100 ms",
                   lambda: measure.search(copy, 5 if quick else 10))
            copy.cleanup()
        _guard(rows, "host wait in hooks", "µs", "p99 < 100 µs",
               lambda: hook_figures(server, who[min(sizes)], work, quick))
        _guard(rows, "peak memory", "MB", "< 60 MB", lambda: measure.memory(who, limit))
    return rows


def write(rows: list[Figure], quick: bool, seconds: float) -> str:
    """Write JSON and Markdown; return the table."""
    table = render_table(rows)
    info = machine()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (HERE / "results").mkdir(exist_ok=True)
    payload = {
        "when": stamp,
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": info,
        "figures": as_json(rows),
    }
    (HERE / "results" / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    where = f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['system']}"
    md = (
        "# Benchmark results\n\n"
        f"Latest `make bench`{' --quick' if quick else ''} run, {stamp}, {seconds:.0f} s, "
        f"on {where}. Server: the reference server as a subprocess on loopback.\n"
        "Each figure is the median of several runs; ratios are medians of per-run ratios "
        "against the baseline run in the same process (a plain fetch-decode-insert loop "
        "into SQLCipher, see `bench/baseline.py`).\n\n"
        f"{table}\n"
    )
    (HERE / "RESULTS.md").write_text(md, encoding="utf-8")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5k/20k records, fewer runs")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(args.quick)
    table = write(rows, args.quick, time.perf_counter() - started)
    print(table)
    print(f"\nwritten: {HERE / 'results' / 'latest.json'} and {HERE / 'RESULTS.md'}")
    missed = [r.name for r in rows if r.status == "MISSED"]
    if missed:
        print("targets missed: " + ", ".join(missed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
