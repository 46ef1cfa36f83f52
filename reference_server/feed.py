"""The per-user change feed: writing rows inside a change's transaction, reading pages.

Rule: a user's feed holds an ``upsert`` row exactly for the records that user may export now
(read + export right, not sealed, not deleted); a record that leaves that set gets a ``delete``
row with the reason. Every function that writes here must run inside the caller's
``BEGIN IMMEDIATE`` transaction, so a change and its feed rows commit together. Feed rows are
written only by :func:`_write_row` and :func:`add_upserts`, which also keep the user's digest
(``digests``) up to date; compaction drops only delete rows, which the digest does not count,
and deleting a user or a database drops its rows and digests together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reference_server import digests

_encode_str = json.encoder.encode_basestring_ascii


@dataclass(frozen=True)
class FeedPage:
    """One page of a user's feed: the JSON text of its changes, and where it ends."""

    changes_json: str
    last_seq: int
    remaining: int


def refresh_record(
    conn: sqlite3.Connection, db: str, record_id: str, now: float, *, deleted: bool = False
) -> None:
    """Bring every affected user's feed row for one record up to date (inside a transaction).

    Affected users are those with a rights row or a feed row for the record. Call *after* the
    change to ``records``/``rights`` and, for a delete, *before* removing the record's rows
    with ``deleted=True``.
    """
    record = conn.execute(
        "SELECT rev, sealed FROM records WHERE db = ? AND id = ?", (db, record_id)
    ).fetchone()
    rows = conn.execute(
        """
        SELECT u.user_id, g.can_read, g.can_export, f.op, f.rev FROM (
            SELECT user_id FROM rights WHERE db = :db AND record_id = :id
            UNION SELECT user_id FROM feed WHERE db = :db AND record_id = :id) u
        LEFT JOIN rights g ON g.db = :db AND g.record_id = :id AND g.user_id = u.user_id
        LEFT JOIN feed f ON f.db = :db AND f.record_id = :id AND f.user_id = u.user_id
        """,
        {"db": db, "id": record_id},
    ).fetchall()
    for user_id, can_read, can_export, op, feed_rev in rows:
        if record is None or deleted:
            exportable, reason = False, "deleted"
        elif record[1]:
            exportable, reason = False, "sealed"
        else:
            exportable, reason = bool(can_read and can_export), "revoked"
        old = (op, feed_rev) if op is not None else None
        if exportable and not (op == "upsert" and feed_rev == record[0]):
            _write_row(conn, user_id, db, record_id, old, ("upsert", record[0], None), now)
        elif not exportable and op == "upsert":
            _write_row(conn, user_id, db, record_id, old, ("delete", feed_rev, reason), now)


def _write_row(
    conn: sqlite3.Connection,
    user_id: str,
    db: str,
    record_id: str,
    old: tuple[str, int] | None,
    new: tuple[str, int, str | None],
    now: float,
) -> None:
    """Replace the user's row for a record (``old`` = its current (op, rev), None if absent)
    by ``new`` = (op, rev, reason), and adjust the user's digest by the difference."""
    op, rev, reason = new
    # REPLACE deletes the old row and inserts a new one: a fresh AUTOINCREMENT seq.
    conn.execute(
        "INSERT OR REPLACE INTO feed (user_id, db, record_id, op, rev, reason, changed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, db, record_id, op, rev, reason, now),
    )
    count_delta = sum_delta = 0
    if old is not None and old[0] == "upsert":
        count_delta, sum_delta = -1, -digests.line_hash(record_id, old[1])
    if op == "upsert":
        count_delta, sum_delta = count_delta + 1, sum_delta + digests.line_hash(record_id, rev)
    digests.adjust(conn, user_id, db, count_delta, sum_delta)


def add_upserts(
    conn: sqlite3.Connection,
    user_id: str,
    db: str,
    record_ids: Sequence[str],
    rev: int,
    now: float,
) -> None:
    """Write upsert rows for records new to the user's feed (bulk import), and add them to the
    digest in one step. Plain INSERT: a record that already had a row would be an error."""
    conn.executemany(
        "INSERT INTO feed (user_id, db, record_id, op, rev, reason, changed_at)"
        " VALUES (?, ?, ?, 'upsert', ?, NULL, ?)",
        ((user_id, db, rid, rev, now) for rid in record_ids),
    )
    total = sum(digests.line_hash(rid, rev) for rid in record_ids)
    digests.adjust(conn, user_id, db, len(record_ids), total)


def head_seq(conn: sqlite3.Connection, user_id: str, db: str) -> int:
    """The highest feed position of this user in this database (0 for an empty feed)."""
    row = conn.execute(
        "SELECT MAX(seq) FROM feed WHERE user_id = ? AND db = ?", (user_id, db)
    ).fetchone()
    return int(row[0] or 0)


