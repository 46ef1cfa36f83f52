"""Records and per-user rights; every change writes its feed rows in the same transaction."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reference_server import feed
from reference_server.db import transaction
from reference_server.errors import ApiError, bad_request, unknown_record

MAX_NAME_LEN = 1_000
MAX_FIELDS = 200
MAX_FIELD_NAME_LEN = 200
MAX_FIELD_VALUE_LEN = 100_000

_RECORD_COLS = "id, rev, name, fields, updated_at"


def check_content(name: object, fields: object) -> tuple[str, dict[str, str]]:
    """Validate a record's name and fields; 400 with the reason if they are not acceptable."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
        raise bad_request(
            f"'name' must be a non-empty string of at most {MAX_NAME_LEN} characters.")
    if not isinstance(fields, dict):
        raise bad_request("'fields' must be an object mapping field names to strings.")
    if len(fields) > MAX_FIELDS:
        raise bad_request(f"A record may have at most {MAX_FIELDS} fields.")
    for key, value in fields.items():
        if not isinstance(key, str) or not key or len(key) > MAX_FIELD_NAME_LEN:
            raise bad_request(f"Field names must be 1-{MAX_FIELD_NAME_LEN} characters.")
        if not isinstance(value, str) or len(value) > MAX_FIELD_VALUE_LEN:
            raise bad_request(
                f"Field values must be strings of at most {MAX_FIELD_VALUE_LEN} characters."
            )
    _check_encodable(name)
    for key, value in fields.items():
        _check_encodable(key)
        _check_encodable(value)
    return name, dict(fields)


def _check_encodable(text: str) -> None:
    # Lone surrogates survive json.loads but cannot be stored as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_request("Text must be valid Unicode (no lone surrogates).") from exc


def to_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A ``records`` row (id, rev, name, fields, updated_at) as the wire record object."""
    return {"id": row[0], "rev": row[1], "name": row[2], "fields": json.loads(row[3]),
            "updated_at": row[4]}


def _dump_fields(fields: Mapping[str, str]) -> str:
    return json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=True)


def _row(conn: sqlite3.Connection, db: str, record_id: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {_RECORD_COLS}, sealed FROM records WHERE db = ? AND id = ?",  # noqa: S608
                       (db, record_id)).fetchone()
    if row is None:
        raise unknown_record()
    return tuple(row)


def _rights(conn: sqlite3.Connection, db: str, record_id: str, user_id: str) -> tuple[bool, ...]:
    row = conn.execute(
        "SELECT can_read, can_write, can_export FROM rights"
        " WHERE db = ? AND record_id = ? AND user_id = ?", (db, record_id, user_id)
    ).fetchone()
    return (False, False, False) if row is None else tuple(bool(v) for v in row)


def create_record(
    conn: sqlite3.Connection, db: str, name: str, fields: Mapping[str, str], now: float,
    owner: str | None,
) -> dict[str, Any]:
    """Create a record at rev 1; the owner (if any) gets read, write and export rights."""
    record_id = str(uuid.uuid4())
    with transaction(conn):
        conn.execute(
            "INSERT INTO records (db, id, rev, name, fields, updated_at) VALUES (?, ?, 1, ?, ?, ?)",
            (db, record_id, name, _dump_fields(fields), now),
        )
        if owner is not None:
            conn.execute("INSERT INTO rights VALUES (?, ?, ?, 1, 1, 1)", (db, record_id, owner))
        feed.refresh_record(conn, db, record_id, now)
        return to_json(_row(conn, db, record_id))


def update_record(
    conn: sqlite3.Connection, db: str, record_id: str, now: float, *,
    name: str | None, fields: Mapping[str, str] | None,
    expected_rev: int | None = None, by_user: str | None = None,
) -> dict[str, Any]:
    """Change name and/or fields, bump ``rev``; check the revision and rights for a user.

    ``by_user`` set: the user must be able to read (else 404) and write (else 403) the record,
    and ``expected_rev`` must be the current rev (else 409, nothing changes).
    """
    with transaction(conn):
        row = _row(conn, db, record_id)
        if by_user is not None:
            can_read, can_write, _ = _rights(conn, db, record_id, by_user)
            if not can_read or row[5]:
                raise unknown_record()
            if not can_write:
                raise ApiError(403, "no_write_right", "No write right",
                               "You may read this record but not change it.")
        if expected_rev is not None and expected_rev != row[1]:
            raise ApiError(409, "stale_revision", "Stale revision",
                           f"The record is at revision {row[1]}, not {expected_rev}; "
                           "reload it and apply your change again.")
        conn.execute(
            "UPDATE records SET rev = rev + 1, name = ?, fields = ?, updated_at = ?"
            " WHERE db = ? AND id = ?",
            (row[2] if name is None else name,
             row[3] if fields is None else _dump_fields(fields), now, db, record_id),
        )
        feed.refresh_record(conn, db, record_id, now)
        return to_json(_row(conn, db, record_id))


def set_rights(
    conn: sqlite3.Connection, db: str, record_id: str, user_id: str, now: float, *,
    read: bool | None, write: bool | None, export: bool | None,
) -> tuple[bool, bool, bool]:
    """Set a user's rights on a record (``None`` keeps the current value); return the result."""
    with transaction(conn):
        _row(conn, db, record_id)
        old = _rights(conn, db, record_id, user_id)
        new = tuple(o if n is None else n for o, n in zip(old, (read, write, export), strict=True))
        conn.execute("INSERT OR REPLACE INTO rights VALUES (?, ?, ?, ?, ?, ?)",
                     (db, record_id, user_id, *(int(v) for v in new)))
        feed.refresh_record(conn, db, record_id, now)
    return new[0], new[1], new[2]


