"""Writing one change page into an open copy (inside the caller's transaction)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from offline_addon.protocol.answers import ChangePage, RecordData
from offline_addon.protocol.page_plan import PagePlan
from offline_addon.storage.search import search_text


class Held(NamedTuple):
    """A record the copy holds, as a page's writing needs it."""

    rev: int
    rowid: int
    name: str


def held_rows(db: Any, page: ChangePage) -> dict[str, Held]:
    """The page's records already in the copy, by id (none when the copy is empty: a first
    sync's first page is not looked up)."""
    if not page.changes or _last_rowid(db) == 0:
        return {}
    return _held(db, [change.id for change in page.changes])


def _held(db: Any, ids: Sequence[str]) -> dict[str, Held]:
    rows = db.execute(
        "SELECT r.id, r.rev, r.rowid, r.name FROM json_each(?) AS j"
        " JOIN records AS r ON r.id = j.value",
        (json.dumps(list(ids)),),
    ).fetchall()
    return {row[0]: Held(*row[1:]) for row in rows}


def write_plan(db: Any, plan: PagePlan, held: Mapping[str, Held] | None = None) -> None:
    """Carry out a page's plan: deletes, updates, then inserts (``held``: the records of the
    plan the copy holds, from :func:`held_rows`; looked up here when not given)."""
    # Deletes keep the search indexes right through triggers. Updates keep them here (the
    # update triggers were dropped in migration 6): FTS5 writes its pending terms out as a new
    # index segment whenever a row id is not above the one before, so re-indexing in the
    # feed's order (random row ids, as the trigger of an UPDATE by id did) left about one
    # segment per updated record to merge; in rowid order a page leaves one.
    if plan.deletes:
        db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in plan.deletes])
    if plan.updates:
        update_records(db, plan.updates, held)
    if plan.inserts:
        _insert(db, plan.inserts)


def update_records(
    db: Any, records: Sequence[RecordData], held: Mapping[str, Held] | None = None
) -> None:
    """Replace held records (by id) and their entries in both search indexes; the only way
    to change a record's name or fields (no trigger keeps the indexes right on an update)."""
    if held is None:
        held = _held(db, [r.id for r in records])
    rows = sorted(((held[r.id], r) for r in records), key=lambda pair: pair[0].rowid)
    renamed = [(old.rowid, r.name) for old, r in rows if old.name != r.name]
    db.executemany("DELETE FROM records_fts WHERE rowid = ?", [(old.rowid,) for old, _ in rows])
    if renamed:
        db.executemany(
            "DELETE FROM records_name_trigrams WHERE rowid = ?", [(rowid,) for rowid, _ in renamed]
        )
    db.executemany(
        "UPDATE records SET rev = ?, name = ?, fields = ?, updated_at = ? WHERE rowid = ?",
        [(r.rev, r.name, r.fields_json, r.updated_at, old.rowid) for old, r in rows],
    )
    db.executemany(
        "INSERT INTO records_fts(rowid, name, body) VALUES (?, ?, ?)",
        [(old.rowid, r.name, search_text(r)) for old, r in rows],
    )
    if renamed:
        db.executemany("INSERT INTO records_name_trigrams(rowid, name) VALUES (?, ?)", renamed)


def _last_rowid(db: Any) -> int:
    return int(db.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0])


def _insert(db: Any, records: Sequence[RecordData]) -> None:
    """Insert new records and index them, in one batch each (rowids assigned here so that
    the index rows can name them without reading them back)."""
    first = _last_rowid(db) + 1
    rowids = range(first, first + len(records))
    db.executemany(
        "INSERT INTO records(rowid, id, rev, name, fields, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (rowid, r.id, r.rev, r.name, r.fields_json, r.updated_at)
            for rowid, r in zip(rowids, records, strict=True)
        ],
    )
    db.executemany(
        "INSERT INTO records_fts(rowid, name, body) VALUES (?, ?, ?)",
        [(rowid, r.name, search_text(r)) for rowid, r in zip(rowids, records, strict=True)],
    )
    db.executemany(
        "INSERT INTO records_name_trigrams(rowid, name) VALUES (?, ?)",
        [(rowid, r.name) for rowid, r in zip(rowids, records, strict=True)],
    )
