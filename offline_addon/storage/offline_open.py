"""Opening a copy for an offline login, with the validity and clock checks.

The validity counts on the local clock from the moment of the last successful server contact
(stored inside the encrypted copy, so it cannot be edited without the password): the server's
time of that contact is stored too, but offline the local clock is the only one there is, and
comparing local with local makes a steadily wrong clock harmless. A clock set back before that
contact (beyond a small tolerance) is refused, or validity could be stretched forever; so is a
clock set back before the latest time the copy has seen since (its clock high-water mark,
raised by every open that got past the password, also a refused one).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from offline_addon.errors import ClockWentBack, CopyBusy, CopyExpired, StorageError
from offline_addon.protocol.validity import offline_verdict
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.offline_copy import CopyMeta, OfflineCopy
from offline_addon.storage.paths import CopyPaths

_log = logging.getLogger(__name__)

HIGH_WATER_LOCK_WAIT_S = 1.0
"""How long an offline open waits for a writer to note the time it has seen."""


def open_offline(paths: CopyPaths, password: str, now: float | None = None) -> OfflineCopy:
    """Open the copy for reading offline.

    Raises CopyNotFound, WrongPassword (file untouched), CopyExpired, ClockWentBack or
    StorageError; each message tells the user what to do.
    """
    copy = OfflineCopy.open(paths, password)
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
