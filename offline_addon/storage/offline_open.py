"""Opening a copy for an offline login, with the validity and clock checks.

The validity counts on the local clock from the moment of the last successful server contact
(stored inside the encrypted copy, so it cannot be edited without the password): the server's
time of that contact is stored too, but offline the local clock is the only one there is, and
comparing local with local makes a steadily wrong clock harmless. A clock set back before that
contact (beyond a small tolerance) is refused, or validity could be stretched forever.
"""

from __future__ import annotations

import time
from datetime import datetime

from offline_addon.errors import ClockWentBack, CopyExpired
from offline_addon.protocol.validity import offline_verdict
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths


def open_offline(paths: CopyPaths, password: str, now: float | None = None) -> OfflineCopy:
    """Open the copy for reading offline.

    Raises CopyNotFound, WrongPassword (file untouched), CopyExpired, ClockWentBack or
    StorageError; each message tells the user what to do.
    """
    copy = OfflineCopy.open(paths, password)
    try:
        meta = copy.meta
        moment = time.time() if now is None else now
        verdict = offline_verdict(
            last_contact=meta.last_contact_local_time,
            validity_seconds=meta.validity_seconds,
            now=moment,
        )
        if verdict.problem == "clock_went_back":
            raise ClockWentBack(
                "The computer's clock is earlier than the last contact with the server "
                f"({_when(meta.last_contact_local_time)}); correct the date and time, then "
                "try again."
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


def _when(moment: float | None) -> str:
    if moment is None:
        return "before it was ever synchronised"
    return "on " + datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")
