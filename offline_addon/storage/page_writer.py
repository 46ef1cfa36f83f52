"""Writing one change page into an open copy (inside the caller's transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from offline_addon.protocol.answers import ChangePage, RecordData
from offline_addon.protocol.page_plan import PagePlan
from offline_addon.storage.search import search_text


def held_revs(db: Any, page: ChangePage) -> dict[str, int]:
    """``id -> rev`` of the page's records already in the copy."""
    if not page.changes:
        return {}
    ids = json.dumps([change.id for change in page.changes])
    rows = db.execute(
        "SELECT r.id, r.rev FROM json_each(?) AS j JOIN records AS r ON r.id = j.value",
        (ids,),
    ).fetchall()
    return dict(rows)


def write_plan(db: Any, plan: PagePlan) -> None:
    """Carry out a page's plan: deletes, updates, then inserts."""
    # Deletes and updates keep the full-text index right through triggers.
    if plan.deletes:
        db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in plan.deletes])
    if plan.updates:
        db.executemany(
            "UPDATE records SET rev = ?, name = ?, fields = ?, updated_at = ? WHERE id = ?",
            [(r.rev, r.name, r.fields_json, r.updated_at, r.id) for r in plan.updates],
        )
    if plan.inserts:
        _insert(db, plan.inserts)


def _insert(db: Any, records: Sequence[RecordData]) -> None:
    """Insert new records and index them, in one batch each (rowids assigned here so that
    the index rows can name them without reading them back)."""
    first = int(db.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]) + 1
    rowids = range(first, first + len(records))
    db.executemany(
        "INSERT INTO records(rowid, id, rev, name, fields, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (rowid, r.id, r.rev, r.name, r.fields_json, r.updated_at)
            for rowid, r in zip(rowids, records, strict=True)
        ],
    )
    db.executemany(
        "INSERT INTO records_fts(rowid, name, body) VALUES (?, ?, ?)",
        [
            (rowid, r.name, search_text(r.fields))
            for rowid, r in zip(rowids, records, strict=True)
        ],
    )
    db.executemany(
        "INSERT INTO records_name_trigrams(rowid, name) VALUES (?, ?)",
        [(rowid, r.name) for rowid, r in zip(rowids, records, strict=True)],
    )
