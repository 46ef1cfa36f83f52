"""May a copy be opened offline at a given time: the validity and the clock checks, over plain
data (the caller reads the clock)."""

from __future__ import annotations

from dataclasses import dataclass

# How far the clock may go back (e.g. NTP steps, a manual correction) before the copy refuses.
CLOCK_TOLERANCE_SECONDS = 300.0


@dataclass(frozen=True)
class OfflineVerdict:
    """Whether a copy may be opened offline now, and if not, why (``"expired"``,
    ``"clock_went_back"``)."""

    allowed: bool
    problem: str | None = None


def offline_verdict(
    *,
    last_contact: float | None,
    validity_seconds: int | None,
    now: float,
    high_water: float | None = None,
) -> OfflineVerdict:
    """May a copy whose last server contact was at local time ``last_contact`` open at ``now``?

    Validity counts on the local clock from the moment of the last successful contact (the
    only clock available offline). A clock earlier by more than
    :data:`CLOCK_TOLERANCE_SECONDS` than that contact, or than ``high_water`` (the latest
    local time the copy has seen since: every open, also a refused one), is refused, since
    otherwise setting the clock back would stretch the validity forever: an open at T+8 days
    is refused as expired, and setting the clock back to T+1 day then is refused too.
    """
    if last_contact is None or validity_seconds is None:
        return OfflineVerdict(False, "expired")
    latest_seen = last_contact if high_water is None else max(last_contact, high_water)
    if now < latest_seen - CLOCK_TOLERANCE_SECONDS:
        return OfflineVerdict(False, "clock_went_back")
    if now - last_contact > validity_seconds:
        return OfflineVerdict(False, "expired")
    return OfflineVerdict(True)
