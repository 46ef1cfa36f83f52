"""Peak memory of one first sync, measured in a fresh subprocess.

Run as ``python -m bench.memprobe`` with a JSON job on stdin (the token goes through stdin, not
the command line, so that it never shows in the process list). Prints one JSON line:
``{"baseline_kib", "peak_kib", "page_kib", "decoding_kib", "records", "how"}``.

The peak is the kernel's resident-set high-water mark (``VmHWM``), reset just before the sync
through ``/proc/self/clear_refs`` so that imports and interpreter start-up do not count; the
baseline is the resident set right before the sync. Both come from the kernel, so memory held
by SQLCipher's C code counts as well as Python objects.

``page_kib`` is what one page of the feed holds once fetched, decoded and validated by the
add-on's client, ``decoding_kib`` the high-water mark while it is fetched and decoded (body,
JSON objects and validated values at once); both by ``tracemalloc``, before the sync, then freed.
They are the unit of the issue's bound: about three pages at once, each at most
``decoding_kib``, plus SQLite's page cache. (The add-on holds less: at most two decoded pages,
one being written and one decoded or waiting, and the next answer's body; see
``offline_addon/sync/prefetch``.)
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.baseline import Login, plain_first_sync
from bench.stats import Figure, check

MEMORY_GROWTH_LIMIT_MB = 15.0
CACHE_MB = 8.0  # cache_size = -8192 in offline_addon/storage/cipher.py
BOUND_SLACK = 1.1  # "about" three pages


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _page_kib(who: Login, limit: int) -> tuple[int, int]:
    """What one page of the feed costs the add-on's client (the first page), by tracemalloc:
    (KiB held by the validated page, KiB at the peak while it was fetched and decoded)."""
    import tracemalloc

    from bench.engine import sync_client

    with sync_client(who) as client:
        client.changes(who.database, None, limit)  # warm: connection, caches, imports
        gc.collect()
        tracemalloc.start()
        page = client.changes(who.database, None, limit)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del page
    gc.collect()
    return held // 1024, peak // 1024


def _probe(job: dict[str, Any]) -> dict[str, Any]:
    who = Login(**job["login"])
    limit = int(job["limit"])
    # Import everything the sync needs before measuring: code is not data.
    import offline_addon.sync.engine  # noqa: F401
    from bench.engine import engine_sync

    held, decoding = _page_kib(who, limit) if job["kind"] == "engine" else (0, 0)
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        baseline = _status_kib("VmRSS")
        reset = _reset_peak()
        if job["kind"] == "engine":
            result, _ = engine_sync(Path(tmp), who, create=True)
            records = int(result.record_count)
        else:
            records = plain_first_sync(
                who, Path(tmp) / "plain.db", limit, index=job["kind"] == "indexed"
            ).records
        peak = _status_kib("VmHWM")
    return {
        "baseline_kib": baseline,
        "peak_kib": peak,
        "page_kib": held,
        "decoding_kib": decoding,
        "records": records,
        "how": "VmHWM reset by clear_refs" if reset else "VmHWM since start",
    }


def measure(login: Login, kind: str, limit: int) -> dict[str, Any]:
    """Run one probe (``kind`` "engine", "plain" or "indexed") in a subprocess."""
    job = {"login": login.__dict__, "kind": kind, "limit": limit}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memprobe"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr.strip()[-800:]}")
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer


def memory_figures(who_by_size: dict[int, Login], limit: int, label: str) -> list[Figure]:
    """Peak memory above the process baseline for first syncs of each size, the growth from
    the smallest to the largest, and the largest peak against the three-page bound."""
    figures = []
    peaks: dict[int, float] = {}
    bound_mb = 0.0
    for size, who in sorted(who_by_size.items()):
        mine = measure(who, "engine", limit)
        base = measure(who, "plain", limit)
        if mine["records"] != size:
            raise RuntimeError(f"memory probe synced {mine['records']} of {size} records")
        mb = (mine["peak_kib"] - mine["baseline_kib"]) / 1024
        base_mb = (base["peak_kib"] - base["baseline_kib"]) / 1024
        page_mb, decoding_mb = mine["page_kib"] / 1024, mine["decoding_kib"] / 1024
        bound_mb = 3 * decoding_mb + CACHE_MB
        peaks[size] = mb
        figures.append(
            Figure(
                f"peak memory, first sync {size // 1000}k {label}",
                mb,
                "MB",
                target="-",
                baseline=base_mb,
                note=f"RSS high-water mark above the start, in a subprocess ({mine['how']}); a "
                f"validated page of {min(size, limit)} holds {page_mb:.1f} MB, "
                f"{decoding_mb:.1f} MB while decoded; baseline = plain loop",
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
                target=f"< {MEMORY_GROWTH_LIMIT_MB:.0f} MB",
                ok=check(growth, lambda v: v < MEMORY_GROWTH_LIMIT_MB),
                note=f"{max(peaks) // 1000}k minus {min(peaks) // 1000}k",
            )
        )
    if bound_mb > 0:
        ratio = peaks[max(peaks)] / bound_mb
        figures.append(
            Figure(
                "peak memory / three-page bound, largest copy",
                ratio,
                "x",
                target=f"<= {BOUND_SLACK} (about three pages)",
                ok=check(ratio, lambda v: v <= BOUND_SLACK),
                note=f"bound = 3 pages at their decoding peak + the {CACHE_MB:.0f} MiB SQLite "
                f"cache = {bound_mb:.1f} MB; relative to the page, so it holds whatever size the "
                "records",
            )
        )
    return figures


if __name__ == "__main__":
    print(json.dumps(_probe(json.loads(sys.stdin.read()))), flush=True)
