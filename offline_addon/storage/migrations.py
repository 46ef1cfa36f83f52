"""Numbered schema migrations of an offline copy.

``PRAGMA user_version`` holds the number of migrations applied. Migration *n* (1-based) is
``MIGRATIONS[n - 1]``; each runs in its own transaction together with the version bump, so a
crash leaves the copy at a whole version. Never edit a released migration; append a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from offline_addon.errors import StorageError
from offline_addon.protocol.digest import digest_of

Connection = Any  # sqlcipher3.Connection (the module ships no type information)
Migration = Callable[[Connection], None]

# (The SQL built below from _FTS_BODY is constant text; S608 does not apply.)
# Field values go into the full-text index except the password itself: nobody searches by
# password, and keeping it out of the index keeps it in exactly one place.
_FTS_BODY = (
    "(SELECT group_concat(value, ' ') FROM json_each(new.fields) WHERE lower(key) <> 'password')"
)
RECORDS_FTS_BODY = _FTS_BODY.replace("new.fields", "records.fields")
"""The full-text index's text of a record in a ``SELECT ... FROM records``; must stay equal
to :func:`offline_addon.protocol.answers.index_text`."""


# The copy's own digest (count and sum of line hashes) in the meta table.
DIGEST_COUNT_KEY = "digest_count"
DIGEST_SUM_KEY = "digest_sum"


def _v1_records_and_meta(conn: Connection) -> None:
    conn.execute(
        "CREATE TABLE records ("
        " id TEXT PRIMARY KEY NOT NULL,"
        " rev INTEGER NOT NULL,"
        " name TEXT NOT NULL,"
        " fields TEXT NOT NULL,"  # JSON object of str -> str
        " updated_at REAL NOT NULL)"
    )
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)")


def _v2_full_text_search(conn: Connection) -> None:
    # Contentless with delete support: the text lives once (in records), the index holds only
    # tokens, and deleting by rowid removes every index entry of a record. Deletes and updates
    # keep the index right through triggers, whatever the code path; inserts are indexed by the
    # page writer in one batch per page (storage/page_writer.py), about 1.7x faster than an
    # insert trigger on a first sync.
    conn.execute(
        "CREATE VIRTUAL TABLE records_fts USING fts5("
        " name, body, content='', contentless_delete=1,"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    conn.execute(
        "CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN"
        " DELETE FROM records_fts WHERE rowid = old.rowid;"
        " END"
    )
    conn.execute(
        "CREATE TRIGGER records_fts_update AFTER UPDATE ON records BEGIN"  # noqa: S608
        " DELETE FROM records_fts WHERE rowid = old.rowid;"
        f" INSERT INTO records_fts(rowid, name, body) VALUES (new.rowid, new.name, {_FTS_BODY});"
        " END"
    )
    conn.execute(
        "INSERT INTO records_fts(rowid, name, body)"
        " SELECT rowid, name, (SELECT group_concat(value, ' ') FROM json_each(records.fields)"
        " WHERE lower(key) <> 'password') FROM records"
    )


def _v3_maintained_digest(conn: Connection) -> None:
    # The protocol digest is a sum, kept in meta and adjusted with every page (see
    # OfflineCopy.apply_page); a copy made before that gets it computed once, streaming over a
    # cursor so that memory does not grow with the copy.
    digest = digest_of(conn.execute("SELECT id, rev FROM records"))
    conn.executemany(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
        [(DIGEST_COUNT_KEY, digest.count), (DIGEST_SUM_KEY, digest.sum)],
    )


def _v4_fast_search(conn: Connection) -> None:
    # Substring search on the name ("like the server's q") through an FTS5 trigram index
    # instead of a LIKE scan over every record: the records holding every trigram of a query of
    # three or more characters are the candidates, and LIKE re-checks those, so the result is
    # exactly LIKE's. The table keeps its own copy of the names (not contentless): the re-check,
    # the sort by name and a one- or two-character scan then read this small table instead of
    # the records with all their fields, which is what makes a search with thousands of hits
    # fast. detail=none (no positions: the re-check replaces phrase matching) halves the index
    # and makes it cheaper to build during a first sync. Triggers keep it right on delete and
    # on a changed name; the page writer fills it in batches on insert, like records_fts.
    conn.execute(
        "CREATE VIRTUAL TABLE records_name_trigrams USING fts5("
        " name, detail=none, tokenize='trigram')"
    )
    conn.execute(
        "CREATE TRIGGER records_name_trigrams_delete AFTER DELETE ON records BEGIN"
        " DELETE FROM records_name_trigrams WHERE rowid = old.rowid;"
        " END"
    )
    conn.execute(
        "CREATE TRIGGER records_name_trigrams_update AFTER UPDATE OF name ON records"
        " WHEN old.name IS NOT new.name BEGIN"
        " DELETE FROM records_name_trigrams WHERE rowid = old.rowid;"
        " INSERT INTO records_name_trigrams(rowid, name) VALUES (new.rowid, new.name);"
        " END"
    )
    conn.execute("INSERT INTO records_name_trigrams(rowid, name) SELECT rowid, name FROM records")


def _v5_offline_edits(conn: Connection) -> None:
    # Offline edits (see storage/local_changes.py). The records table holds each record as the
    # user now sees it; pending_changes holds what is not on the server yet, in the order it
    # was made; conflicts holds what the server did not take, until the user dismisses it.
    # Both live only here, inside the encrypted file.
    conn.execute(
        "CREATE TABLE pending_changes ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " change_id TEXT NOT NULL UNIQUE,"  # made by the client: a resend is recognised
        " record_id TEXT NOT NULL,"
        " kind TEXT NOT NULL CHECK (kind IN ('create', 'update', 'delete')),"
        " base_rev INTEGER,"  # NULL: a create, or a change made after an unsettled one
        " base_record TEXT,"  # JSON {name, fields}: the server's record at base_rev
        " changes TEXT NOT NULL,"  # JSON {slot: [base, new]}; slot "" is the name
        " local_time REAL NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0)"
    )
    conn.execute("CREATE INDEX pending_changes_by_record ON pending_changes (record_id, seq)")
    conn.execute(
        "CREATE TABLE conflicts ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " record_id TEXT NOT NULL,"
        " record_name TEXT NOT NULL,"
        " slot TEXT,"  # the field; "" the name; NULL the whole record (a delete)
        " mine TEXT,"
        " theirs TEXT,"
        " reason TEXT NOT NULL CHECK (reason IN ('conflict', 'refused', 'deleted')),"
        " change_id TEXT NOT NULL,"
        " local_time REAL NOT NULL)"
    )


SEARCH_INDEXES = ("records_fts", "records_name_trigrams")
"""The copy's two FTS5 tables, kept in step with ``records``."""


