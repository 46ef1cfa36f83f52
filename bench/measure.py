"""The measurements: each returns Figures (rows of the results table).

Engine and baseline runs alternate (B, E, B, E, ...) so that drift of the machine (a warming
disk cache, another process) hits both alike; ratios are medians of the per-pair ratios.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import sqlcipher3

from bench import engine
from bench.baseline import Login, baseline_pull, baseline_sync, changes_round_trip
from bench.dataset import BenchServer
from bench.stats import Figure, check, median, pending

MIN_RATIO = 0.65
MEMORY_LIMIT_MB = 60.0


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def first_sync(who: Login, size: int, runs: int, limit: int, work: Path) -> list[Figure]:
    """First sync of ``size`` records: engine vs baseline, records/s and their ratio."""
    engine_rps: list[float] = []
    base_rps: list[float] = []
    ratios: list[float] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            count, seconds = baseline_sync(who, Path(tmp) / "baseline.db", limit)
        base = count / seconds
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            result, seconds = engine.engine_sync(Path(tmp), who, create=True)
        if result.record_count != size or count != size:
            raise RuntimeError(
                f"run {run}: engine holds {result.record_count}, baseline {count}, "
                f"server {size} records"
            )
        mine = size / seconds
        engine_rps.append(mine)
        base_rps.append(base)
        ratios.append(mine / base)
    ratio = median(ratios)
    label = f"first sync {size // 1000}k"
    return [
        Figure(
            f"{label}: rate",
            median(engine_rps),
            "records/s",
            target=f">= {MIN_RATIO}x baseline",
            baseline=median(base_rps),
            ok=check(ratio, lambda r: r >= MIN_RATIO),
            note=f"median of {runs} runs; page limit {limit}",
            samples=tuple(engine_rps),
        ),
        Figure(
            f"{label}: ratio to baseline",
            ratio,
            "x",
            target=f">= {MIN_RATIO}",
            baseline=1.0,
            ok=check(ratio, lambda r: r >= MIN_RATIO),
            note="median of per-run ratios (same process, alternating runs)",
            samples=tuple(ratios),
        ),
    ]


def round_trip_ms(who: Login, samples: int = 30) -> float:
    """Median time of one small keep-alive request (GET /offline/head)."""
    url = f"{who.server_url}/api/v1/databases/{who.database}/offline/head"
    headers = {"Authorization": f"Bearer {who.token}", "X-Client-Id": who.client_id}
    times = []
    with requests.Session() as http:
        http.get(url, headers=headers, timeout=10).raise_for_status()
        for _ in range(samples):
            started = time.perf_counter()
            http.get(url, headers=headers, timeout=10).raise_for_status()
            times.append(_ms(time.perf_counter() - started))
    return median(times)


class BigCopy:
    """A synced copy of the largest database (engine) and the baseline's file beside it."""

    def __init__(self, server: BenchServer, who: Login, limit: int, work: Path) -> None:
        self.server = server
        self.who = who
        self.limit = limit
        self.folder = Path(tempfile.mkdtemp(dir=work, prefix="engine-"))
        self.base_file = Path(tempfile.mkdtemp(dir=work, prefix="base-")) / "baseline.db"
        result, _ = engine.engine_sync(self.folder, who, create=True)
        self.records = int(result.record_count)
        _, _, self.base_cursor = baseline_pull(who, self.base_file, limit, None)

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.base_file.parent, ignore_errors=True)


def changed_100(big: BigCopy, runs: int, rtt_ms: float) -> list[Figure]:
    """100 records changed on the server, then one sync of the big copy: with the copy kept
    open (the engine's own cost) and with a fresh open (adds the password's KDF)."""
    ids = big.server.databases[big.who.database]
    admin = big.server.admin
    figures = []
    base: list[float] = []
    for kept_open in (True, False):
        times = []
        # The add-on keeps the copy open while the user is logged in (one KDF per login), so
        # the steady state is an open copy with a warm page cache: open it once, as the sync
        # after login does, and time the syncs that follow.
        held = engine.open_copy(big.folder, big.who)[0] if kept_open else None
        client = engine.sync_client(big.who) if kept_open else None
        try:
            for run in range(runs):
                offset = (run + (runs if kept_open else 0)) * 100
                for rid in ids[offset : offset + 100]:
                    admin.update_record(big.who.database, rid, fields={"notes": f"rotated {run}"})
                if held is not None:
                    base.append(_ms(changes_round_trip(big.who, held.cursor, big.limit)))
                result, seconds = engine.engine_sync(
                    big.folder, big.who, create=False, copy=held, client=client)
                if result.changed != 100:
                    raise RuntimeError(
                        f"expected 100 changed records, the engine saw {result.changed}")
                times.append(_ms(seconds))
        finally:
            if held is not None:
                held.close()
            if client is not None:
                client.close()
        value = median(times)
        if kept_open:
            raw = median(base)
            bound = 10.0 + raw
            figures.append(Figure(
                "100 changes into the big copy (copy kept open)", value, "ms",
                target=f"< 10 ms + 1 round trip ({bound:.1f} ms)", baseline=raw,
                ok=None if math.isnan(value) else value < bound,
                note=f"{big.records} records; baseline = one GET of the same changes page "
                f"(server work + transfer); the sync also asks head (its policy check); "
                f"median of {runs}",
                samples=tuple(times),
            ))
        else:
            figures.append(Figure(
                "100 changes into the big copy (opens the copy)", value, "ms",
                target="-", baseline=rtt_ms,
                note="the first sync after a login: it unlocks the copy (the KDF), which "
                "then stays open until logout",
                samples=tuple(times),
            ))
    return figures


