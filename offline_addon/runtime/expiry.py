"""Expiry never surprises: which warnings about a copy's end of validity were told already.

A copy near the end of its offline validity (see ``protocol.validity.expiry_stage``) is
notified once per stage and server contact, from the offline login and from the host's
timer while online (when syncs fail for long enough), never on every tick. A renewal (a new
last contact) starts afresh. In memory, per process.
"""

from __future__ import annotations

import threading

from offline_addon.protocol.validity import expiry_stage, next_stage_at


class ExpiryNotices:
    """The expiry warnings told per copy: ``(last contact, stage)``; safe from any thread."""

    def __init__(self) -> None:
        self._told: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def due(
        self, copy_id: str, last_contact: float | None, valid_until: float | None, now: float
    ) -> float | None:
        """Seconds of validity left when a warning is to be told now (and it is marked told),
        else None: not near the end, already told at this stage, or unknown validity."""
        if last_contact is None or valid_until is None:
            return None
        left = valid_until - now
        stage = expiry_stage(left, valid_until - last_contact)
        if stage == 0:
            return None
        with self._lock:
            told = self._told.get(copy_id)
            if told is not None and told[0] == last_contact and told[1] >= stage:
                return None
            self._told[copy_id] = (last_contact, stage)
        return left


def next_check_at(last_contact: float | None, valid_until: float | None, now: float) -> float:
    """When (wall clock) the copy's next warning stage after ``now`` begins; ``inf`` when
    none will (unknown validity, or past the last stage)."""
    if last_contact is None or valid_until is None:
        return float("inf")
    later = next_stage_at(valid_until, valid_until - last_contact, now)
    return float("inf") if later is None else later
