"""The system clipboard through the platform's own tools, cleared again after a while.

The value goes to the tool on its standard input, never on its command line (which other users
of the machine can read in the process list). After :data:`CLEAR_AFTER_S` the clipboard is
emptied, unless it no longer holds the value (the user copied something else meanwhile), and
when the shell ends before that.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("psr.host.clipboard")

CLEAR_AFTER_S = 30.0
TOOL_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ClipboardTool:
    """One platform tool: how to put text on the clipboard, and how to read it back (empty
    when the tool cannot)."""

    copy: tuple[str, ...]
    paste: tuple[str, ...] = ()


TOOLS = (
    ClipboardTool(("wl-copy",), ("wl-paste", "--no-newline")),
    ClipboardTool(("xclip", "-selection", "clipboard"), ("xclip", "-selection", "clipboard", "-o")),
    ClipboardTool(("xsel", "--clipboard", "--input"), ("xsel", "--clipboard", "--output")),
    ClipboardTool(("pbcopy",), ("pbpaste",)),
    ClipboardTool(("clip.exe",)),
)
TOOL_NAMES = ", ".join(tool.copy[0] for tool in TOOLS)


class ClipboardUnavailable(Exception):
    """No clipboard tool works here; the message says which were tried."""


class Clipboard:
    """Copies secrets to the clipboard and clears them again.

    ``path`` is where the tools are looked for (default: ``$PATH``), ``clear_after`` how long
    a value stays.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        clear_after: float = CLEAR_AFTER_S,
        tools: Sequence[ClipboardTool] = TOOLS,
    ) -> None:
        self._path = path
        self.clear_after = clear_after
        self._tools = tuple(tools)
        self._lock = threading.Lock()
        self._pending: tuple[ClipboardTool, str, threading.Timer] | None = None

    def _found(self) -> list[ClipboardTool]:
        return [t for t in self._tools if shutil.which(t.copy[0], path=self._path)]

    def _run(self, argv: Sequence[str], value: str) -> bool:
        program = shutil.which(argv[0], path=self._path) or argv[0]
        try:
            # No pipes for the output: tools such as xclip leave a child that holds the
            # selection, and reading its output would wait for that child to end.
            done = subprocess.run(
                [program, *argv[1:]],
                input=value,
                text=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TOOL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("clipboard tool %s failed: %s", argv[0], type(exc).__name__)
            return False
        if done.returncode != 0:
            log.info("clipboard tool %s exited with %d", argv[0], done.returncode)
        return done.returncode == 0

    def copy(self, value: str) -> str:
        """Put ``value`` on the clipboard; the name of the tool that did it. Raises
        :class:`ClipboardUnavailable` when none is installed or none works (no display)."""
        found = self._found()
        for tool in found:
            if self._run(tool.copy, value):
                self._schedule_clear(tool, value)
                return tool.copy[0]
        tried = ", ".join(t.copy[0] for t in found)
        why = f"none of them worked ({tried})" if found else f"none is installed ({TOOL_NAMES})"
        raise ClipboardUnavailable(f"no clipboard can be used here: {why}")

    def _schedule_clear(self, tool: ClipboardTool, value: str) -> None:
        timer = threading.Timer(self.clear_after, self.clear_now)
        timer.daemon = True
        with self._lock:
            previous, self._pending = self._pending, (tool, value, timer)
        if previous is not None:
            previous[2].cancel()
        timer.start()

    def clear_now(self) -> None:
        """Empty the clipboard now if it still holds the value copied last (a no-op when
        nothing is pending)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        tool, value, timer = pending
        timer.cancel()
        if tool.paste and not self._still_holds(tool, value):
            return  # the user copied something else since: leave it
        self._run(tool.copy, "")

    def _still_holds(self, tool: ClipboardTool, value: str) -> bool:
        program = shutil.which(tool.paste[0], path=self._path) or tool.paste[0]
        try:
            done = subprocess.run(
                [program, *tool.paste[1:]],
                capture_output=True,
                text=True,
                timeout=TOOL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return True  # cannot tell: clearing is the safe side
        return done.returncode != 0 or done.stdout.rstrip("\n") == value