def set_sealed(
    conn: sqlite3.Connection, db: str, record_id: str, sealed: bool, now: float
) -> None:
    """Seal or unseal a record: sealed records leave every feed with reason ``sealed``."""
    with transaction(conn):
        _row(conn, db, record_id)
        conn.execute("UPDATE records SET sealed = ? WHERE db = ? AND id = ?",
                     (int(sealed), db, record_id))
        feed.refresh_record(conn, db, record_id, now)


def delete_record(conn: sqlite3.Connection, db: str, record_id: str, now: float) -> None:
    """Delete a record and its rights; every feed that held it gets a ``deleted`` row."""
    with transaction(conn):
        _row(conn, db, record_id)
        feed.refresh_record(conn, db, record_id, now, deleted=True)
        conn.execute("DELETE FROM rights WHERE db = ? AND record_id = ?", (db, record_id))
        conn.execute("DELETE FROM records WHERE db = ? AND id = ?", (db, record_id))


def import_records(
    conn: sqlite3.Connection, db: str, items: Iterable[tuple[str, Mapping[str, str]]],
    grants: Mapping[str, tuple[bool, bool, bool]], now: float,
) -> list[str]:
    """Bulk-create records in one transaction (executemany); grant rights to the given users."""
    new = [(db, str(uuid.uuid4()), name, _dump_fields(fields), now) for name, fields in items]
    ids = [row[1] for row in new]
    with transaction(conn):
        conn.executemany(
            "INSERT INTO records (db, id, rev, name, fields, updated_at) VALUES (?, ?, 1, ?, ?, ?)",
            new,
        )
        for user_id, (r, w, e) in grants.items():
            conn.executemany(
                "INSERT INTO rights VALUES (?, ?, ?, ?, ?, ?)",
                ((db, rid, user_id, int(r), int(w), int(e)) for rid in ids),
            )
            if r and e:
                feed.add_upserts(conn, user_id, db, ids, 1, now)
    return ids


