"""``python -m bench [--quick | --large]``: run every benchmark, print the tables, write them.

Two servers, each a subprocess on loopback (its own core, as a real server):

- the **feed server** (``bench/feedserver.py``): the documented protocol served from memory,
  every page encoded and gzipped in advance, so that a sync measures the client. The add-on's
  figures and both baselines (``bench/baseline.py``) run against it;
- the **reference server** (``psr-server serve``): how fast it serves a first sync (what
  ``make demo`` and every user's first impression run on), the add-on through it, and the
  hook figures, which need its admin API.

Records of two shapes (``bench/dataset.py``): realistic (about 600 bytes, a 200-character
note) for the targets, and today's small ones (about 250 bytes) for comparison.

``--quick``: small sizes, one run each, for a smoke check. ``--large``: also a first sync of
1M records for the scale table (``make bench-large``). ``--only first,memory``: some groups
only (for working on one figure; the table file stays as it was). Results go to
``bench/results/latest.json`` (git-ignored) and the tables to ``bench/RESULTS.md`` (shown by
the README).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import incremental, measure
from bench.baseline import Login, login
from bench.dataset import (
    BENCH_PASSWORD,
    BENCH_USER,
    CLIENT_ID,
    Kind,
    bench_server,
    database_name,
    make_records,
    record_size,
)
from bench.feedserver import FeedServerProcess
from bench.stats import Figure, ScaleRow, as_json, machine, render_scale, render_table

HERE = Path(__file__).resolve().parent
LARGE = 1_000_000
GROUPS = ("first", "memory", "incremental", "reference", "large")


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one bench run."""

    small: int
    big: int
    runs: int
    small_syncs: int
    quick: bool
    large: bool
    gzip: bool = True
    only: frozenset[str] = frozenset()
    """The groups to run (empty: all); a partial run does not rewrite ``RESULTS.md``."""

    @classmethod
    def of(
        cls,
        quick: bool,
        large: bool,
        gzip: bool = True,
        only: frozenset[str] = frozenset(),
        runs: int | None = None,
    ) -> Plan:
        if quick:
            plan = cls(2_000, 10_000, 1, 10, True, large, gzip, only)
        else:
            plan = cls(10_000, 100_000, 3, 50, False, large, gzip, only)
        return plan if runs is None else replace(plan, runs=runs)

    def wants(self, group: str) -> bool:
        return not self.only or group in self.only


