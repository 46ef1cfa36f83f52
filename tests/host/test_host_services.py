"""Host services: progress lines, notifications, settings and logger for an add-on."""

from __future__ import annotations

import io
import threading
import time

from reference_host.services import Console, services_for
from reference_host.timer import HostClock, TimerThread


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_plain_progress_prints_first_each_tenth_and_last() -> None:
    out = io.StringIO()
    services = services_for("offline", Console(out), lambda _: {})
    for done in range(0, 5001, 100):
        services.progress("sync", done, 5000, "Synchronising offline copy…")
    lines = _lines(out)
    assert lines[0] == "[progress] offline: 0/5000 Synchronising offline copy…"
    assert "[progress] offline: 2000/5000 Synchronising offline copy…" in lines
    assert lines[-1] == "[progress] offline: 5000/5000 Synchronising offline copy…"
    assert len(lines) == 11


def test_progress_of_two_tasks_is_throttled_separately() -> None:
    out = io.StringIO()
    services = services_for("offline", Console(out), lambda _: {})
    services.progress("a", 0, 10, "A")
    services.progress("b", 0, 10, "B")
    services.progress("a", 0, 10, "A")
    assert _lines(out) == ["[progress] offline: 0/10 A", "[progress] offline: 0/10 B"]


def test_progress_with_unknown_total_shows_start_and_end_with_its_final_words() -> None:
    out = io.StringIO()
    services = services_for("offline", Console(out), lambda _: {})
    services.progress("sync", 0, 0, "Checking")
    services.progress("sync", 5, 0, "Checking")
    services.progress("sync", 9, -1, "Up to date: 9 records")
    assert _lines(out) == ["[progress] offline: Checking",
                           "[progress] offline: Up to date: 9 records"]


def test_rich_progress_bar_on_a_terminal_ends_with_a_line() -> None:
    out = io.StringIO()
    console = Console(out, rich_progress=True)
    services = services_for("offline", console, lambda _: {})
    services.progress("sync", 1, 4, "Synchronising")
    services.notify("Offline copy", "2 records added")
    services.progress("sync", 4, 4, "Synchronised")
    console.close()
    text = out.getvalue()
    assert "2 records added" in text
    assert "offline: Synchronised" in text


def test_notify_prints_level_title_and_text() -> None:
    out = io.StringIO()
    services = services_for("offline", Console(out), lambda _: {})
    services.notify("Offline copy", "synchronised: 3 added")
    services.notify("Offline copy", "copy deleted", "warning")
    assert _lines(out) == ["[info] Offline copy: synchronised: 3 added",
                           "[warning] Offline copy: copy deleted"]


def test_output_from_many_threads_keeps_whole_lines() -> None:
    out = io.StringIO()
    services = services_for("offline", Console(out), lambda _: {})

    def spam(n: int) -> None:
        for i in range(200):
            services.notify(f"t{n}", f"message {i}")

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = _lines(out)
    assert len(lines) == 800
    assert all(line.startswith("[info] t") for line in lines)


def test_services_give_the_addon_its_settings_and_a_named_logger() -> None:
    services = services_for("offline", Console(io.StringIO()), lambda a: {"who": a})
    assert services.addon_settings("offline") == {"who": "offline"}
    assert services.logger("offline").name == "psr.addon.offline"


def test_timer_ticks_on_its_own_thread_and_on_demand_with_the_host_clock() -> None:
    clock = HostClock(base=lambda: 1000.0)
    ticks: list[tuple[float, str]] = []
    timer = TimerThread(0.05, clock, lambda now: ticks.append(
        (now, threading.current_thread().name)))
    timer.start()
    try:
        deadline = time.monotonic() + 5
        while len(ticks) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        clock.advance(1800)
        assert timer.tick_now()
    finally:
        timer.stop()
    assert len(ticks) >= 3
    assert ticks[0] == (1000.0, "psr-host-timer")
    assert ticks[-1][0] == 2800.0


def test_timer_survives_a_failing_tick() -> None:
    calls: list[float] = []

    def tick(now: float) -> None:
        calls.append(now)
        raise RuntimeError("boom")

    timer = TimerThread(3600, HostClock(), tick)
    timer.start()
    try:
        assert timer.tick_now()
        assert timer.tick_now()
    finally:
        timer.stop()
    assert len(calls) == 2