def get_for_user(conn: sqlite3.Connection, db: str, record_id: str, user_id: str) -> dict[str, Any]:
    """One record the user may read (not sealed); 404 ``unknown_record`` otherwise."""
    row = conn.execute(
        f"SELECT {', '.join('r.' + c for c in _RECORD_COLS.split(', '))} FROM records r"  # noqa: S608
        " JOIN rights g ON g.db = r.db AND g.record_id = r.id AND g.user_id = ?"
        " WHERE r.db = ? AND r.id = ? AND g.can_read AND NOT r.sealed",
        (user_id, db, record_id),
    ).fetchone()
    if row is None:
        raise unknown_record()
    return to_json(row)


def list_for_user(
    conn: sqlite3.Connection, db: str, user_id: str, q: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the records the user may read (not sealed), filtered by name; and the total."""
    where = (
        " FROM records r JOIN rights g ON g.db = r.db AND g.record_id = r.id AND g.user_id = ?"
        " WHERE r.db = ? AND g.can_read AND NOT r.sealed AND instr(lower(r.name), lower(?)) > 0"
    )
    params = (user_id, db, q)
    with transaction(conn, write=False):
        total = conn.execute("SELECT COUNT(*)" + where, params).fetchone()[0]
        rows = conn.execute(
            "SELECT r.id, r.rev, r.name, r.fields, r.updated_at" + where
            + " ORDER BY lower(r.name), r.id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
    return [to_json(row) for row in rows], int(total)


def list_all(conn: sqlite3.Connection, db: str) -> list[tuple[str, int, str, bool]]:
    """Every record of a database as (id, rev, name, sealed), for the server manager."""
    rows = conn.execute(
        "SELECT id, rev, name, sealed FROM records WHERE db = ? ORDER BY lower(name), id", (db,)
    ).fetchall()
    return [(r[0], r[1], r[2], bool(r[3])) for r in rows]


@dataclass(frozen=True)
class RightInfo:
    """One user's rights on one record, as the server manager sees them."""

    user: str
    record_id: str
    record_name: str
    read: bool
    write: bool
    export: bool
    sealed: bool


def list_rights(
    conn: sqlite3.Connection, db: str, *, user_id: str | None = None,
    record_id: str | None = None,
) -> list[RightInfo]:
    """The rights rows of a database, optionally of one user and/or one record; by record
    name, then user name. 404 ``unknown_record`` for a ``record_id`` the database lacks."""
    if record_id is not None:
        _row(conn, db, record_id)
    rows = conn.execute(
        "SELECT u.name, r.id, r.name, g.can_read, g.can_write, g.can_export, r.sealed"
        " FROM rights g JOIN records r ON r.db = g.db AND r.id = g.record_id"
        " JOIN users u ON u.id = g.user_id"
        " WHERE g.db = :db AND (:user IS NULL OR g.user_id = :user)"
        " AND (:rid IS NULL OR g.record_id = :rid)"
        " ORDER BY lower(r.name), r.id, u.name",
        {"db": db, "user": user_id, "rid": record_id},
    ).fetchall()
    return [RightInfo(r[0], r[1], r[2], *(bool(v) for v in r[3:7])) for r in rows]


def exportable_view(
    conn: sqlite3.Connection, db: str, user_id: str
) -> dict[str, tuple[int, str, dict[str, str]]]:
    """Ground truth: what the user may export now, computed from records and rights alone."""
    rows = conn.execute(
        "SELECT r.id, r.rev, r.name, r.fields FROM records r"
        " JOIN rights g ON g.db = r.db AND g.record_id = r.id"
        " WHERE g.user_id = ? AND r.db = ? AND g.can_read AND g.can_export AND NOT r.sealed",
        (user_id, db),
    ).fetchall()
    return {rid: (rev, name, json.loads(fields)) for rid, rev, name, fields in rows}


def get_any(conn: sqlite3.Connection, db: str, record_id: str) -> dict[str, Any]:
    """A record regardless of rights and seal (for the server manager)."""
    return to_json(_row(conn, db, record_id))
