"""What one page of the change feed does to a copy: a plain decision over plain data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from offline_addon.protocol.answers import Change, RecordData


@dataclass(frozen=True)
class PagePlan:
    """What applying one page does to the copy."""

    inserts: tuple[RecordData, ...]
    updates: tuple[RecordData, ...]
    deletes: tuple[str, ...]


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
            if record is None:  # ruled out by the answer schema (protocol/answers)
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
