"""What a sync did, and every sentence the add-on says about a sync's outcome or failure.

The engine, the background thread and the ``offline`` commands all take their words from here,
so that one outcome reads the same wherever the user meets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from offline_addon import errors

Outcome = Literal["synced", "unchanged", "wiped", "repaired"]


@dataclass(frozen=True)
class SyncResult:
    """What a sync did. For ``"repaired"``, ``added`` is the rebuilt copy's record count and
    ``removed`` the old copy's (the old copy is replaced as a whole). ``message`` says it in
    words for the user."""

    outcome: Outcome
    added: int
    changed: int
    removed: int
    record_count: int
    duration_s: float
    server_time: float | None
    message: str


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
