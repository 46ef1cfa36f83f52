"""Host services: progress lines, notifications, settings and logger for an add-on."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

import reference_host.services as services_module
from reference_host.host import Host
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
    assert _lines(out) == [
        "[progress] offline: Checking",
        "[progress] offline: Up to date: 9 records",
    ]


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
    assert _lines(out) == [
        "[info] Offline copy: synchronised: 3 added",
        "[warning] Offline copy: copy deleted",
    ]


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
    timer = TimerThread(
        0.05, clock, lambda now: ticks.append((now, threading.current_thread().name))
    )
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


def test_a_finished_bar_says_how_it_ended_not_that_it_still_runs() -> None:
    out = io.StringIO()
    console = Console(out, rich_progress=True)
    services = services_for("offline", console, lambda _: {})
    services.progress("sync", 1, 4, "Synchronising")
    services.progress("sync", 4, 4, "Synchronising")  # ended with the running text
    services.progress("other", 1, 0, "Checking")
    services.progress("other", 1, -1, "Up to date")  # ended with a final text
    console.close()
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert "offline: Synchronising: done" in lines
    assert "offline: Up to date" in lines


class StatusRecorder:
    """The console's view as the shell's screen would be: what it printed, how often the
    status changed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changes = 0

    def print_line(self, text: str) -> None:
        self.lines.append(text)

    def status_changed(self) -> None:
        self.changes += 1


def test_with_a_status_line_progress_and_info_go_there_and_warnings_to_the_scroll_back() -> None:
    console = Console(io.StringIO())
    view = StatusRecorder()
    console.attach(view)
    services = services_for("offline", console, lambda _: {})
    services.progress("sync", 30, 120, "Synchronising")
    assert console.status().progress == (
        "offline: Synchronising [#####...............] 30/120 (25 %)"
    )
    services.notify("Offline synchronisation completed", "demo: 120 records")
    services.progress("sync", 120, -1, "Up to date")
    services.notify("Offline synchronisation failed", "try later", "warning")
    status = console.status()
    assert (status.progress, status.outcome) == ("", "offline: Up to date")
    assert status.note.endswith("Offline synchronisation completed: demo: 120 records")
    assert view.lines == ["[warning] Offline synchronisation failed: try later"]
    assert view.changes == 3
    console.attach(None)
    services.notify("Back", "to plain lines")
    assert console.stream.getvalue() == "[info] Back: to plain lines\n"  # type: ignore[attr-defined]


def test_an_info_note_leaves_the_status_line_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(services_module.time, "monotonic", lambda: now[0])
    console = Console(io.StringIO())
    console.attach(StatusRecorder())
    services_for("offline", console, lambda _: {}).notify("Offline copy", "no copy yet")
    assert console.status().note.endswith("Offline copy: no copy yet")
    now[0] += services_module.NOTE_SHOWN_S + 1
    assert console.status().note == ""


def test_command_text_says_how_a_command_is_typed_where_the_user_is(tmp_path: Path) -> None:
    host = Host(tmp_path / "config", Console(io.StringIO()), addons=[])
    services = host.services_for("offline")
    assert services.command_text("offline", "create") == "psr-client offline create"
    host.enter_shell()
    assert services.command_text("offline", "create") == "offline create"
    assert host.command_text("addons", "enable offline") == "addons enable offline"
