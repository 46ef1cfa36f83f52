"""Laying a feed page's new records out for the copy's batched inserts, on the thread that
fetched and validated the page, so that the thread writing the copy only binds them.

A large page then keeps its rows only: its changes become a view of them
(:class:`RowChanges`), which makes a change when one is asked for. The validated records (a
dict of fields beside their stored text, per record) would hold about as much again as the
rows, and a first sync holds two pages at once (``sync/prefetch``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import cast, overload

from offline_addon.protocol.answers import (
    RECORD_COLUMNS,
    Change,
    ChangePage,
    PageRows,
    RecordData,
    search_text,
)
from offline_addon.protocol.digest import line_hash

LEAN_FROM = 1000
"""A page of at least this many new records keeps its rows only (:class:`RowChanges`); the
smaller pages of an ordinary sync keep their validated changes, which the writer then uses."""

_WIDTH = len(RECORD_COLUMNS)


def with_rows(page: ChangePage) -> ChangePage:
    """``page`` with its :class:`PageRows` when every change is an upsert of a distinct id
    (a first sync's pages, and most others); unchanged otherwise. From :data:`LEAN_FROM`
    records on, the page's changes become a view of its rows."""
    records = [change.record for change in page.changes]
    if not records or len({change.id for change in page.changes}) != len(records):
        return page
    if any(record is None for record in records):
        return page
    rows = lay_out([r for r in records if r is not None])
    if len(rows) < LEAN_FROM:
        return dataclasses.replace(page, rows=rows)
    return dataclasses.replace(page, changes=RowChanges(rows), rows=rows)


def lay_out(records: Sequence[RecordData]) -> PageRows:
    """``records`` as :class:`PageRows`, in their order."""
    values: list[object] = []
    index: list[str] = []
    line_sum = 0
    for r in records:
        values += (r.id, r.rev, r.name, r.fields_json, r.updated_at)  # RECORD_COLUMNS
        index += (r.name, search_text(r))
        line_sum += line_hash(r.id, r.rev)
    return PageRows(values, index, [r.name for r in records], line_sum)


class RowChanges(Sequence[Change]):
    """The upserts of a page of distinct new records, kept as the page's :class:`PageRows`:
    each :class:`Change` (and its record, fields decoded again from the stored text) is made
    when asked for, and is equal to the one validated from the feed."""

    __slots__ = ("rows",)

    def __init__(self, rows: PageRows) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        if isinstance(index, slice):
            return tuple(self._change(i) for i in range(len(self))[index])
        if not -len(self) <= index < len(self):
            raise IndexError("change index out of range")
        return self._change(index % len(self))

    def __iter__(self) -> Iterator[Change]:
        return (self._change(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"RowChanges({len(self)} upserts)"

    def _change(self, i: int) -> Change:
        rid, rev, name, fields_json, updated_at = cast(
            tuple[str, int, str, str, float],
            tuple(self.rows.records[i * _WIDTH : (i + 1) * _WIDTH]),
        )
        index_text = self.rows.index[2 * i + 1]
        fields = json.loads(fields_json)
        record = RecordData(rid, rev, name, fields, updated_at, fields_json, index_text)
        return Change("upsert", rid, rev, record)
