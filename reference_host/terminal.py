"""The interactive shell's terminal: prompt_toolkit line editing, history, completion and a
status line.

Only used when both standard input and output are a terminal; piped scripts (tests, the demo)
read plain lines and never import prompt_toolkit.

Two phases alternate. While the prompt is shown, prompt_toolkit owns the screen: lines from
any thread are printed above the prompt (``patch_stdout``), which is then redrawn, and the
status line is its bottom toolbar. While a command runs, the console writes to the terminal
itself, and running progress is one line at the bottom that is rewritten in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import DynamicCompleter, NestedCompleter
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import StdoutProxy

from reference_host.records import may_remember
from reference_host.services import Console

HISTORY_FILE = "shell-history"
_CONTROL = {i: "?" for i in [*range(0x20), 0x7F] if i not in (0x09, 0x0A)}
_ERASE_LINE = "\r\x1b[K"


def printable(text: str) -> str:
    """``text`` without control characters (but tabs and newlines): a record name from the
    server must not move the cursor or change the terminal."""
    return text.translate(_CONTROL)


class FilteredHistory(History):
    """A history that keeps only the lines ``keep`` allows, in memory and in ``inner``."""

    def __init__(self, inner: History, keep: Callable[[str], bool] = may_remember) -> None:
        super().__init__()
        self._inner = inner
        self._keep = keep

    def load_history_strings(self) -> Iterable[str]:
        return self._inner.load_history_strings()

    def store_string(self, string: str) -> None:
        if self._keep(string):
            self._inner.store_string(string)

    def append_string(self, string: str) -> None:
        if self._keep(string):
            super().append_string(string)


def history_in(folder: Path | None) -> History:
    """The shell history: a file in the host's config folder, readable by its owner only, or
    in memory when that cannot be had."""
    if folder is None:
        return FilteredHistory(InMemoryHistory())
    path = folder / HISTORY_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)  # an older file may have been made with laxer rights
    except OSError:
        return FilteredHistory(InMemoryHistory())
    return FilteredHistory(FileHistory(str(path)))


class PromptScreen:
    """The shell's screen (a :class:`reference_host.services.StatusView` for the console).

    ``completions`` gives the nested command words to complete (built anew for each prompt,
    as add-ons come and go); ``session_state`` the start of the status line ("online:
    alice@demo").
    """

    def __init__(
        self,
        console: Console,
        history: History,
        completions: Callable[[], Mapping[str, Any]],
        session_state: Callable[[], str],
    ) -> None:
        self._console = console
        self._terminal = console.stream
        self._session_state = session_state
        self._lock = threading.RLock()
        self._prompting = False
        self._in_place = ""  # the progress line drawn while a command runs
        self._session: PromptSession[str] = PromptSession(
            history=history,
            completer=DynamicCompleter(
                lambda: NestedCompleter.from_nested_dict(dict(completions()))
            ),
            bottom_toolbar=self._toolbar,
            complete_while_typing=False,
        )
        self._proxy: StdoutProxy | None = None

    # -- the shell's side ------------------------------------------------------------------

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Own the terminal for the ``with`` block: console output comes here, and whatever
        else writes to stdout or stderr (the log) is printed above the prompt."""
        proxy = StdoutProxy(raw=False)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = cast(TextIO, proxy)
        self._proxy = proxy
        self._console.attach(self)
        try:
            yield
        finally:
            self._console.attach(None)
            with self._lock:
                self._erase_in_place()
            sys.stdout, sys.stderr = saved
            self._proxy = None
            proxy.close()

    def read_line(self, prompt: str) -> str | None:
        """One command line; ``None`` at Ctrl-D. Ctrl-C abandons the line ("")."""
        self._begin_prompt()
        try:
            return self._session.prompt(prompt)
        except KeyboardInterrupt:
            return ""
        except EOFError:
            return None
        finally:
            self._end_prompt()

    def read_secret(self, prompt: str) -> str:
        """A hidden line that no history keeps. Ctrl-C raises ``KeyboardInterrupt``."""
        self._begin_prompt()
        try:
            secret: PromptSession[str] = PromptSession(
                history=FilteredHistory(InMemoryHistory(), keep=lambda _: False)
            )
            return secret.prompt(prompt, is_password=True)
        except EOFError:
            return ""
        finally:
            self._end_prompt()

    def _begin_prompt(self) -> None:
        with self._lock:
            self._erase_in_place()
            self._prompting = True

    def _end_prompt(self) -> None:
        with self._lock:
            self._prompting = False
        self._draw_in_place()

    # -- the console's side (any thread) -----------------------------------------------------

    def print_line(self, text: str) -> None:
        """A line of the scroll-back, above the prompt or the progress line."""
        with self._lock:
            proxy = self._proxy
            if self._prompting and proxy is not None:
                proxy.write(text + "\n")
                proxy.flush()
                return
            shown, self._in_place = self._in_place, ""
            self._write(_ERASE_LINE if shown else "")
            self._write(printable(text) + "\n")
            self._in_place = shown
            self._write(printable(shown))

    def status_changed(self) -> None:
        """Redraw the status line: the toolbar while prompting, else the progress line."""
        with self._lock:
            prompting = self._prompting
        if prompting:
            app = self._session.app
            if app.is_running:
                app.invalidate()  # thread-safe: the redraw runs on the prompt's own loop
            return
        self._draw_in_place()

    # -- drawing ---------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if text:
            self._terminal.write(text)
            self._terminal.flush()

    def _draw_in_place(self) -> None:
        with self._lock:
            if self._prompting:
                return
            columns = shutil.get_terminal_size().columns
            line = printable(self._console.status().progress)[: max(columns - 1, 1)]
            if line != self._in_place:
                self._write(_ERASE_LINE + line)
                self._in_place = line

    def _erase_in_place(self) -> None:
        if self._in_place:
            self._write(_ERASE_LINE)
            self._in_place = ""

    def _toolbar(self) -> str:
        status = self._console.status()
        columns = self._session.app.output.get_size().columns
        first = " · ".join(
            part for part in (self._session_state(), status.progress or status.outcome) if part
        )
        lines = [first[: max(columns - 1, 1)]]
        if status.note:
            lines += textwrap.wrap(status.note, max(columns - 1, 20))
        return "\n".join(lines)
