"""The host services add-ons may call: progress, notifications, settings, logger, command text.

Every method may be called from any thread (add-ons call them from their workers), so output
goes through one lock. Where the output goes depends on the terminal:

- pipes, tests, the demo: plain lines; progress as ``[progress]`` lines, throttled to the
  first, each 10 % step and the last (deterministic, so that scripts can compare them);
- a terminal without the interactive shell (``psr-client offline create``): a rich progress
  bar that ends with one line saying how the task ended;
- the interactive shell (a :class:`StatusView` attached): a status line instead of scroll-back
  for progress and ``info`` notifications; lines are printed above the prompt, which is redrawn.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from hookspecs import HostServices
from hookspecs.services import NotifyLevel

NOTIFY_LEVELS = ("info", "warning", "error")
NOTE_SHOWN_S = 120.0
"""How long an ``info`` notification stays on the status line: long enough to be read, not so
long that it goes stale (a hint about a missing copy after the copy was made)."""
BAR_WIDTH = 20  # characters of the status line's progress bar (ASCII: any console shows it)


@dataclass(frozen=True)
class StatusText:
    """What the status line shows; each part is "" when there is nothing to say."""

    progress: str
    """The tasks running now."""
    outcome: str
    """How the last task ended ("offline: Up to date")."""
    note: str
    """The last ``info`` notification, with the time it came."""


class StatusView(Protocol):
    """The interactive shell's screen, as the console drives it (see ``terminal.py``)."""

    def print_line(self, text: str) -> None:
        """Print ``text`` as a line of the scroll-back, above the prompt and status line."""
        ...

    def status_changed(self) -> None:
        """:meth:`Console.status` has changed: redraw the status line."""
        ...


