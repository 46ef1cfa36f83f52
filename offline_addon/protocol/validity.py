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


DAY_S = 86400.0
LAST_HOUR_S = 3600.0


def expiry_warning_s(validity_seconds: float) -> float:
    """How long before its validity ends a copy starts to warn: a day or a fifth of the
    validity, whichever is larger (so whichever comes first), but never more than half the
    validity, or a copy valid for a day or less would warn the moment it was renewed.
    The default week warns for its last 33.6 hours; 30 days for the last 6 days; 8 hours for
    the last 4 hours."""
    return min(max(DAY_S, validity_seconds / 5), validity_seconds / 2)


def expiry_stage(left_s: float, validity_seconds: float) -> int:
    """How near the end a copy is: 0 not near (or already over: the refusal says that),
    1 inside the warning time (:func:`expiry_warning_s`), 2 inside the last hour (only when
    the warning time is longer than two hours, so the two warnings are not told together).
    Each stage is notified once."""
    if left_s <= 0 or validity_seconds <= 0:
        return 0
    warn = expiry_warning_s(validity_seconds)
    if left_s >= warn:
        return 0
    if warn > 2 * LAST_HOUR_S and left_s < LAST_HOUR_S:
        return 2
    return 1


def next_stage_at(valid_until: float, validity_seconds: float, now: float) -> float | None:
    """The time at which the next warning stage after ``now`` begins (None: no more)."""
    warn = expiry_warning_s(validity_seconds)
    starts = [valid_until - warn]
    if warn > 2 * LAST_HOUR_S:
        starts.append(valid_until - LAST_HOUR_S)
    later = [t for t in starts if t > now and t < valid_until]
    return min(later) if later else None
