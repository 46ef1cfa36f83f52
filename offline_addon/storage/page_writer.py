"""Writing one change page into an open copy (inside the caller's transaction)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from offline_addon.protocol.answers import (
    RECORD_COLUMNS,
    ChangePage,
    PageRows,
    RecordData,
    search_text,
)
from offline_addon.protocol.page_plan import PagePlan
from offline_addon.protocol.page_rows import lay_out
from offline_addon.storage.migrations import RECORDS_FTS_BODY


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
    return _held(db, page.ids())


def _held(db: Any, ids: Sequence[str]) -> dict[str, Held]:
    rows = db.execute(
        "SELECT r.id, r.rev, r.rowid, r.name FROM json_each(?) AS j"
        " JOIN records AS r ON r.id = j.value",
        (json.dumps(list(ids)),),
    ).fetchall()
    return {row[0]: Held(*row[1:]) for row in rows}


def write_plan(
    db: Any,
    plan: PagePlan,
    held: Mapping[str, Held] | None = None,
    *,
    words_later: bool = False,
) -> None:
    """Carry out a page's plan: deletes, updates, then inserts (``held``: the records of the
    plan the copy holds, from :func:`held_rows`; looked up here when not given).
    ``words_later``: a sync's page, whose records (if few) go into the full-text index in the
    upkeep after the sync's result (:func:`words_wait`)."""
    # Deletes keep the search indexes right through triggers. Updates keep them here (the
    # update triggers were dropped in migration 6): FTS5 writes its pending terms out as a new
    # index segment whenever a row id is not above the one before, so re-indexing in the
    # feed's order (random row ids, as the trigger of an UPDATE by id did) left about one
    # segment per updated record to merge; in rowid order a page leaves one.
    if plan.deletes:
        db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in plan.deletes])
    later = words_later and words_wait(db, len(plan.updates) + len(plan.inserts))
    if plan.updates:
        update_records(db, plan.updates, held, words_later=later)
    if plan.inserts:
        _insert(db, plan.inserts, plan.prepared, words_later=later)


def update_records(
    db: Any,
    records: Sequence[RecordData],
    held: Mapping[str, Held] | None = None,
    *,
    words_later: bool = False,
) -> None:
    """Replace held records (by id) and their entries in both search indexes; the only way
    to change a record's name or fields (no trigger keeps the indexes right on an update).
    ``words_later``: their full-text entries are left to the upkeep (:func:`words_wait`)."""
    if held is None:
        held = _held(db, [r.id for r in records])
    rows = sorted(((held[r.id], r) for r in records), key=lambda pair: pair[0].rowid)
    renamed = [(old.rowid, r.name) for old, r in rows if old.name != r.name]
    pending = pending_indexes(db)
    if words_later and not pending.text:
        _words_later(db, [old.rowid for old, _ in rows])
        pending = pending._replace(text=True)
    if not pending.text:
        db.executemany("DELETE FROM records_fts WHERE rowid = ?", [(old.rowid,) for old, _ in rows])
    if renamed and not pending.names:
        db.executemany(
            "DELETE FROM records_name_trigrams WHERE rowid = ?", [(rowid,) for rowid, _ in renamed]
        )
    db.executemany(
        "UPDATE records SET rev = ?, name = ?, fields = ?, updated_at = ? WHERE rowid = ?",
        [(r.rev, r.name, r.fields_json, r.updated_at, old.rowid) for old, r in rows],
    )
    if not pending.text:
        db.executemany(
            "INSERT INTO records_fts(rowid, name, body) VALUES (?, ?, ?)",
            [(old.rowid, r.name, search_text(r)) for old, r in rows],
        )
    if renamed and not pending.names:
        db.executemany("INSERT INTO records_name_trigrams(rowid, name) VALUES (?, ?)", renamed)


NAMES_PENDING_KEY = "name_index_pending"
"""Meta key: set while the name index (``records_name_trigrams``) is not built; searches then
find names by a scan of ``records`` (:func:`offline_addon.storage.search.search_sql`)."""
TEXT_PENDING_KEY = "text_index_pending"
"""Meta key: set while the full-text index (``records_fts``) is not built; searches then match
words by a scan of the records' text, a close superset (:func:`offline_addon.storage.search.
search_sql`), and the copy says so (``OfflineCopy.search_pending``)."""
DEFER_INDEXES_FROM = 1000
"""A page of at least this many new records into an empty copy (a first sync, a rebuild)
leaves both search indexes to be built once after the sync (:func:`build_pending_indexes`)."""


