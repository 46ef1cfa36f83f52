"""The registry of offline copies: which user holds a copy of which database on which client
installation, as the clients report it, and what the server itself has done to them since.

A client reports its copy at the end of every sync (``PUT .../offline/copies/{client_id}``)
and says when it has wiped it (``DELETE``). The server adds what only it knows: when it took
offline use away (database switched off, offline right taken, user or database deleted), the
copy is marked ``revoked`` until its client's next report or wipe tells what became of it.
A row is one per (database, user, client installation); its states:

- ``present``: as the client last reported it, at ``last_sync`` (the server's time of that
  report, never the client's clock);
- ``revoked``: the server took offline use away at ``changed_at`` (``why`` says how); the
  client deletes the copy at its next sync, or, when it can no longer sync (user or database
  deleted), the copy stops opening when its validity has passed since ``last_sync``;
- ``wiped``: the client said it deleted the copy (kept for the record, listed on request).

The counts are the client's word; the server keeps them as reported (never record content).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

PRESENT = "present"
REVOKED = "revoked"
WIPED = "wiped"
MAX_COUNT = 1_000_000_000
MAX_CLIENT_ID_LEN = 200

Why = Literal[
    "database offline use switched off",
    "offline right taken",
    "user deleted",
    "database deleted",
]


@dataclass(frozen=True)
class CopyReport:
    """What a client reports about its copy at the end of a sync."""

    record_count: int
    pending_changes: int
    unpushed_log_entries: int
    complete: bool


@dataclass(frozen=True)
class OfflineCopy:
    """One row of the registry, as the server manager reads it."""

    db: str
    user_name: str
    client_id: str
    state: str
    last_sync: float
    record_count: int
    pending_changes: int
    unpushed_log_entries: int
    complete: bool
    changed_at: float
    why: str | None

    def to_wire(self) -> dict[str, object]:
        """The copy as ``GET /admin/offline/copies`` lists it."""
        return {
            "database": self.db,
            "username": self.user_name,
            "client_id": self.client_id,
            "state": self.state,
            "last_sync": self.last_sync,
            "record_count": self.record_count,
            "pending_changes": self.pending_changes,
            "unpushed_log_entries": self.unpushed_log_entries,
            "complete": self.complete,
            "changed_at": self.changed_at,
            "why": self.why,
        }


def report(
    conn: sqlite3.Connection,
    db: str,
    user_id: str,
    user_name: str,
    client_id: str,
    copy: CopyReport,
    now: float,
    *,
    offline_allowed: bool,
    why_not: Why | None = None,
) -> OfflineCopy:
    """Inside the caller's write transaction: store a client's report (replacing its earlier
    one); return the row as stored.

    ``offline_allowed`` is whether this user may hold an offline copy of ``db`` now: a report
    that arrives after the server took offline use away keeps the copy ``revoked`` (its
    client deletes it at its next policy check), with the reported counts.
    """
    state = PRESENT if offline_allowed else REVOKED
    why = None if offline_allowed else why_not
    conn.execute(
        "INSERT OR REPLACE INTO offline_copies (db, user_id, user_name, client_id, state,"
        " last_sync, record_count, pending_changes, unpushed_log_entries, complete,"
        " changed_at, why) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            db,
            user_id,
            user_name,
            client_id,
            state,
            now,
            copy.record_count,
            copy.pending_changes,
            copy.unpushed_log_entries,
            int(copy.complete),
            now,
            why,
        ),
    )
    return OfflineCopy(
        db,
        user_name,
        client_id,
        state,
        now,
        copy.record_count,
        copy.pending_changes,
        copy.unpushed_log_entries,
        copy.complete,
        now,
        why,
    )


def wiped(conn: sqlite3.Connection, db: str, user_id: str, client_id: str, now: float) -> bool:
    """Inside the caller's write transaction: mark a copy as deleted by its client; False
    when the registry had no such copy."""
    cur = conn.execute(
        "UPDATE offline_copies SET state = 'wiped', changed_at = ?, why = NULL"
        " WHERE db = ? AND user_id = ? AND client_id = ?",
        (now, db, user_id, client_id),
    )
    return cur.rowcount > 0


def mark_revoked(
    conn: sqlite3.Connection,
    now: float,
    why: Why,
    *,
    db: str | None = None,
    user_id: str | None = None,
) -> int:
    """Inside the caller's transaction: mark the present copies of a database and/or a user
    ``revoked``; return how many."""
    cur = conn.execute(
        "UPDATE offline_copies SET state = 'revoked', changed_at = :now, why = :why"
        " WHERE state = 'present' AND (:db IS NULL OR db = :db)"
        " AND (:user IS NULL OR user_id = :user)",
        {"now": now, "why": why, "db": db, "user": user_id},
    )
    return cur.rowcount


def list_copies(
    conn: sqlite3.Connection, *, db: str | None = None, include_wiped: bool = False
) -> list[OfflineCopy]:
    """The registry, by database, user and client; without wiped copies unless asked."""
    rows = conn.execute(
        "SELECT db, user_name, client_id, state, last_sync, record_count, pending_changes,"
        " unpushed_log_entries, complete, changed_at, why FROM offline_copies"
        " WHERE (:db IS NULL OR db = :db) AND (:wiped OR state != 'wiped')"
        " ORDER BY db, user_name, client_id",
        {"db": db, "wiped": int(include_wiped)},
    ).fetchall()
    return [
        OfflineCopy(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10])
        for r in rows
    ]
