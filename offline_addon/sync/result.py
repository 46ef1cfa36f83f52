"""What a sync did, and every sentence the add-on says about a sync's outcome or failure.

The engine, the background thread and the ``offline`` commands all take their words from here,
so that one outcome reads the same wherever the user meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from offline_addon import errors

Outcome = Literal["synced", "unchanged", "wiped", "repaired"]


@dataclass(frozen=True)
class SyncResult:
    """What a sync did. For ``"repaired"``, ``added`` is the rebuilt copy's record count and
    ``removed`` the old copy's (the old copy is replaced as a whole). ``message`` says it in
    words for the user. ``changes_pushed``: offline changes the server now holds (pushed
    before the pull); ``new_conflicts``: entries this sync added to the conflict list."""

    outcome: Outcome
    added: int
    changed: int
    removed: int
    record_count: int
    duration_s: float
    server_time: float | None
    message: str
    changes_pushed: int = 0
    new_conflicts: int = 0


def outcome_message(
    outcome: Outcome,
    database: str,
    count: int,
    added: int,
    changed: int,
    removed: int,
    why: str = "",
) -> str:
    """The sentence for a sync that ended well (``why``: the reason of a repair)."""
    if outcome == "unchanged":
        return f"The offline copy of '{database}' is up to date ({count:,} records)."
    if outcome == "repaired":
        return (
            f"The offline copy of '{database}' was rebuilt from the server because {why} "
            f"({count:,} records)."
        )
    return (
        f"The offline copy of '{database}' is synchronised: {added:,} added, {changed:,} "
        f"changed, {removed:,} removed ({count:,} records)."
    )


SEARCH_FOLLOWS = " Search by words follows in a few seconds, once its index is built."
"""Added to the sentence of a sync that left the copy's search indexes to be built."""


MAX_NAMES_SAID = 5
"""Record names listed in one sentence; more are counted ("and 3 more")."""


def push_words(pushed: int, conflicts: int, refused: Sequence[str] = (), waiting: int = 0) -> str:
    """What the push of offline changes did, in words ("" when it did nothing): "3 offline
    changes saved to the server; 1 conflict to resolve". ``refused``: the names of the
    records whose changes the server refused (their values are in the conflict list);
    ``waiting``: changes kept for the next sync (their record kept changing on the server)."""
    parts: list[str] = []
    if pushed:
        parts.append(f"{_count(pushed, 'offline change')} saved to the server")
    if conflicts:
        parts.append(f"{_count(conflicts, 'conflict')} to resolve")
    if waiting:
        verb = "waits" if waiting == 1 else "wait"
        parts.append(f"{_count(waiting, 'offline change')} {verb} for the next synchronisation")
    text = "; ".join(parts)
    if text:
        text = text[0].upper() + text[1:] + "."
    if refused:
        said = f"Not saved (refused by the server, or deleted there): {names_said(refused)}"
        text = (
            f"{text} {said}; your values are in the conflict list."
            if text
            else (f"{said}; your values are in the conflict list.")
        )
    return text


def with_push_words(
    message: str, pushed: int, conflicts: int, refused: Sequence[str], waiting: int = 0
) -> str:
    """``message`` followed by :func:`push_words` (when the push did anything)."""
    words = push_words(pushed, conflicts, refused, waiting)
    return f"{message} {words}" if words else message


def lost_with_copy(names: Sequence[str]) -> str:
    """What a wipe says about offline changes it could not save first (by record name,
    never a value)."""
    if not names:
        return ""
    return (
        "The server did not take the offline changes to "
        f"{names_said(names)}, so they were deleted with the copy; enter them again online "
        "if you still need them."
    )


def names_said(names: Sequence[str]) -> str:
    """Record names for a sentence: quoted, at most :data:`MAX_NAMES_SAID`, the rest
    counted."""
    shown = ", ".join(f"'{name}'" for name in names[:MAX_NAMES_SAID])
    rest = len(names) - MAX_NAMES_SAID
    return f"{shown} and {rest} more" if rest > 0 else shown


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def progress_summary(result: SyncResult) -> str:
    """The few words a finished progress display ends with (the status line)."""
    if result.outcome == "wiped":
        return "Offline copy deleted"
    return f"Up to date: {result.record_count:,} records"


def incomplete_words(held: int, expected: int | None) -> str:
    """How a copy whose first sync (or rebuild) has not finished is described everywhere:
    ``incomplete: N of about M records``."""
    if expected is None or expected < held:
        return f"incomplete: {held} records so far"
    return f"incomplete: {held} of about {expected} records"


def wiped_message(reason: errors.OfflineReason, existed: bool) -> str:
    """The sentence for a sync the server refused: why, and whether a copy was deleted."""
    text = errors.offline_not_allowed_message(reason)
    if existed:
        text += " The offline copy on this computer was deleted."
    return text


def _as_typed(group: str, name: str) -> str:
    return f"psr-client {group} {name}"


def failure_message(exc: BaseException, command: Callable[[str, str], str] = _as_typed) -> str:
    """A user-facing sentence for a failed sync: what went wrong and what to do.
    ``command(group, name)`` says how the user types a command where they are."""
    if isinstance(exc, errors.AuthenticationRequired):
        return "The server wants you to log in again; log out and in, then sync again."
    if isinstance(exc, errors.WrongPassword):
        return str(exc)  # the sync's only WrongPassword: log in again with the new password
    if isinstance(exc, errors.ServerUnreachable | errors.ServerBusy | errors.ServerError):
        return f"{exc} The add-on tries again by itself later."
    if isinstance(exc, errors.OfflineAddonError):
        return str(exc)
    return (
        "An unexpected error stopped the offline synchronisation; it is retried later. "
        "If this repeats, look at the host's log."
    )