WORDS_LATER_UP_TO = 1000
"""At most this many records wait for their full-text entries (``records_fts_todo``): a sync
page that would leave more indexes its records at once, as a large sync's pages always did
(FTS5 is fastest at many rows per statement, and a search then has few to look at apart)."""


class Pending(NamedTuple):
    """Which search indexes wait to be built, and whether records wait for their words."""

    names: bool
    text: bool
    words: bool = False
    """Some records wait for their full-text entries (``records_fts_todo``; the index
    itself is built): a search matches them apart (:func:`offline_addon.storage.search.
    search_sql`), the same results."""

    def __bool__(self) -> bool:
        return self.names or self.text or self.words

    @property
    def whole(self) -> bool:
        """A whole index waits (after a first sync): searches scan the records meanwhile."""
        return self.names or self.text


def pending_indexes(db: Any) -> Pending:
    """Which search indexes wait to be built, and whether records wait for their words (one
    read of the meta table, one probe of ``records_fts_todo``)."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM meta WHERE key = ?), (SELECT count(*) FROM meta"
        " WHERE key = ?), EXISTS (SELECT 1 FROM records_fts_todo)",
        (NAMES_PENDING_KEY, TEXT_PENDING_KEY),
    ).fetchone()
    return Pending(bool(row[0]), bool(row[1]), bool(row[2]) and not row[1])


def words_wait(db: Any, records: int) -> bool:
    """Whether a sync's page of ``records`` new or changed records leaves their full-text
    entries to the upkeep after the sync's result: when the index is built and at most
    :data:`WORDS_LATER_UP_TO` records would then wait. Their words were about a quarter of
    a small sync's time (tokenizing them, deleting the old entries, the index segment FTS5
    writes out); the upkeep already runs after every sync that changed records."""
    if not 0 < records <= WORDS_LATER_UP_TO:
        return False
    waiting = int(db.execute("SELECT count(*) FROM records_fts_todo").fetchone()[0])
    return waiting + records <= WORDS_LATER_UP_TO


def _words_later(db: Any, rowids: Sequence[int]) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO records_fts_todo(rowid) VALUES (?)", [(r,) for r in rowids]
    )


def index_waiting_words(db: Any) -> None:
    """Put the records that wait for their words (``records_fts_todo``) into the full-text
    index, in rowid order, and empty the table (inside the caller's transaction)."""
    rowids = [(row[0],) for row in db.execute("SELECT rowid FROM records_fts_todo")]
    if not rowids:
        return
    db.executemany("DELETE FROM records_fts WHERE rowid = ?", rowids)
    db.execute(
        "INSERT INTO records_fts(rowid, name, body)"  # noqa: S608 - constant text
        f" SELECT rowid, name, {RECORDS_FTS_BODY} FROM records"
        " WHERE rowid IN (SELECT rowid FROM records_fts_todo) ORDER BY rowid"
    )
    db.execute("DELETE FROM records_fts_todo")


BUILD_CHUNK = 5000
"""Records per statement of an index build. What SQLite holds beside its page cache while a
statement runs grows with the statement (about 0.3 MB per 1000 records, measured): a build
of 100k records in one statement peaked 7.5 MB higher than in statements of 5000, and took
as long."""


def build_pending_indexes(db: Any) -> bool:
    """Build the search indexes that wait to be, from the records (inside the caller's
    transaction, so that a kill leaves them waiting or built, never half); returns whether
    it did. About 3 s per 100k records (2 s the words, 0.4 s the names), after the sync's
    result. A few statements of :data:`BUILD_CHUNK` records each: SQLite runs them without
    the GIL, so the host's threads do not wait for them."""
    pending = pending_indexes(db)
    if not pending:
        return False
    if pending.words:
        index_waiting_words(db)
    if not pending.whole:
        return True
    last = _last_rowid(db)
    if pending.names:
        db.execute("DELETE FROM records_name_trigrams")
        _by_chunks(db, last, "records_name_trigrams(rowid, name)", "name")
    if pending.text:
        db.execute("INSERT INTO records_fts(records_fts) VALUES ('delete-all')")
        _by_chunks(db, last, "records_fts(rowid, name, body)", f"name, {RECORDS_FTS_BODY}")
        db.execute("DELETE FROM records_fts_todo")  # all indexed now
    db.execute("DELETE FROM meta WHERE key IN (?, ?)", (NAMES_PENDING_KEY, TEXT_PENDING_KEY))
    return True


def _by_chunks(db: Any, last: int, into: str, columns: str) -> None:
    sql = (
        f"INSERT INTO {into} SELECT rowid, {columns} FROM records"  # noqa: S608 - constant text
        " WHERE rowid > ? AND rowid <= ?"
    )
    for start in range(0, last, BUILD_CHUNK):
        db.execute(sql, (start, start + BUILD_CHUNK))


def _last_rowid(db: Any) -> int:
    return int(db.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0])


