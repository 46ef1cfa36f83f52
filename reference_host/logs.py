"""What the terminal shows of the log: only what the user asked for with ``-v``.

The log is for developers; the user learns what happened from the add-ons' notifications. So
by default the terminal shows the host's own warnings and nothing below ERROR from anyone
else (add-ons, libraries): a sync that is retried logs a warning each time, and the user has
been told once already. ``-v`` shows INFO from everyone, ``-vv`` DEBUG. A handler that was set
up before (an embedding program's log file) keeps getting every record its level lets through.
"""

from __future__ import annotations

import logging
import sys

HOST_LOGGER = "psr.host"
FORMAT = "%(levelname)s %(name)s: %(message)s"


def terminal_levels(verbosity: int) -> tuple[int, int]:
    """The lowest level the terminal shows for the host's own records and for all others."""
    if verbosity <= 0:
        return logging.WARNING, logging.ERROR
    level = logging.INFO if verbosity == 1 else logging.DEBUG
    return level, level


class TerminalFilter(logging.Filter):
    """Lets through the records the terminal shows at a verbosity."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self.host_level, self.other_level = terminal_levels(verbosity)

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == HOST_LOGGER or record.name.startswith(HOST_LOGGER + ".")
        return record.levelno >= (self.host_level if own else self.other_level)


class TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record comes, so that the interactive shell's
    redirection (records printed above the prompt) applies to the log too."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbosity: int) -> None:
    """Show log records on the terminal as ``verbosity`` (the count of ``-v``) says."""
    root = logging.getLogger()
    host_level, other_level = terminal_levels(verbosity)
    if not root.handlers:
        handler = TerminalHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(TerminalFilter(verbosity))
        root.addHandler(handler)
    root.setLevel(min(host_level, other_level))
