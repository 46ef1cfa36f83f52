"""Laying a feed page's new records out for the copy's batched inserts, on the thread that
fetched and validated the page, so that the thread writing the copy only binds them."""

from __future__ import annotations

import dataclasses

from offline_addon.protocol.answers import ChangePage, PageRows, index_text
from offline_addon.protocol.digest import line_hash


def with_rows(page: ChangePage) -> ChangePage:
    """``page`` with its :class:`PageRows` when every change is an upsert of a distinct id
    (a first sync's pages, and most others); unchanged otherwise."""
    records: list[object] = []
    index: list[str] = []
    names: list[str] = []
    line_sum = 0
    for change in page.changes:
        record = change.record
        if record is None:
            return page
        records += (record.id, record.rev, record.name, record.fields_json, record.updated_at)
        body = record.index_text
        index += (record.name, index_text(record.fields) if body is None else body)
        names.append(record.name)
        line_sum += line_hash(record.id, record.rev)
    if not names or len({change.id for change in page.changes}) != len(names):
        return page
    return dataclasses.replace(page, rows=PageRows(records, index, names, line_sum))