_RECORDS_INTO = f"records(rowid, {', '.join(RECORD_COLUMNS)})"


def _insert(
    db: Any, records: Sequence[RecordData], prepared: PageRows | None, *, words_later: bool
) -> None:
    """Insert new records and index them, a few statements each (rowids assigned here, so
    that the index rows name them without reading them back); ``prepared``: the records laid
    out already (on the prefetch thread), else laid out here; ``words_later``: their
    full-text entries are left to the upkeep (:func:`words_wait`)."""
    rows = prepared if prepared is not None else lay_out(records)
    first = _last_rowid(db) + 1
    pending = pending_indexes(db)
    if first == 1 and not pending.whole and len(records) >= DEFER_INDEXES_FROM:
        # A first sync: its search indexes (about half its time, the words of every record
        # and a trigram per letter of every name) are built once after its result, in one
        # statement each; searches scan the records meanwhile.
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, 1), (?, 1)",
            (NAMES_PENDING_KEY, TEXT_PENDING_KEY),
        )
        pending = Pending(names=True, text=True)
    elif words_later and not pending.text:
        _words_later(db, range(first, first + len(records)))
        pending = pending._replace(text=True)
    insert_rows(db, _RECORDS_INTO, first, rows.records)
    if not pending.text:
        insert_rows(db, "records_fts(rowid, name, body)", first, rows.index)
    if not pending.names:
        insert_rows(db, "records_name_trigrams(rowid, name)", first, rows.names)


MAX_VARIABLES = 32766
"""SQLite's limit on the variables of one statement (``SQLITE_MAX_VARIABLE_NUMBER``)."""


def insert_rows(db: Any, into: str, first: int, flat: Sequence[object]) -> None:
    """Insert rows of ``into``'s columns (the first the rowid) from ``flat`` (the values of
    the other columns, row after row), with rowids from ``first`` on, in as few statements as
    SQLite's variable limit allows (one per page of 2500).

    SQLite releases the GIL while it runs a statement and takes it back after; ``executemany``
    takes it back after every row, and while the prefetch thread runs Python each time waits
    up to the interpreter's switch interval (5 ms): the writing thread, the first sync's
    bottleneck, stood still for much of it. One statement per page and table leaves the
    fetching, decoding and validating of the next page to run beside the writing of this one
    (the cached statement keeps the last page's values bound until its next use)."""
    width = into.count(",")  # columns after the rowid
    count = len(flat) // width
    per_statement = MAX_VARIABLES // (width + 1)
    for start in range(0, count, per_statement):
        rows = min(per_statement, count - start)
        db.execute(
            _insert_sql(into, width, rows),
            [first + start, *flat[start * width : (start + rows) * width]],
        )


@functools.lru_cache(maxsize=32)
def _insert_sql(into: str, width: int, rows: int) -> str:
    """``INSERT INTO into VALUES (?1, ?, ...), (?1 + 1, ?, ...), ...``: ``?1`` is the first
    row's rowid, the others follow it."""
    values = ", ?" * width
    tuples = [f"(?1{f' + {n}' if n else ''}{values})" for n in range(rows)]
    return f"INSERT INTO {into} VALUES " + ", ".join(tuples)  # noqa: S608 - constant text
