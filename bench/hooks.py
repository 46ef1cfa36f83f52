"""How long a host waits in the add-on's hooks, and how many syncs a burst of saves causes.

Drives the real add-on object (:class:`offline_addon.plugin.OfflineAddon`) exactly as a host
does: enable it with host services, log in, then call ``on_record_saved`` and ``on_timer``
and time each call with ``perf_counter_ns``. The burst: 100 real saves on the server, each
followed by ``on_record_saved`` as the host would call it; syncs are counted from the add-on's
own status once its worker is idle again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import engine
from bench.baseline import Login
from bench.dataset import BenchServer
from bench.stats import Figure, check, median, percentile

P99_LIMIT_US = 100.0
MAX_BURST_SYNCS = 2


class BenchHost:
    """Minimal host services: settings from a dict, progress and notices counted."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = dict(settings)
        self.notices: list[tuple[str, str]] = []
        self.progress_calls = 0

    def progress(self, task: str, done: int, total: int, text: str) -> None:
        self.progress_calls += 1

    def notify(self, title: str, text: str, level: str = "info") -> None:
        self.notices.append((title, level))

    def addon_settings(self, addon_id: str) -> Mapping[str, Any]:
        return dict(self._settings)

    def logger(self, addon_id: str) -> logging.Logger:
        return logging.getLogger(f"bench.addon.{addon_id}")


def _time_calls(call: Callable[[int], None], count: int) -> list[float]:
    """Microseconds per call."""
    out = []
    for i in range(count):
        started = time.perf_counter_ns()
        call(i)
        out.append((time.perf_counter_ns() - started) / 1000.0)
    return out


def _latency_rows(name: str, samples: list[float]) -> list[Figure]:
    p50, p99 = median(samples), percentile(samples, 99)
    return [
        Figure(
            f"host wait in {name}: median",
            p50,
            "µs",
            target="-",
            note=f"{len(samples)} calls, real add-on object",
            samples=(),
        ),
        Figure(
            f"host wait in {name}: p99",
            p99,
            "µs",
            target=f"< {P99_LIMIT_US:.0f} µs",
            ok=check(p99, lambda v: v < P99_LIMIT_US),
            note=f"max {max(samples):.0f} µs",
        ),
    ]


def _check_burst_arrived(server: BenchServer, who: Login, folder: Path, ids: list[str]) -> None:
    """The burst's changes must be in the copy: a count of zero syncs must not pass."""
    view = server.admin.exportable_view(who.database, who.username)
    copy, _ = engine.open_copy(folder, who)
    try:
        stale = [rid for rid in ids if (r := copy.get(rid)) is None or r.rev != view[rid][0]]
    finally:
        copy.close()
    if stale:
        raise RuntimeError(f"{len(stale)} of the burst's saves did not reach the copy")


def hook_figures(server: BenchServer, who: Login, work: Path, quick: bool) -> list[Figure]:
    """Latency of on_record_saved / on_timer and syncs per burst of 100 saves."""
    from hookspecs import SavedRecord
    from offline_addon.plugin import OfflineAddon

    folder = work / "hooks-copies"
    engine.engine_sync(folder, who, create=True)  # creating a copy is by hand, never by a hook
    session = engine.session_of(who)
    host = BenchHost(
        {
            "sync_after_save": True,
            "sync_after_login": True,
            "sync_interval_minutes": 30,
            "database_path": str(folder),
        }
    )
    addon = OfflineAddon()
    addon.on_addon_enabled(host=host)
    rows: list[Figure] = []
    try:
        addon.on_login(session=session)
        if not addon.copies.wait_idle(120):
            raise RuntimeError("the login sync did not finish")
        ids = server.databases[who.database]
        calls = 500 if quick else 2000

        def own_save(i: int) -> None:
            record = SavedRecord(ids[i % len(ids)], who.database, who.user_id)
            addon.on_record_saved(session=session, record=record)

        def other_save(i: int) -> None:
            record = SavedRecord(ids[i % len(ids)], who.database, "someone-else")
            addon.on_record_saved(session=session, record=record)

        def tick(i: int) -> None:
            addon.on_timer(session=session, now=time.time())

        saves = _time_calls(own_save, calls) + _time_calls(other_save, calls)
        if not addon.copies.wait_idle(120):
            raise RuntimeError("the syncs after the timed saves did not finish")
        ticks = _time_calls(tick, calls)
        rows += _latency_rows("on_record_saved", saves)
        rows += _latency_rows("on_timer", ticks)

        before = addon.copies.status(session).status.syncs
        for i in range(100):
            server.admin.update_record(who.database, ids[i], fields={"notes": f"burst {i}"})
            own_save(i)
        if not addon.copies.wait_idle(120):
            raise RuntimeError("the syncs after the burst did not finish")
        syncs = addon.copies.status(session).status.syncs - before
        _check_burst_arrived(server, who, folder, ids[:100])
        last = addon.copies.status(session).status
        outcome = last.last_result.outcome if last.last_result else last.last_error
        rows.append(
            Figure(
                "syncs caused by a burst of 100 saves",
                float(syncs),
                "syncs",
                target=f"<= {MAX_BURST_SYNCS}",
                ok=syncs <= MAX_BURST_SYNCS,
                note=f"100 server updates + on_record_saved; last result: {outcome}",
            )
        )
    finally:
        addon.on_logout(session=session)
        addon.on_addon_disabled()
    return rows