def nothing_new(big: BigCopy, runs: int, rtt_ms: float) -> list[Figure]:
    """A sync when nothing changed on the server: copy kept open, and freshly opened."""
    figures = []
    copy = engine.open_copy(big.folder, big.who)[0]
    try:
        for kept_open in (True, False):
            times = []
            for _ in range(runs):
                result, seconds = engine.engine_sync(
                    big.folder, big.who, create=False, copy=copy if kept_open else None
                )
                if result.added or result.changed or result.removed:
                    raise RuntimeError("a sync with nothing new changed the copy")
                times.append(_ms(seconds))
            label = "copy open" if kept_open else "opens the copy"
            figures.append(Figure(
                f"sync with nothing new ({label})", median(times), "ms",
                target="about one small round trip" if kept_open else "-",
                baseline=rtt_ms,
                ok=None,
                note=f"{big.records} records; baseline = one GET head round trip; median of "
                f"{runs}" + ("" if kept_open else "; includes the KDF"),
                samples=tuple(times),
            ))
    finally:
        copy.close()
    return figures


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(_ms(time.perf_counter() - started))
    return out


def open_with_password(big: BigCopy, runs: int) -> Figure:
    """Opening the copy with the password: SQLCipher's KDF plus the first read."""

    def mine() -> None:
        copy, _ = engine.open_copy(big.folder, big.who)
        try:
            copy.record_count()
        finally:
            copy.close()

    def raw() -> None:
        conn = sqlcipher3.connect(str(big.base_file))
        try:
            escaped = big.who.password.replace("'", "''")
            conn.execute(f"PRAGMA key = '{escaped}'")
            conn.execute("SELECT count(*) FROM records").fetchone()
        finally:
            conn.close()

    times = _timed(mine, runs)
    base = _timed(raw, runs)
    return Figure(
        "open a copy with its password",
        median(times),
        "ms",
        target="KDF cost (SQLCipher 4 default)",
        baseline=median(base),
        ok=None,
        note="baseline = raw sqlcipher3 open + key + count on the baseline file",
        samples=tuple(times),
    )


def search(big: BigCopy, runs: int) -> list[Figure]:
    """Search over the big copy (name substring + word prefixes): a rare and a common term."""
    copy, _ = engine.open_copy(big.folder, big.who)
    conn = sqlcipher3.connect(str(big.base_file))
    figures = []
    try:
        escaped = big.who.password.replace("'", "''")
        conn.execute(f"PRAGMA key = '{escaped}'")
        for label, term in (("rare term", "004217"), ("common term", "payroll")):
            hits = len(copy.search(term))
            # The search returns the first hits by name (a limit); count them all for the note.
            total = len(copy.search(term, limit=big.records + 1))
            def find(term: str = term) -> None:
                copy.search(term)

            times = _timed(find, runs)

            def scan(term: str = term) -> None:
                like = f"%{term}%"
                conn.execute(
                    "SELECT id FROM records WHERE name LIKE ? OR fields LIKE ?", (like, like)
                ).fetchall()

            base = _timed(scan, runs)
            figures.append(
                Figure(
                    f"full-text search, {label}",
                    median(times),
                    "ms",
                    target="interactive (< 100 ms)",
                    baseline=median(base),
                    ok=check(median(times), lambda v: v < 100),
                    note=f"{big.records} records, {total} hits ({hits} returned, the first by "
                    "name); baseline = LIKE scan",
                    samples=tuple(times),
                )
            )
    finally:
        conn.close()
        copy.close()
    return figures


def memory(who_by_size: dict[int, Login], limit: int) -> list[Figure]:
    """Peak memory above the process baseline for first syncs of each size."""
    from bench.memprobe import measure

    figures = []
    peaks: dict[int, float] = {}
    for size, who in sorted(who_by_size.items()):
        mine = measure(who, "engine", limit)
        base = measure(who, "baseline", limit)
        if mine["records"] != size:
            raise RuntimeError(f"memory probe synced {mine['records']} of {size} records")
        mb = (mine["peak_kib"] - mine["baseline_kib"]) / 1024
        base_mb = (base["peak_kib"] - base["baseline_kib"]) / 1024
        peaks[size] = mb
        figures.append(
            Figure(
                f"peak memory, first sync {size // 1000}k",
                mb,
                "MB",
                target=f"< {MEMORY_LIMIT_MB:.0f} MB above baseline",
                baseline=base_mb,
                ok=check(mb, lambda v: v < MEMORY_LIMIT_MB),
                note=f"RSS high-water mark in a subprocess ({mine['how']}); "
                "baseline = plain loop",
            )
        )
    if len(peaks) >= 2:
        small, large = peaks[min(peaks)], peaks[max(peaks)]
        growth = large - small
        figures.append(
            Figure(
                "peak memory growth, small to large copy",
                growth,
                "MB",
                target="about the same (< 15 MB growth)",
                ok=check(growth, lambda v: v < 15.0),
                note=f"{max(peaks) // 1000}k minus {min(peaks) // 1000}k",
            )
        )
    return figures


def not_measured(name: str, unit: str, target: str, exc: BaseException) -> Figure:
    """A row for a measurement that failed or whose code is not there yet."""
    why = f"{type(exc).__name__}: {str(exc)[:120]}"
    return pending(name, unit, target, why)


def nan_safe(value: float) -> float | None:
    return None if math.isnan(value) else value