def _v6_index_work_by_the_writers(conn: Connection) -> None:
    # The update triggers re-indexed a page's records in the feed's order, and FTS5 writes
    # its pending terms out as a new segment whenever a row id is not above the one before:
    # 100 changed records left about 100 index segments to merge (161 µs per record, and now
    # and then a sync paying for a big merge). The page writer now re-indexes a page's
    # updates itself, in rowid order, the new text from Python like an insert's
    # (storage/page_writer.update_records, which every update goes through; deletes keep
    # their triggers). FTS5's own merging after every write ("automerge") is off as well, so
    # that no small sync pays for merging a large segment; its crisis merge (16 segments on
    # one level) still bounds the segments, and a large sync optimizes the index.
    conn.execute("DROP TRIGGER IF EXISTS records_fts_update")
    conn.execute("DROP TRIGGER IF EXISTS records_name_trigrams_update")
    for table in SEARCH_INDEXES:
        conn.execute(
            f"INSERT INTO {table}({table}, rank) VALUES ('automerge', 0)"  # noqa: S608
        )


FTS_TOKENIZER = "unicode61 remove_diacritics 2"
"""How the full-text index splits and folds words; a search's words go through the same
(:func:`offline_addon.storage.search.query_terms`)."""


def _v7_index_without_positions(conn: Connection) -> None:
    # The full-text index keeps no word positions (detail=none): a search asks for words by
    # their start ("net"* AND "berlin"*), never for a phrase, so positions were a third of the
    # index's size written for nothing. Without them a first sync of 100k realistic records
    # spends about a fifth less in the index and writes 20 MB less, and a small sync's segments
    # are a third as large. (A search's words are split by SQLite's own tokenizer since, so
    # that no query term is a phrase, which such an index cannot match.) The index is rebuilt
    # once from the records (about 3 s per 100k records, at the first open after the update).
    conn.execute("DROP TABLE records_fts")
    conn.execute(
        "CREATE VIRTUAL TABLE records_fts USING fts5("
        f" name, body, content='', contentless_delete=1, detail=none, tokenize='{FTS_TOKENIZER}')"
    )
    conn.execute(
        "INSERT INTO records_fts(rowid, name, body)"  # noqa: S608 - constant text
        f" SELECT rowid, name, {RECORDS_FTS_BODY} FROM records"
    )
    conn.execute("INSERT INTO records_fts(records_fts, rank) VALUES ('automerge', 0)")