@dataclass
class _Task:
    """One task's progress display."""

    label: str
    text: str
    done: int = 0
    total: int = 0

    def shown(self) -> str:
        if self.total > 0:
            percent = min(100, self.done * 100 // self.total)
            filled = percent * BAR_WIDTH // 100
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            return f"{self.label}: {self.text} [{bar}] {self.done:,}/{self.total:,} ({percent} %)"
        return f"{self.label}: {self.text}"


def final_text(task: _Task | None, text: str) -> str:
    """The text an ended task keeps showing: the ending call's, or, when the add-on ended it
    with its running text unchanged ("Synchronising…" at done == total), that text marked
    done, so that a finished task never looks as if it were still running."""
    if task is not None and text == task.text:
        return f"{text}: done"
    return text


class Console:
    """Where the host writes to the user: one line at a time, from any thread."""

    def __init__(self, stream: IO[str] | None = None, *, rich_progress: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.RLock()
        self._rich = self._stream.isatty() if rich_progress is None else rich_progress
        self._view: StatusView | None = None
        self._bars: Any = None  # rich.progress.Progress while a bar is shown
        self._bar_tasks: dict[str, Any] = {}
        self._plain: dict[str, int] = {}  # task -> last printed tenth (plain mode)
        self._tasks: dict[str, _Task] = {}
        self._outcome = ""
        self._note = ""
        self._note_until = 0.0

    @property
    def stream(self) -> IO[str]:
        """The stream the console writes to when no view is attached (the terminal)."""
        return self._stream

    def attach(self, view: StatusView | None) -> None:
        """Send output to ``view`` (the interactive shell's screen) from now on; ``None``
        goes back to the stream."""
        with self._lock:
            self._end_bars()
            self._view = view

    def line(self, text: str) -> None:
        """Write one line."""
        with self._lock:
            if self._view is not None:
                self._view.print_line(text)
            elif self._bars is not None:
                self._bars.console.print(text, markup=False, highlight=False)
            else:
                self._stream.write(text + "\n")
                self._stream.flush()

    def notice(self, level: NotifyLevel, title: str, text: str) -> None:
        """A notification: on the status line when the shell shows one and it is ``info``
        (the next one replaces it), else a ``[level] title: text`` line."""
        with self._lock:
            if self._view is not None and level == "info":
                self._note = f"{time.strftime('%H:%M')} {title}: {text}"
                self._note_until = time.monotonic() + NOTE_SHOWN_S
                self._view.status_changed()
                return
            self.line(f"[{level}] {title}: {text}")

    def status(self) -> StatusText:
        """What the status line shows now."""
        with self._lock:
            progress = " | ".join(task.shown() for task in self._tasks.values())
            note = self._note if time.monotonic() < self._note_until else ""
            return StatusText(progress, self._outcome, note)

    def progress(self, key: str, label: str, done: int, total: int, text: str) -> None:
        """Show progress of task ``key`` as ``label``; ``done >= total > 0`` or ``total == -1``
        ends it."""
        ending = total == -1 or (total > 0 and done >= total)
        with self._lock:
            if self._view is not None:
                self._status_progress(key, label, done, total, text, ending)
            elif self._rich:
                self._rich_progress(key, label, done, total, text, ending)
            else:
                self._plain_progress(key, label, done, total, text, ending)

    def _status_progress(
        self, key: str, label: str, done: int, total: int, text: str, ending: bool
    ) -> None:
        assert self._view is not None
        if ending:
            task = self._tasks.pop(key, None)
            self._outcome = f"{label}: {final_text(task, text)}"
        else:
            self._tasks[key] = _Task(label, text, max(done, 0), total)
        self._view.status_changed()

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

        if ending:
            self._end_bar(key, label, text)
            return
        if self._bars is None:
            console = RichConsole(file=self._stream, force_terminal=True)
            # Transient: an ended bar is replaced by one line saying how it ended.
            self._bars = Progress(console=console, auto_refresh=False, transient=True)
            self._bars.start()
        bars = self._bars
        if key not in self._bar_tasks:
            self._bar_tasks[key] = bars.add_task(label, total=None)
        self._tasks[key] = _Task(label, text, max(done, 0), total)
        bars.update(
            self._bar_tasks[key],
            completed=max(done, 0),
            total=(total if total > 0 else None),
            description=f"{label}: {text}",
        )
        bars.refresh()

    def _end_bar(self, key: str, label: str, text: str) -> None:
        task = self._tasks.pop(key, None)
        bar = self._bar_tasks.pop(key, None)
        if bar is not None and self._bars is not None:
            self._bars.remove_task(bar)
            if not self._bar_tasks:
                self._end_bars()
        self.line(f"{label}: {final_text(task, text)}")

    def _end_bars(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
            self._bar_tasks.clear()

    def close(self) -> None:
        """End any progress display still shown."""
        with self._lock:
            self._end_bars()
            self._tasks.clear()


@dataclass(frozen=True)
class _AddonServices:
    """The services as one add-on sees them: progress and messages labelled with its id."""

    addon_id: str
    console: Console
    settings_of: Callable[[str], Mapping[str, Any]]
    command_text_of: Callable[[str, str], str]
    copy_text: Callable[[str], str | None] = lambda _text: None

    def progress(self, task: str, done: int, total: int, text: str) -> None:
        self.console.progress(f"{self.addon_id}/{task}", self.addon_id, done, total, text or task)

    def notify(self, title: str, text: str, level: NotifyLevel = "info") -> None:
        shown: NotifyLevel = level if level in NOTIFY_LEVELS else "info"
        self.console.notice(shown, title, text)

    def addon_settings(self, addon_id: str) -> Mapping[str, Any]:
        return self.settings_of(addon_id)

    def logger(self, addon_id: str) -> logging.Logger:
        return logging.getLogger(f"psr.addon.{addon_id}")

    def command_text(self, group: str, name: str) -> str:
        return self.command_text_of(group, name)

    def copy_to_clipboard(self, text: str) -> str | None:
        return self.copy_text(text)


def one_shot_command_text(group: str, name: str) -> str:
    """How a command is typed on the command line: ``psr-client GROUP NAME``."""
    return " ".join(part for part in ("psr-client", group, name) if part)


def services_for(
    addon_id: str,
    console: Console,
    settings_of: Callable[[str], Mapping[str, Any]],
    command_text: Callable[[str, str], str] = one_shot_command_text,
    copy_text: Callable[[str], str | None] = lambda _text: None,
) -> HostServices:
    """The :class:`hookspecs.HostServices` handed to ``addon_id`` in ``on_addon_enabled``;
    ``command_text`` says how the user types a command where they are now, ``copy_text``
    puts a secret on the clipboard (None: there is none)."""
    return _AddonServices(addon_id, console, settings_of, command_text, copy_text)
