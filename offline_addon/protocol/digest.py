"""The protocol's digest of what a user should hold: the count and the sum (mod 2**256) of
SHA-256 over each ``id:rev`` line, order-independent, so that it can be maintained page by page
on both sides (see ``docs/sync-protocol.md``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from offline_addon.protocol.answers import Digest
from offline_addon.protocol.page_plan import PagePlan

DIGEST_MODULUS = 1 << 256


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
    if plan.prepared is not None:
        total += plan.prepared.line_sum
    else:
        for record in plan.inserts:
            total += line_hash(record.id, record.rev)
    for record in plan.updates:
        total += line_hash(record.id, record.rev) - line_hash(record.id, existing[record.id])
    for record_id in plan.deletes:
        total -= line_hash(record_id, existing[record_id])
    return make_digest(before.count + len(plan.inserts) - len(plan.deletes), total)