def _v8_access_log(conn: Connection) -> None:
    # The offline access log (storage/access_log.py): what the user did with the copy offline
    # (logins, records shown, fields revealed or copied: ids, field names and the local time;
    # never a value or a search term), until the server has taken it. No CHECK on the kind:
    # an entry the server would refuse is skipped by the push, never a reason to fail a write.
    conn.execute(
        "CREATE TABLE access_log ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " event_id TEXT NOT NULL UNIQUE,"  # made by the client: a resend is recognised
        " kind TEXT NOT NULL,"
        " record_id TEXT,"
        " field TEXT,"  # the field's name
        " local_time REAL NOT NULL)"
    )


CRISIS_MERGE = 64
"""Segments on one level of a full-text index at which FTS5 merges them during a write
(FTS5's default: 16)."""


def _v9_fewer_merges_during_a_write(conn: Connection) -> None:
    # A large sync writes an index segment per page and table or more; at FTS5's default
    # crisis merge (16 segments on a level) a first sync of 100k records merged them several
    # times on the way, about a tenth of its time, to be compacted into one segment after
    # its result anyway (engine.index_upkeep). Small syncs leave a segment or two each, which
    # the upkeep between syncs merges (OfflineCopy.merge_search_index), so the crisis merge
    # is only a bound for a copy whose upkeep never ran. Searches over 64 segments per level
    # stay fast (about 1 ms more at 100k records).
    for table in SEARCH_INDEXES:
        conn.execute(
            f"INSERT INTO {table}({table}, rank) VALUES ('crisismerge', ?)",  # noqa: S608
            (CRISIS_MERGE,),
        )


def _v10_words_indexed_after_small_syncs(conn: Connection) -> None:
    # A small sync's records go into the full-text index after its result, in the upkeep that
    # already merges the index's segments (page_writer.build_pending_indexes): their words
    # were about a quarter of a 100-change sync (tokenizing, the segment FTS5 writes out at
    # the next statement, the deletes of the old entries). Until then their row ids wait in
    # this table, and a search matches those records through a temporary index of their
    # current text instead of the stale entries (storage/search.py): the same results.
    conn.execute("CREATE TABLE records_fts_todo (rowid INTEGER PRIMARY KEY)")


MIGRATIONS: Sequence[Migration] = (
    _v1_records_and_meta,
    _v2_full_text_search,
    _v3_maintained_digest,
    _v4_fast_search,
    _v5_offline_edits,
    _v6_index_work_by_the_writers,
    _v7_index_without_positions,
    _v8_access_log,
    _v9_fewer_merges_during_a_write,
    _v10_words_indexed_after_small_syncs,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    """The number of migrations applied to the open copy."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target``; return the version reached.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StorageError(
            "This offline copy was made by a newer version of the Offline Add-on; "
            "update the add-on to open it."
        )
    for number in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[number - 1](conn)
            conn.execute(f"PRAGMA user_version = {number:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return max(version, target)
