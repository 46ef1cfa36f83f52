"""Laying a feed page's new records out for the copy's batched inserts, on the thread that
fetched and validated the page, so that the thread writing the copy only binds them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from offline_addon.protocol.answers import ChangePage, PageRows, RecordData, search_text
from offline_addon.protocol.digest import line_hash


def with_rows(page: ChangePage) -> ChangePage:
    """``page`` with its :class:`PageRows` when every change is an upsert of a distinct id
    (a first sync's pages, and most others); unchanged otherwise."""
    records = [change.record for change in page.changes]
    if not records or len({change.id for change in page.changes}) != len(records):
        return page
    if any(record is None for record in records):
        return page
    return dataclasses.replace(page, rows=lay_out([r for r in records if r is not None]))


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
