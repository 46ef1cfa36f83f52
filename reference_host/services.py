"""The host services add-ons may call: progress, notifications, settings, logger.

Every method may be called from any thread (add-ons call them from their workers), so output
goes through one lock. On a terminal progress is a rich progress bar; otherwise (pipes, tests,
the demo) it is plain ``[progress]`` lines, throttled to the first, each 10 % step and the last.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from hookspecs import HostServices
from hookspecs.services import NotifyLevel

NOTIFY_LEVELS = ("info", "warning", "error")


class Console:
    """Where the host writes to the user: one line at a time, from any thread."""

    def __init__(self, stream: IO[str] | None = None, *, rich_progress: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.RLock()
        self._rich = self._stream.isatty() if rich_progress is None else rich_progress
        self._bars: Any = None  # rich.progress.Progress while a bar is shown
        self._bar_tasks: dict[str, Any] = {}
        self._plain: dict[str, int] = {}  # task -> last printed tenth (plain mode)

    def line(self, text: str) -> None:
        """Write one line."""
        with self._lock:
            if self._bars is not None:
                self._bars.console.print(text, markup=False, highlight=False)
                return
            self._stream.write(text + "\n")
            self._stream.flush()

    def progress(self, key: str, label: str, done: int, total: int, text: str) -> None:
        """Show progress of task ``key`` as ``label``; ``done >= total > 0`` or ``total == -1``
        ends it."""
        ending = total == -1 or (total > 0 and done >= total)
        with self._lock:
            if self._rich:
                self._rich_progress(key, label, done, total, text, ending)
            else:
                self._plain_progress(key, label, done, total, text, ending)

    def _plain_progress(
        self, key: str, label: str, done: int, total: int, text: str, ending: bool
    ) -> None:
        tenth = min(10, done * 10 // total) if total > 0 else 0
        last = self._plain.get(key)
        if ending:
            self._plain.pop(key, None)
        else:
            if last is not None and tenth <= last:
                return
            self._plain[key] = tenth
        # Unknown total (0): the count so far; an ended display (-1): its final words only.
        count = f"{done}/{total} " if total > 0 else (f"{done} " if done and total == 0 else "")
        self.line(f"[progress] {label}: {count}{text}".rstrip())

    def _rich_progress(
        self, key: str, label: str, done: int, total: int, text: str, ending: bool
    ) -> None:
        from rich.console import Console as RichConsole
        from rich.progress import Progress

        if self._bars is None:
            console = RichConsole(file=self._stream, force_terminal=True)
            self._bars = Progress(console=console, auto_refresh=False)
            self._bars.start()
        bars = self._bars
        if key not in self._bar_tasks:
            self._bar_tasks[key] = bars.add_task(label, total=None)
        task = self._bar_tasks[key]
        bars.update(task, completed=max(done, 0), total=(total if total > 0 else None),
                    description=f"{label}: {text}")
        bars.refresh()
        if ending:
            bars.remove_task(task)
            del self._bar_tasks[key]
            if not self._bar_tasks:
                bars.stop()
                self._bars = None
            self.line(f"{label}: {text}")

    def close(self) -> None:
        """End any progress display still shown."""
        with self._lock:
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
                self._bar_tasks.clear()


@dataclass(frozen=True)
class _AddonServices:
    """The services as one add-on sees them: progress and messages labelled with its id."""

    addon_id: str
    console: Console
    settings_of: Callable[[str], Mapping[str, Any]]

    def progress(self, task: str, done: int, total: int, text: str) -> None:
        self.console.progress(f"{self.addon_id}/{task}", self.addon_id, done, total,
                              text or task)

    def notify(self, title: str, text: str, level: NotifyLevel = "info") -> None:
        shown = level if level in NOTIFY_LEVELS else "info"
        self.console.line(f"[{shown}] {title}: {text}")

    def addon_settings(self, addon_id: str) -> Mapping[str, Any]:
        return self.settings_of(addon_id)

    def logger(self, addon_id: str) -> logging.Logger:
        return logging.getLogger(f"psr.addon.{addon_id}")


def services_for(
    addon_id: str, console: Console, settings_of: Callable[[str], Mapping[str, Any]]
) -> HostServices:
    """The :class:`hookspecs.HostServices` handed to ``addon_id`` in ``on_addon_enabled``."""
    return _AddonServices(addon_id, console, settings_of)
