"""The feed digest: an order-independent multiset hash kept up to date with every feed row.

``line_hash(id, rev)`` is SHA-256 of ``"id:rev"`` read as a big-endian integer; a user's digest
is the count of their current upsert rows and the sum of those rows' line hashes mod 2**256.
Because a sum can be adjusted by one row at a time, the digest lives in ``feed_digests`` and is
changed in the same transaction as the feed row it follows: the last page of a sync reads one
row instead of hashing the user's whole feed. It detects accidental divergence; the server is
trusted, so resisting crafted collisions is not its job.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable

MODULUS = 1 << 256
ALGORITHM = "sha256-sum"
_MIGRATED_KEY = "feed_digests_ready"


def line_hash(record_id: str, rev: int) -> int:
    """SHA-256 of ``"id:rev"`` (UTF-8) as an integer."""
    line = f"{record_id}:{rev}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(line).digest(), "big")


def sum_of(pairs: Iterable[tuple[str, int]]) -> tuple[int, int]:
    """(count, sum mod 2**256) of the line hashes of ``(id, rev)`` pairs, streaming."""
    count = total = 0
    for record_id, rev in pairs:
        count += 1
        total += line_hash(record_id, rev)
    return count, total % MODULUS


def as_wire(count: int, total: int) -> dict[str, object]:
    """The digest object of the last feed page."""
    return {"count": count, "sum": f"{total % MODULUS:064x}", "algorithm": ALGORITHM}


def adjust(
    conn: sqlite3.Connection, user_id: str, db: str, count_delta: int, sum_delta: int
) -> None:
    """Add ``count_delta`` rows and ``sum_delta`` to a user's digest (inside the caller's
    write transaction, together with the feed rows the deltas describe)."""
    if count_delta == 0 and sum_delta % MODULUS == 0:
        return
    count, total = read(conn, user_id, db)
    conn.execute(
        "INSERT OR REPLACE INTO feed_digests (user_id, db, count, sum_hex) VALUES (?, ?, ?, ?)",
        (user_id, db, count + count_delta, f"{(total + sum_delta) % MODULUS:064x}"),
    )


def read(conn: sqlite3.Connection, user_id: str, db: str) -> tuple[int, int]:
    """The maintained (count, sum) of a user's feed in ``db`` (one primary-key lookup)."""
    row = conn.execute(
        "SELECT count, sum_hex FROM feed_digests WHERE user_id = ? AND db = ?", (user_id, db)
    ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1], 16))


def recompute(conn: sqlite3.Connection, user_id: str, db: str) -> tuple[int, int]:
    """(count, sum) from the feed rows themselves (ground truth for tests and the migration)."""
    rows = conn.execute(
        "SELECT record_id, rev FROM feed WHERE user_id = ? AND db = ? AND op = 'upsert'",
        (user_id, db),
    )
    return sum_of(rows)


def migrate(conn: sqlite3.Connection) -> None:
    """Fill ``feed_digests`` once for a server file made before it existed (inside the
    caller's write transaction). Later opens only read a meta flag."""
    done = conn.execute("SELECT 1 FROM meta WHERE key = ?", (_MIGRATED_KEY,)).fetchone()
    if done is not None:
        return
    owners = conn.execute(
        "SELECT DISTINCT user_id, db FROM feed WHERE op = 'upsert'"
        " AND NOT EXISTS (SELECT 1 FROM feed_digests d"
        "  WHERE d.user_id = feed.user_id AND d.db = feed.db)"
    ).fetchall()
    for user_id, db in owners:
        count, total = recompute(conn, user_id, db)
        conn.execute(
            "INSERT INTO feed_digests (user_id, db, count, sum_hex) VALUES (?, ?, ?, ?)",
            (user_id, db, count, f"{total:064x}"),
        )
    conn.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (_MIGRATED_KEY,))