def _guard(
    rows: list[Figure], name: str, unit: str, target: str, fn: Callable[[], list[Figure]]
) -> None:
    """Run one measurement; a failure becomes a 'pending' row instead of ending the run."""
    started = time.perf_counter()
    print(f"- {name}", file=sys.stderr, flush=True)
    try:
        got = fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        got = [measure.not_measured(name, unit, target, exc)]
    for row in got:
        print(f"  {row.name}: {row.value!r} {row.unit} [{row.status}]", file=sys.stderr)
    print(f"  ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    rows.extend(got)


def _bytes_of(kind: Kind) -> float:
    return record_size(make_records(kind, 2000))


def _fast_phase(
    plan: Plan, rows: list[Figure], scale: list[ScaleRow], work: Path, limit: int
) -> None:
    """Everything against the feed server (the last group changes its big database)."""
    from bench.selfcheck import CHECK_DB, self_check

    loads: list[tuple[Kind, int]] = [
        CHECK_DB,
        ("realistic", plan.small),
        ("realistic", plan.big),
        ("small", plan.big),
    ]
    started = time.perf_counter()
    with FeedServerProcess(
        loads, limits=[limit], username=BENCH_USER, password=BENCH_PASSWORD, gzip=plan.gzip
    ) as fast:
        print(
            f"feed server {fast.url}: {loads} encoded in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        who = {
            (kind, size): login(
                fast.url, database_name(kind, size), BENCH_USER, BENCH_PASSWORD, CLIENT_ID
            )
            for kind, size in loads[1:]
        }
        _guard(
            rows,
            "feed server self-check",
            "checks",
            "all pass",
            lambda: [self_check(fast, limit, work)],
        )
        sizes = {"realistic": _bytes_of("realistic"), "small": _bytes_of("small")}
        runs: dict[tuple[Kind, int], measure.FirstSyncs] = {}

        def first(kind: Kind, size: int) -> measure.FirstSyncs:
            got = measure.first_syncs(
                who[kind, size], kind, size, sizes[kind], plan.runs, limit, work
            )
            runs[kind, size] = got
            return got

        if plan.wants("first"):
            _guard(
                rows,
                "first sync, realistic, big",
                "records/s",
                ">= 25k/s",
                lambda: measure.headline_figures(first("realistic", plan.big), limit),
            )
            _guard(
                rows,
                "first sync, realistic, small",
                "records/s",
                "-",
                lambda: [measure.other_figure(first("realistic", plan.small), limit)],
            )
            _guard(
                rows,
                "first sync, small records, big",
                "records/s",
                "-",
                lambda: [measure.other_figure(first("small", plan.big), limit)],
            )
            scale += [runs[k].scale_row() for k in sorted(runs) if k[0] == "realistic"]
        if plan.wants("memory"):
            from bench.memprobe import memory_figures

            _guard(
                rows,
                "peak memory",
                "MB",
                "< 15 MB growth",
                lambda: memory_figures(
                    {s: who["realistic", s] for s in (plan.small, plan.big)}, limit, "realistic"
                ),
            )
        if plan.wants("incremental"):
            _incremental_phase(plan, rows, fast, who["realistic", plan.big], limit, work)


def _incremental_phase(
    plan: Plan, rows: list[Figure], fast: FeedServerProcess, who: Login, limit: int, work: Path
) -> None:
    holder: list[incremental.BigCopy] = []

    def prepare() -> list[Figure]:
        holder.append(incremental.BigCopy(fast, who, limit, work))
        return []

    _guard(rows, "big copy for the incremental figures", "-", "-", prepare)
    if not holder:
        return
    big = holder[0]
    try:
        _guard(
            rows,
            "100 changes into the big copy",
            "ms",
            "<= 10 ms",
            lambda: incremental.changed_100(big, plan.small_syncs),
        )
        _guard(
            rows,
            "100 changes into the big copy (opens the copy)",
            "ms",
            "-",
            lambda: [incremental.changed_100_opening(big, 3 if plan.quick else 5)],
        )
        _guard(
            rows,
            "sync with nothing new",
            "ms",
            "<= 2.8 ms",
            lambda: incremental.nothing_new(big, 10 if plan.quick else 20),
        )
        _guard(
            rows,
            "open a copy with its password",
            "ms",
            "KDF cost",
            lambda: [incremental.open_with_password(big, 3 if plan.quick else 5)],
        )
        _guard(
            rows,
            "full-text search",
            "ms",
            "< 100 ms",
            lambda: incremental.search(big, 5 if plan.quick else 10),
        )
    finally:
        big.cleanup()


def _reference_phase(plan: Plan, rows: list[Figure], work: Path, limit: int) -> None:
    """The reference server: its serving rate, the add-on through it, the hooks."""
    from bench.hooks import hook_figures

    loads: list[tuple[Kind, int]] = [("realistic", plan.small), ("realistic", plan.big)]
    started = time.perf_counter()
    with (
        bench_server(work / "server", loads) as server,
        FeedServerProcess(
            [("realistic", plan.big)],
            limits=[limit],
            username=BENCH_USER,
            password=BENCH_PASSWORD,
            gzip=plan.gzip,
        ) as fast,
    ):
        print(
            f"reference server {server.url}: loaded {loads} in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        who = {
            size: login(
                server.url, database_name(kind, size), BENCH_USER, BENCH_PASSWORD, CLIENT_ID
            )
            for kind, size in loads
        }
        fast_who = login(
            fast.url, database_name("realistic", plan.big), BENCH_USER, BENCH_PASSWORD, CLIENT_ID
        )
        _guard(
            rows,
            "reference server: serving a first sync",
            "records/s",
            ">= 60k/s",
            lambda: [
                measure.serving_rate(
                    who[plan.big],
                    plan.big,
                    limit,
                    1 if plan.quick else 3,
                    server.process.pid,
                    fast_who,
                )
            ],
        )
        _guard(
            rows,
            "first sync via the reference server",
            "records/s",
            "-",
            lambda: [
                measure.other_figure(
                    measure.first_syncs(
                        who[plan.big],
                        "realistic",
                        plan.big,
                        _bytes_of("realistic"),
                        1,
                        limit,
                        work,
                        generated=False,
                    ),
                    limit,
                    "reference server",
                )
            ],
        )
        _guard(
            rows,
            "host wait in hooks",
            "µs",
            "p99 < 100 µs",
            lambda: hook_figures(server, who[plan.small], work, plan.quick),
        )


def _large_phase(
    plan: Plan, rows: list[Figure], scale: list[ScaleRow], work: Path, limit: int
) -> None:
    """A first sync of 1M realistic records (one run of each), for the scale table."""
    started = time.perf_counter()
    with FeedServerProcess(
        [("realistic", LARGE)],
        limits=[limit],
        username=BENCH_USER,
        password=BENCH_PASSWORD,
        gzip=plan.gzip,
    ) as fast:
        print(
            f"feed server {fast.url}: 1M records encoded in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        who = login(
            fast.url, database_name("realistic", LARGE), BENCH_USER, BENCH_PASSWORD, CLIENT_ID
        )

        def one() -> list[Figure]:
            got = measure.first_syncs(
                who, "realistic", LARGE, _bytes_of("realistic"), 1, limit, work
            )
            scale.append(got.scale_row())
            return [measure.other_figure(got, limit)]

        _guard(rows, "first sync, realistic, 1M", "records/s", "-", one)


def run(plan: Plan) -> tuple[list[Figure], list[ScaleRow]]:
    """All measurements of ``plan``."""
    from bench.engine import page_limit

    rows: list[Figure] = []
    scale: list[ScaleRow] = []
    work = Path(tempfile.mkdtemp(prefix="psr-bench-"))
    limit = page_limit()
    try:
        if any(plan.wants(g) for g in ("first", "memory", "incremental")):
            _fast_phase(plan, rows, scale, work, limit)
        if plan.wants("reference"):
            _reference_phase(plan, rows, work, limit)
        if plan.large or "large" in plan.only:
            _large_phase(plan, rows, scale, work, limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, sorted(scale, key=lambda r: r.records)


def write(rows: list[Figure], scale: list[ScaleRow], plan: Plan, seconds: float) -> str:
    """Write JSON and Markdown; return the Markdown."""
    table = render_table(rows)
    info = machine()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (HERE / "results").mkdir(exist_ok=True)
    payload = {
        "when": stamp,
        "plan": {**asdict(plan), "only": sorted(plan.only)},
        "seconds": round(seconds, 1),
        "machine": info,
        "figures": as_json(rows),
        "scale": [asdict(r) for r in scale],
    }
    (HERE / "results" / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    where = f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['system']}"
    flag = " --quick" if plan.quick else ""
    flag += " --large" if plan.large else ""
    flag += "" if plan.gzip else " --no-gzip"
    large = "" if plan.large else " (1M records: `make bench-large`)"
    md = (
        "# Benchmark results\n\n"
        f"Latest `python -m bench{flag}` run, {stamp}, {seconds:.0f} s, on {where}.\n\n"
        "The add-on's figures are measured against the bench's feed server "
        "(`bench/feedserver.py`: the documented protocol served from memory, every page "
        f"encoded{' and gzipped' if plan.gzip else ''} in advance), so that they measure the "
        "add-on, not the server; "
        "the reference server's rows say so. Realistic records are about 600 bytes (a "
        "200-character note), small ones about 250. Each figure is the median of several "
        "runs; ratios are medians of per-run ratios against two baselines run in the same "
        "process, alternating with the add-on (`bench/baseline.py`): the **plain loop** "
        "(requests + json + one SQLCipher transaction per page, no index) and the **plain "
        "loop + index** (the same, keeping the add-on's FTS5 and trigram indexes page by "
        "page).\n\n"
        f"{table}\n\n"
        f"## First sync by size{large}\n\n"
        "Realistic records, fast feed server, public API, to a searchable copy.\n\n"
        f"{render_scale(scale)}\n"
    )
    if not plan.only:
        (HERE / "RESULTS.md").write_text(md, encoding="utf-8")
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--large", action="store_true", help="also a first sync of 1M records")
    parser.add_argument(
        "--no-gzip",
        action="store_true",
        help="the feed server sends pages uncompressed (default: gzipped to a "
        "client that accepts it, as the reference server does)",
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="GROUPS",
        help=f"comma-separated groups to run, of {', '.join(GROUPS)} "
        "(a partial run leaves RESULTS.md as it is)",
    )
    parser.add_argument("--runs", type=int, help="runs per first-sync figure (default 3)")
    args = parser.parse_args(argv)
    only = frozenset(g for g in args.only.split(",") if g)
    if only - set(GROUPS):
        parser.error(f"unknown groups: {', '.join(sorted(only - set(GROUPS)))}")
    plan = Plan.of(args.quick, args.large, gzip=not args.no_gzip, only=only, runs=args.runs)
    started = time.perf_counter()
    rows, scale = run(plan)
    text = write(rows, scale, plan, time.perf_counter() - started)
    print(text)
    written = HERE / "results" / "latest.json"
    print(f"written: {written}" + ("" if plan.only else f" and {HERE / 'RESULTS.md'}"))
    missed = [r.name for r in rows if r.status == "MISSED"]
    if missed:
        print("targets missed: " + ", ".join(missed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
