"""First syncs: the add-on against both plain loops, the scale table, the reference server.

Each run does the plain loop, the add-on and the plain loop + index one after the other, in
this process, against the same server, so that drift of the machine (a warming disk cache,
another process) hits all three alike; ratios are medians of the per-run ratios.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import engine
from bench.baseline import Login, drain, plain_first_sync
from bench.dataset import Kind, record_ids
from bench.stats import Figure, ScaleRow, check, median, pending

MIN_RATE = 25_000.0
MIN_RATIO_INDEXED = 1.5
MIN_RATIO_PLAIN = 0.6
MIN_SERVING_RATE = 60_000.0


@dataclass
class FirstSyncs:
    """The runs of one (kind, size): rates (records/s), seconds and the add-on's file size."""

    kind: Kind
    size: int
    record_bytes: float
    addon: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    indexed: list[float] = field(default_factory=list)
    addon_seconds: list[float] = field(default_factory=list)
    idle_seconds: list[float] = field(default_factory=list)
    """Until the add-on's worker was idle again (the index compaction after the result)."""
    indexed_seconds: list[float] = field(default_factory=list)
    file_bytes: list[int] = field(default_factory=list)

    def ratios(self, other: list[float]) -> list[float]:
        return [a / b for a, b in zip(self.addon, other, strict=True)]

    def scale_row(self) -> ScaleRow:
        return ScaleRow(
            self.size,
            self.record_bytes,
            median(self.addon_seconds),
            int(median(self.file_bytes)),
            median(self.indexed_seconds),
        )


def expected_digest_check(copy_folder: Path, who: Login, size: int) -> None:
    """The copy holds exactly the bench's records: count, and the digest recomputed from the
    records in the file against one computed here from the generated ids (so the feed
    server's own digest is checked too)."""
    from offline_addon.protocol.digest import digest_of

    copy, _ = engine.open_copy(copy_folder, who)
    try:
        held = copy.recompute_digest()
        stored = copy.digest()
    finally:
        copy.close()
    want = digest_of((rid, 1) for rid in record_ids(size))
    if held != want or stored != want:
        raise RuntimeError(f"the copy holds {held}, bookkeeping {stored}; the bench wrote {want}")


