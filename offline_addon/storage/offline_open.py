"""Opening a copy for an offline login, with the validity and clock checks.

The validity counts on the local clock from the moment of the last successful server contact
(stored inside the encrypted copy, so it cannot be edited without the password): the server's
time of that contact is stored too, but offline the local clock is the only one there is, and
comparing local with local makes a steadily wrong clock harmless. A clock set back before that
contact (beyond a small tolerance) is refused, or validity could be stretched forever; so is a
clock set back before the latest time the copy has seen since (its clock high-water mark,
raised by every open that got past the password, also a refused one).

Guessing through the client is limited: each attempt is counted before its password is tried,
a correct password starts the count again, and the attempt that reaches the limit deletes the
copy (:mod:`offline_addon.storage.login_attempts`). The clock plays no part in that count, so
setting it back changes nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from offline_addon.errors import (
    ClockWentBack,
    CopyBusy,
    CopyExpired,
    CopyNotFound,
    StorageError,
    WrongPassword,
)
from offline_addon.protocol.validity import offline_verdict
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.files import delete_copy
from offline_addon.storage.login_attempts import (
    WARN_WHEN_LEFT,
    AttemptCount,
    clear_failures,
    count_attempt,
    read_attempts,
)
from offline_addon.storage.offline_copy import CopyMeta, OfflineCopy
from offline_addon.storage.paths import CopyPaths

_log = logging.getLogger(__name__)

HIGH_WATER_LOCK_WAIT_S = 1.0
"""How long an offline open waits for a writer to note the time it has seen."""
DELETE_LOCK_WAIT_S = 2.0
"""How long the attempt that used up the last try waits for a writer before it says that the
copy is deleted as soon as that writer is done."""


def open_offline(paths: CopyPaths, password: str, now: float | None = None) -> OfflineCopy:
    """Open the copy for reading offline.

    Raises CopyNotFound, WrongPassword (file untouched; at the limit of wrong passwords
    the copy is deleted and the message says so), CopyExpired, ClockWentBack or StorageError
    (also when the attempt cannot be counted: it is then not made); each message tells the
    user what to do.
    """
    copy = _open_counted(paths, password)
    try:
        meta = copy.meta
        moment = time.time() if now is None else now
        _note_time_seen(copy, moment)
        verdict = offline_verdict(
            last_contact=meta.last_contact_local_time,
            validity_seconds=meta.validity_seconds,
            now=moment,
            high_water=meta.clock_high_water,
        )
        if verdict.problem == "clock_went_back":
            raise ClockWentBack(
                "The computer's clock is earlier than the latest time this offline copy has "
                f"seen ({_when(_latest_seen(meta))}); correct the date and time, then try "
                "again."
            )
        if verdict.problem == "expired":
            raise CopyExpired(
                "The offline copy may no longer be used: its offline validity ended "
                f"{_when(meta.valid_until)}. Connect to the server and log in online once to "
                "renew it."
            )
    except BaseException:
        copy.close()
        raise
    return copy


def _open_counted(paths: CopyPaths, password: str) -> OfflineCopy:
    """The copy opened with ``password``, the attempt counted first (see the module doc)."""
    if not paths.db.is_file():
        raise CopyNotFound.of()
    if not password:
        raise WrongPassword("No password was given; type the password of your last online login.")
    if read_attempts(paths).exhausted:
        _delete_guessed(paths)  # condemned earlier while a writer kept it: no more tries
    count = count_attempt(paths)
    try:
        copy = OfflineCopy.open(paths, password)
    except WrongPassword as exc:
        if count.exhausted:
            _delete_guessed(paths)
        raise WrongPassword(wrong_password_words(str(exc), count)) from None
    clear_failures(paths)
    return copy


def wrong_password_words(refused: str, count: AttemptCount) -> str:
    """The message of a wrong offline password: ``refused`` (what to type), and from
    :data:`WARN_WHEN_LEFT` tries left on, how many remain."""
    if count.left > WARN_WHEN_LEFT:
        return refused
    tries = "1 try" if count.left == 1 else f"{count.left} tries"
    return f"{refused} {tries} left before this offline copy is deleted."


def _delete_guessed(paths: CopyPaths) -> None:
    """Delete the copy whose tries are used up and say so (always raises WrongPassword);
    when a writer keeps the copy, the copy stays condemned and is deleted as soon as the
    next attempt (or the deletion the API queues) gets the lock."""
    limit = read_attempts(paths).limit
    try:
        with CopyLock(paths.lock, wait_s=DELETE_LOCK_WAIT_S) as lock:
            delete_copy(paths)
            lock.remove_file()
    except (CopyBusy, StorageError):
        _log.warning(
            "offline copy %s: condemned after wrong passwords, deletion deferred",
            paths.copy_id[:12],
        )
        raise WrongPassword(condemned_words(limit, deleted=False)) from None
    _log.warning("offline copy %s: deleted after wrong passwords", paths.copy_id[:12])
    raise WrongPassword(condemned_words(limit, deleted=True))


def condemned_words(limit: int, *, deleted: bool) -> str:
    """What the user is told when ``limit`` wrong passwords in a row used up the tries."""
    done = (
        "it was deleted from this computer"
        if deleted
        else "it is being deleted: another program is writing it now, and it is deleted as "
        "soon as that ends (it can no longer be opened)"
    )
    return (
        f"Wrong password {limit} times in a row, the limit your administrator set for the "
        f"offline copy, so {done}. Log in online and create the offline copy again."
    )


def _note_time_seen(copy: OfflineCopy, moment: float) -> None:
    """Raise the copy's clock high-water mark to ``moment`` (under the writer lock; when a
    writer keeps it, the writer's own server contact re-anchors the mark anyway)."""
    try:
        with CopyLock(copy.paths.lock, wait_s=HIGH_WATER_LOCK_WAIT_S):
            copy.note_time_seen(moment)
    except (CopyBusy, StorageError) as exc:
        _log.info("offline copy: the time seen was not noted (%s)", type(exc).__name__)


def _latest_seen(meta: CopyMeta) -> float | None:
    seen = [t for t in (meta.last_contact_local_time, meta.clock_high_water) if t is not None]
    return max(seen) if seen else None


def _when(moment: float | None) -> str:
    if moment is None:
        return "before it was ever synchronised"
    return "on " + datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")
