"""What one page of the change feed does to a copy: a plain decision over plain data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from offline_addon.protocol.answers import Change, PageRows, RecordData


@dataclass(frozen=True)
class PagePlan:
    """What applying one page does to the copy."""

    inserts: Sequence[RecordData]
    updates: tuple[RecordData, ...]
    deletes: tuple[str, ...]
    prepared: PageRows | None = None
    """The inserts laid out for the writer (set when they are the page's rows, in order)."""


def plan_page(
    existing: Mapping[str, int], changes: Sequence[Change], rows: PageRows | None = None
) -> PagePlan:
    """Decide a page's effect given the revisions already held (``id -> rev``).

    Changes apply in order; an upsert wins only when its rev is newer than what is held (so a
    re-delivered page changes nothing); a delete removes whatever is held. ``rows``: the
    page's :class:`PageRows`, which the plan carries when the page inserts all of them.
    """
    if rows is not None and not existing and len(changes) == len(rows):
        # Upserts of distinct ids that the copy does not hold (``rows`` holds only those):
        # each one is an insert, made from the rows only if asked for.
        return PagePlan(_Records(changes), (), (), rows)
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


class _Records(Sequence[RecordData]):
    """The records of a page of upserts, as a view (the page may keep them as rows only)."""

    __slots__ = ("_changes",)

    def __init__(self, changes: Sequence[Change]) -> None:
        self._changes = changes

    def __len__(self) -> int:
        return len(self._changes)

    @overload
    def __getitem__(self, index: int) -> RecordData: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RecordData]: ...

    def __getitem__(self, index: int | slice) -> RecordData | Sequence[RecordData]:
        if isinstance(index, slice):
            return tuple(_record_of(c) for c in self._changes[index])
        return _record_of(self._changes[index])


def _record_of(change: Change) -> RecordData:
    if change.record is None:  # a page with rows holds upserts only
        raise ValueError("not an upsert")
    return change.record