def first_syncs(
    who: Login,
    kind: Kind,
    size: int,
    record_bytes: float,
    runs: int,
    limit: int,
    work: Path,
    *,
    generated: bool = True,
) -> FirstSyncs:
    """``runs`` rounds of plain loop, add-on (public API), plain loop + index. ``generated``:
    the server holds the bench's generated ids (the feed server; the reference server makes
    its own), so the first run checks the copy against them."""
    out = FirstSyncs(kind, size, record_bytes)
    for run in range(runs):
        tmp = Path(tempfile.mkdtemp(dir=work, prefix="first-"))
        try:
            plain = plain_first_sync(who, tmp / "plain.db", limit, index=False)
            result, seconds, idle, size_on_disk = engine.api_first_sync(tmp / "addon", who)
            if run == 0 and generated:
                expected_digest_check(tmp / "addon", who, size)
            indexed = plain_first_sync(who, tmp / "indexed.db", limit, index=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if result.outcome != "synced" or result.record_count != size:
            raise RuntimeError(
                f"run {run}: the add-on says {result.outcome}, "
                f"{result.record_count} of {size} records"
            )
        if plain.records != size or indexed.records != size:
            raise RuntimeError(
                f"run {run}: the plain loops wrote {plain.records} and "
                f"{indexed.records} of {size} records"
            )
        out.addon.append(size / seconds)
        out.addon_seconds.append(seconds)
        out.idle_seconds.append(idle)
        out.file_bytes.append(size_on_disk)
        out.plain.append(size / plain.seconds)
        out.indexed.append(size / indexed.seconds)
        out.indexed_seconds.append(indexed.seconds)
    return out


def _label(s: FirstSyncs) -> str:
    return f"first sync {_size(s.size)} × {s.record_bytes:.0f} B"


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def headline_figures(s: FirstSyncs, limit: int) -> list[Figure]:
    """The issue's targets for a first sync of realistic records against the fast server."""
    rate, runs = median(s.addon), len(s.addon)
    to_indexed, to_plain = median(s.ratios(s.indexed)), median(s.ratios(s.plain))
    both = f"plain loop {median(s.plain):,.0f}/s, plain loop + index {median(s.indexed):,.0f}/s"
    return [
        Figure(
            f"{_label(s)}: add-on",
            rate,
            "records/s",
            target=f">= {MIN_RATE:,.0f}/s",
            baseline=median(s.indexed),
            ok=check(rate, lambda v: v >= MIN_RATE),
            note=f"public API (OfflineCopies.create), until its result: the copy complete and "
            f"searchable (by a scan of the records until the search indexes are built, the "
            f"result says so); the worker then builds and compacts both indexes (result after "
            f"{median(s.addon_seconds):.2f} s, indexed and idle after "
            f"{median(s.idle_seconds):.2f} s); "
            f"baseline = plain loop + index; {both}; median of {runs}; page limit {limit}",
            samples=tuple(s.addon),
        ),
        Figure(
            f"{_label(s)}: ratio to plain loop + index",
            to_indexed,
            "x",
            target=f">= {MIN_RATIO_INDEXED}",
            baseline=1.0,
            ok=check(to_indexed, lambda r: r >= MIN_RATIO_INDEXED),
            note="same index (FTS5 records_fts + name trigrams), kept page by page; median "
            "of per-run ratios",
            samples=tuple(s.ratios(s.indexed)),
        ),
        Figure(
            f"{_label(s)}: ratio to plain loop",
            to_plain,
            "x",
            target=f">= {MIN_RATIO_PLAIN}",
            baseline=1.0,
            ok=check(to_plain, lambda r: r >= MIN_RATIO_PLAIN),
            note="no index: requests + json + one transaction per page; median of per-run ratios",
            samples=tuple(s.ratios(s.plain)),
        ),
    ]


def other_figure(s: FirstSyncs, limit: int, where: str = "fast server") -> Figure:
    """One row for a first sync without its own target."""
    return Figure(
        f"{_label(s)}: add-on ({where})",
        median(s.addon),
        "records/s",
        target="-",
        baseline=median(s.indexed),
        ok=None,
        note=f"{median(s.ratios(s.indexed)):.2f}x plain loop + index "
        f"({median(s.indexed):,.0f}/s), {median(s.ratios(s.plain)):.2f}x plain loop "
        f"({median(s.plain):,.0f}/s); median of {len(s.addon)}; page limit {limit}",
        samples=tuple(s.addon),
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    import os

    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving_rate(
    who: Login, size: int, limit: int, runs: int, server_pid: int, fast: Login
) -> Figure:
    """How fast the reference server serves a first sync: every page fetched and dropped
    (``drain``), its own CPU time from ``/proc``; the fast server's drain beside it."""
    rates, cpu_rates = [], []
    for _ in range(runs):
        before = _cpu_seconds(server_pid)
        count, seconds = drain(who, limit)
        cpu = _cpu_seconds(server_pid) - before
        if count != size:
            raise RuntimeError(f"the reference server served {count} of {size} records")
        rates.append(count / seconds)
        cpu_rates.append(count / cpu if cpu > 0 else math.inf)
    fast_rate = median([c / s for c, s in (drain(fast, limit) for _ in range(runs))])
    rate = median(cpu_rates)
    return Figure(
        f"reference server: serving a first sync of {_size(size)}",
        rate,
        "records/CPU-s",
        target=f">= {MIN_SERVING_RATE:,.0f}/s",
        baseline=median(rates),
        ok=check(rate, lambda v: v >= MIN_SERVING_RATE),
        note=f"records per second of the server's own CPU (from /proc) while a keep-alive "
        f"client fetches and drops every page of {limit} (gzip as served): "
        f"{size / rate:.2f} s of server CPU; baseline = that client's wall-time rate "
        f"(the fast server: {fast_rate:,.0f}/s); median of {runs}",
        samples=tuple(cpu_rates),
    )


def not_measured(name: str, unit: str, target: str, exc: BaseException) -> Figure:
    """A row for a measurement that failed or whose code is not there yet."""
    why = f"{type(exc).__name__}: {str(exc)[:120]}"
    return pending(name, unit, target, why)