def read_page(
    conn: sqlite3.Connection,
    user_id: str,
    db: str,
    after_seq: int,
    limit: int,
    *,
    include_deletes: bool,
) -> FeedPage:
    """Read up to ``limit`` feed rows after ``after_seq`` as ready-made JSON (one query).

    ``include_deletes=False`` (a first sync) skips delete rows: a new copy has nothing to delete.
    """
    op_filter = "" if include_deletes else "AND f.op = 'upsert'"
    rows = conn.execute(
        f"""
        SELECT f.seq, f.op, f.record_id, f.rev, f.reason, r.name, r.fields, r.updated_at
        FROM feed f LEFT JOIN records r ON r.db = f.db AND r.id = f.record_id
        WHERE f.user_id = ? AND f.db = ? AND f.seq > ? {op_filter}
        ORDER BY f.seq LIMIT ?
        """,  # noqa: S608 - op_filter is one of two constants
        (user_id, db, after_seq, limit),
    ).fetchall()
    parts = []
    for _seq, op, rid, rev, reason, name, fields, updated_at in rows:
        sid = _encode_str(rid)
        if op == "upsert":
            parts.append(
                f'{{"op":"upsert","id":{sid},"rev":{rev},"record":{{"id":{sid},"rev":{rev},'
                f'"name":{_encode_str(name)},"fields":{fields},"updated_at":{updated_at!r}}}}}'
            )
        else:
            parts.append(f'{{"op":"delete","id":{sid},"reason":{_encode_str(reason)}}}')
    if rows:
        last_seq = rows[-1][0]
    elif include_deletes:
        last_seq = after_seq
    else:
        # Only skipped delete rows (if anything) lie ahead: a first sync ends at the head.
        last_seq = max(after_seq, head_seq(conn, user_id, db))
    remaining = count_after(conn, user_id, db, last_seq)
    return FeedPage("[" + ",".join(parts) + "]", last_seq, remaining)


def count_after(conn: sqlite3.Connection, user_id: str, db: str, after_seq: int) -> int:
    """How many feed rows of this user follow ``after_seq`` (a COUNT on the index)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM feed WHERE user_id = ? AND db = ? AND seq > ?",
        (user_id, db, after_seq),
    ).fetchone()
    return int(row[0])


def digest(conn: sqlite3.Connection, user_id: str, db: str) -> dict[str, object]:
    """The last page's digest of the user's current upsert rows: the maintained one, O(1)."""
    return digests.as_wire(*digests.read(conn, user_id, db))


def compact(conn: sqlite3.Connection, older_than: float) -> tuple[int, float | None]:
    """Drop delete rows changed before ``older_than``; return how many, and when the newest
    of them was written (None if none was dropped).

    Each user's horizon in a database becomes the highest seq of a dropped delete row: a
    cursor before it may have missed that delete, so it gets 410. Call inside a write
    transaction.
    """
    per_user = conn.execute(
        "SELECT user_id, db, COUNT(*), MAX(seq), MAX(changed_at) FROM feed"
        " WHERE op = 'delete' AND changed_at < ? GROUP BY user_id, db",
        (older_than,),
    ).fetchall()
    _raise_horizons(conn, ((user_id, db, seq) for user_id, db, _n, seq, _at in per_user))
    conn.execute("DELETE FROM feed WHERE op = 'delete' AND changed_at < ?", (older_than,))
    newest = max((at for *_r, at in per_user), default=None)
    return sum(n for _u, _d, n, _s, _a in per_user), newest


def forget_database(conn: sqlite3.Connection, db: str) -> None:
    """Drop every feed row and digest of a database that is being deleted (inside the
    caller's write transaction), and keep only a horizon for each user who had a feed there.

    The horizon is past every seq handed out so far, so that if a database of the same name is
    created later, no cursor issued for the old one is taken as a position in the new one (it
    gets 410, and the client starts again from nothing).
    """
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'feed'").fetchone()
    past_everything = int(row[0] if row else 0) + 1
    users = conn.execute(
        "SELECT user_id FROM feed WHERE db = ? UNION SELECT user_id FROM horizons WHERE db = ?",
        (db, db),
    ).fetchall()
    _raise_horizons(conn, ((user_id, db, past_everything) for (user_id,) in users))
    conn.execute("DELETE FROM feed WHERE db = ?", (db,))
    conn.execute("DELETE FROM feed_digests WHERE db = ?", (db,))


def forget_user(conn: sqlite3.Connection, user_id: str) -> None:
    """Drop a deleted user's feed rows, digests and horizons (inside the caller's write
    transaction). User ids are never reused, so no cursor can point into them again."""
    for table in ("feed", "feed_digests", "horizons"):
        conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))  # noqa: S608 - one of three literals


def _raise_horizons(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, int]]) -> None:
    conn.executemany(
        "INSERT INTO horizons (user_id, db, seq) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, db) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        rows,
    )


def horizon(conn: sqlite3.Connection, user_id: str, db: str) -> int:
    """The user's compaction horizon in ``db``: cursors before it get 410 (0 = none)."""
    row = conn.execute(
        "SELECT seq FROM horizons WHERE user_id = ? AND db = ?", (user_id, db)
    ).fetchone()
    return 0 if row is None else int(row[0])
