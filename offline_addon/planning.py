"""Plain decisions of the sync engine, over plain data (no I/O, no clock).

What does a page change, does the copy match the server's digest, when is the full digest
worth computing, and may a copy be opened offline at a given time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from offline_addon.wire import Change, Digest, RecordData

# Below this size the full digest costs a few milliseconds, so it is checked on every sync.
DIGEST_ALWAYS_BELOW = 20_000
# Above it, a full check runs on full syncs and at least this often (seconds); in between only
# the record count is compared, which keeps a small incremental sync of a big copy fast.
DIGEST_FULL_CHECK_INTERVAL = 6 * 3600.0
# How far the clock may go back (e.g. NTP steps, a manual correction) before the copy refuses.
CLOCK_TOLERANCE_SECONDS = 300.0


@dataclass(frozen=True)
class PagePlan:
    """What applying one page does to the copy."""

    inserts: tuple[RecordData, ...]
    updates: tuple[RecordData, ...]
    deletes: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """Nothing to write (except the cursor)."""
        return not (self.inserts or self.updates or self.deletes)


def plan_page(existing: Mapping[str, int], changes: Sequence[Change]) -> PagePlan:
    """Decide a page's effect given the revisions already held (``id -> rev``).

    Changes apply in order; an upsert wins only when its rev is newer than what is held (so a
    re-delivered page changes nothing); a delete removes whatever is held.
    """
    held: dict[str, int] = dict(existing)
    final: dict[str, RecordData | None] = {}
    for change in changes:
        if change.op == "upsert":
            record = change.record
            if record is None:  # ruled out by the wire schema
                continue
            current = held.get(change.id)
            if current is not None and current >= record.rev:
                continue
            held[change.id] = record.rev
            final[change.id] = record
        else:
            held.pop(change.id, None)
            final[change.id] = None
    inserts: list[RecordData] = []
    updates: list[RecordData] = []
    deletes: list[str] = []
    for record_id, outcome in final.items():
        if outcome is None:
            if record_id in existing:
                deletes.append(record_id)
        elif record_id in existing:
            updates.append(outcome)
        else:
            inserts.append(outcome)
    return PagePlan(tuple(inserts), tuple(updates), tuple(deletes))


def digest_of(pairs: Iterable[tuple[str, int]]) -> Digest:
    """The protocol's digest over ``(id, rev)`` pairs: count and SHA-256 of sorted lines."""
    lines = sorted(f"{record_id}:{rev}" for record_id, rev in pairs)
    return Digest(len(lines), hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest())


def should_check_full_digest(
    *, full_sync: bool, record_count: int, last_full_check: float | None, now: float
) -> bool:
    """Whether this sync compares the SHA-256 (the count is compared on every sync)."""
    if full_sync or record_count < DIGEST_ALWAYS_BELOW or last_full_check is None:
        return True
    return not 0 <= now - last_full_check < DIGEST_FULL_CHECK_INTERVAL


@dataclass(frozen=True)
class OfflineVerdict:
    """Whether a copy may be opened offline now, and if not, why (``"expired"``,
    ``"clock_went_back"``)."""

    allowed: bool
    problem: str | None = None


def offline_verdict(
    *, last_contact: float | None, validity_seconds: int | None, now: float
) -> OfflineVerdict:
    """May a copy whose last server contact was at local time ``last_contact`` open at ``now``?

    Validity counts on the local clock from the moment of the last successful contact (the
    only clock available offline); a clock earlier than that contact by more than
    :data:`CLOCK_TOLERANCE_SECONDS` is refused, since otherwise setting the clock back would
    stretch the validity forever.
    """
    if last_contact is None or validity_seconds is None:
        return OfflineVerdict(False, "expired")
    if now < last_contact - CLOCK_TOLERANCE_SECONDS:
        return OfflineVerdict(False, "clock_went_back")
    if now - last_contact > validity_seconds:
        return OfflineVerdict(False, "expired")
    return OfflineVerdict(True)
