"""The audit trail: one row per record write and per reported offline access.

Every write through the API (create, update, delete; online or offline) and every record the
server manager deletes or seals writes a row in the same transaction as the change. A row says
who (user id and name: the name stays when the user is deleted; the server manager has no id),
which database and record, what ``kind`` of event, the server time, whether it was made
offline and the client's local time then, the client installation and the client's change id.

The change id makes writes idempotent: a write carrying ``X-Change-Id`` that the trail already
holds for this user and client is a resend, answered from the trail instead of applied twice.
The same key de-duplicates the offline access events a client reports (``kind`` tells the
events apart; ``record_id`` is empty for an offline login, ``field`` holds the field *name* of
a field revealed or copied): an event id the trail already holds is not recorded again. Such a
row has ``offline`` set, the client's ``local_time`` of the access, and as ``at`` the server
time it was received. Never holds record content or search terms.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SERVER_MANAGER = "(server manager)"
RECORD_KINDS = ("create", "update", "delete", "seal", "unseal")
ACCESS_KINDS = ("offline_login", "record_shown", "field_revealed", "field_copied")
"""The offline access events a client reports (``POST .../offline/audit``)."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a logged-in user through the API, or the server manager.

    ``local_time`` is set for a change made offline (the client's clock then, from
    ``X-Offline-Change``); ``change_id`` is the client's id of the change (``X-Change-Id``).
    """

    user_id: str | None
    user_name: str
    client_id: str | None = None
    local_time: float | None = None
    change_id: str | None = None

    @property
    def offline(self) -> bool:
        """Whether the change was made offline (and is pushed now)."""
        return self.local_time is not None


MANAGER = Actor(None, SERVER_MANAGER)


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit trail, as the server manager reads it."""

    seq: int
    at: float
    kind: str
    db: str
    record_id: str | None
    user_name: str
    client_id: str | None
    offline: bool
    local_time: float | None
    change_id: str | None
    base_rev: int | None
    rev: int | None
    field: str | None = None
    """The field name of a reported ``field_revealed`` or ``field_copied`` (never its value)."""


@dataclass(frozen=True)
class AccessEvent:
    """One offline access a client reports: ``id`` is the client's, unique per client
    installation; ``record_id`` is None for an ``offline_login``, ``field`` a field name for
    ``field_revealed`` and ``field_copied`` only; ``local_time`` the client's clock then."""

    id: str
    kind: str
    record_id: str | None
    field: str | None
    local_time: float


@dataclass(frozen=True)
class EarlierChange:
    """What the trail says about a change id already used by this user and client."""

    kind: str
    record_id: str | None
    base_rev: int | None
    rev: int | None


def record_event(
    conn: sqlite3.Connection,
    actor: Actor,
    kind: str,
    db: str,
    record_id: str,
    now: float,
    *,
    base_rev: int | None = None,
    rev: int | None = None,
) -> None:
    """Write one row (inside the caller's write transaction, with the change itself)."""
    conn.execute(
        "INSERT INTO audit (at, kind, db, record_id, user_id, user_name, client_id, offline,"
        " local_time, change_id, base_rev, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            kind,
            db,
            record_id,
            actor.user_id,
            actor.user_name,
            actor.client_id,
            int(actor.offline),
            actor.local_time,
            actor.change_id,
            base_rev,
            rev,
        ),
    )


def earlier_change(conn: sqlite3.Connection, actor: Actor) -> EarlierChange | None:
    """The change this actor's change id already named, if any (None without a change id)."""
    if actor.change_id is None or actor.user_id is None:
        return None
    row = conn.execute(
        "SELECT kind, record_id, base_rev, rev FROM audit"
        " WHERE user_id = ? AND client_id = ? AND change_id = ?",
        (actor.user_id, actor.client_id, actor.change_id),
    ).fetchone()
    return None if row is None else EarlierChange(*row)


def last_delete(
    conn: sqlite3.Connection, db: str, record_id: str
) -> tuple[str | None, str | None, int | None] | None:
    """(user id, client id, deleted rev) of the record's deletion, or None if the trail
    knows of none. Record ids are never reused, so there is at most one."""
    row = conn.execute(
        "SELECT user_id, client_id, base_rev FROM audit WHERE db = ? AND record_id = ?"
        " AND kind = 'delete' ORDER BY seq DESC LIMIT 1",
        (db, record_id),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def record_access(
    conn: sqlite3.Connection,
    user_id: str,
    user_name: str,
    client_id: str,
    db: str,
    events: list[AccessEvent],
    now: float,
) -> int:
    """Record offline access events (inside the caller's write transaction); return how many
    were new. An id this user and client installation already used (by an earlier batch, an
    earlier event of this batch, or a write's change id) is not recorded again."""
    new = 0
    for event in events:
        cur = conn.execute(
            "INSERT OR IGNORE INTO audit (at, kind, db, record_id, user_id, user_name,"
            " client_id, offline, local_time, change_id, field)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                now,
                event.kind,
                db,
                event.record_id,
                user_id,
                user_name,
                client_id,
                event.local_time,
                event.id,
                event.field,
            ),
        )
        new += cur.rowcount
    return new


def list_entries(
    conn: sqlite3.Connection,
    *,
    user_name: str | None = None,
    db: str | None = None,
    since: float | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """The newest ``limit`` rows, oldest first, optionally of one user, one database, and at
    or after ``since`` (server time)."""
    rows = conn.execute(
        "SELECT seq, at, kind, db, record_id, user_name, client_id, offline, local_time,"
        " change_id, base_rev, rev, field FROM audit"
        " WHERE (:user IS NULL OR user_name = :user) AND (:db IS NULL OR db = :db)"
        " AND (:since IS NULL OR at >= :since) ORDER BY seq DESC LIMIT :limit",
        {"user": user_name, "db": db, "since": since, "limit": limit},
    ).fetchall()
    return [
        AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), *r[8:])
        for r in reversed(rows)
    ]
