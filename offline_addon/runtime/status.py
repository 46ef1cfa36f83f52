"""What the add-on tells about its work: the feedback channel (progress, messages) and each
copy's live status (in memory, in this process)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from offline_addon.sync.result import SyncResult

_log = logging.getLogger("offline_addon.runtime.dispatcher")

Level = Literal["info", "warning", "error"]
PROGRESS_TASK = "offline"


class Feedback(Protocol):
    """Where the add-on reports progress and results (the host's services, or a log)."""

    def progress(self, done: int, total: int, text: str) -> None:
        """Report sync progress; ``total`` -1 ends the display."""
        ...

    def notify(self, title: str, text: str, level: Level = "info") -> None:
        """Tell the user something once."""
        ...


def command_text(feedback: Feedback, group: str, name: str) -> str:
    """How the user types the command ``group name`` where they are: the host says so when it
    can (``command_text``, contract 1.1), else the one-shot form."""
    spell = getattr(feedback, "command_text", None)
    if callable(spell):
        try:
            text = spell(group, name)
        except Exception:  # a host's helper must never break a message
            text = None
        if isinstance(text, str) and text:
            return text
    return f"psr-client {group} {name}"


class LogFeedback:
    """Feedback for scripts without a host: everything goes to the ``offline_addon`` log."""

    def progress(self, done: int, total: int, text: str) -> None:
        """Log progress at debug level."""
        _log.debug("offline progress %d/%d %s", done, total, text)

    def notify(self, title: str, text: str, level: Level = "info") -> None:
        """Log the message at the level's log level."""
        _log.log(_LOG_LEVELS[level], "%s: %s", title, text)


_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


EXPIRY_TITLE = "Offline copy expires soon"


def humane_duration(seconds: float) -> str:
    """A duration as a person says it, rounded down (never promising more than there is):
    "less than a minute", "40 minutes", "5 hours", "3 days"."""
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


def expiry_words(left_s: float) -> str:
    """The warning of a copy near the end of its validity, the same at the offline login, in
    ``offline status`` and in the notification: "usable offline for 5 more hours; connect to
    renew" (``less than a minute`` has no "more")."""
    amount = humane_duration(left_s)
    more = amount if amount.startswith("less") else amount.replace(" ", " more ", 1)
    return f"usable offline for {more}; connect to renew"


def expiry_notice(database: str, left_s: float) -> str:
    """The notification's text: which copy, and :func:`expiry_words`."""
    return f"The offline copy of '{database}' is {expiry_words(left_s)}."


@dataclass(frozen=True)
class CopyStatus:
    """What the add-on knows about one copy right now (cheap to read from any thread)."""

    copy_id: str
    state: Literal["idle", "syncing"] = "idle"
    done: int = 0
    total: int = 0
    last_result: SyncResult | None = None
    last_error: str | None = None
    next_sync_at: float | None = None
    """Next automatic sync on the schedule clock; ``None`` when none is planned."""
    syncs: int = 0
    """Synchronisations finished (well or not) in this process."""
