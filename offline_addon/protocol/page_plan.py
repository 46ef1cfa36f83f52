"""Plain decisions of the sync engine, over plain data (no I/O, no clock).

What does a page change (to the records and to the copy's digest), and may a copy be opened
offline at a given time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from offline_addon.protocol.answers import Change, Digest, RecordData

DIGEST_MODULUS = 1 << 256
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


def line_hash(record_id: str, rev: int) -> int:
    """The protocol's hash of one held record: SHA-256 of ``"id:rev"`` as an integer."""
    line = f"{record_id}:{rev}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(line).digest(), "big")


def digest_of(pairs: Iterable[tuple[str, int]]) -> Digest:
    """The protocol's digest over ``(id, rev)`` pairs, from scratch and streaming (constant
    memory): the count and the sum of the line hashes mod 2**256."""
    count = total = 0
    for record_id, rev in pairs:
        count += 1
        total += line_hash(record_id, rev)
    return make_digest(count, total)


def make_digest(count: int, total: int) -> Digest:
    """A :class:`Digest` from a count and an (unreduced) sum."""
    return Digest(count, f"{total % DIGEST_MODULUS:064x}")


def digest_after(before: Digest, existing: Mapping[str, int], plan: PagePlan) -> Digest:
    """The copy's digest after applying ``plan`` to a copy holding ``before``, where
    ``existing`` maps the page's already-held ids to their revs (O(changes), not O(copy)).

    An update or delete takes the old line out of the sum; an insert or update adds the new
    one. A delete of a record the copy does not hold is not in the plan, so changes nothing.
    """
    total = int(before.sum, 16)
    for record in plan.inserts:
        total += line_hash(record.id, record.rev)
    for record in plan.updates:
        total += line_hash(record.id, record.rev) - line_hash(record.id, existing[record.id])
    for record_id in plan.deletes:
        total -= line_hash(record_id, existing[record_id])
    return make_digest(before.count + len(plan.inserts) - len(plan.deletes), total)


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
