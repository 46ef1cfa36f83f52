"""Records and per-user rights; every change writes its feed rows in the same transaction."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reference_server import audit, feed
from reference_server.audit import Actor
from reference_server.db import transaction
from reference_server.errors import ApiError, PreconditionFailed, bad_request, unknown_record

MAX_NAME_LEN = 1_000
MAX_FIELDS = 200
MAX_FIELD_NAME_LEN = 200
MAX_FIELD_VALUE_LEN = 100_000

_RECORD_COLS = "id, rev, name, fields, updated_at"


def check_content(name: object, fields: object) -> tuple[str, dict[str, str]]:
    """Validate a record's name and fields; 400 with the reason if they are not acceptable."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
        raise bad_request(
            f"'name' must be a non-empty string of at most {MAX_NAME_LEN} characters."
        )
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
    return {
        "id": row[0],
        "rev": row[1],
        "name": row[2],
        "fields": json.loads(row[3]),
        "updated_at": row[4],
    }


def _dump_fields(fields: Mapping[str, str]) -> str:
    return json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=True)


def _row(conn: sqlite3.Connection, db: str, record_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        f"SELECT {_RECORD_COLS}, sealed FROM records WHERE db = ? AND id = ?",  # noqa: S608
        (db, record_id),
    ).fetchone()
    if row is None:
        raise unknown_record()
    return tuple(row)


@dataclass(frozen=True)
class Rights:
    """One user's rights on one record."""

    read: bool
    write: bool
    export: bool
    delete: bool


_NO_RIGHTS = Rights(False, False, False, False)


def _rights(conn: sqlite3.Connection, db: str, record_id: str, user_id: str) -> Rights:
    row = conn.execute(
        "SELECT can_read, can_write, can_export, can_delete FROM rights"
        " WHERE db = ? AND record_id = ? AND user_id = ?",
        (db, record_id, user_id),
    ).fetchone()
    return _NO_RIGHTS if row is None else Rights(*(bool(v) for v in row))


def _grant(conn: sqlite3.Connection, db: str, record_id: str, user_id: str, rights: Rights) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO rights (db, record_id, user_id, can_read, can_write, can_export,"
        " can_delete) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            db,
            record_id,
            user_id,
            int(rights.read),
            int(rights.write),
            int(rights.export),
            int(rights.delete),
        ),
    )


_OWNER_RIGHTS = Rights(True, True, True, True)


def create_record(
    conn: sqlite3.Connection,
    db: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    owner: str | None,
) -> dict[str, Any]:
    """Create a record at rev 1; the owner (if any) gets read, write, export and delete
    rights."""
    with transaction(conn):
        record_id = str(uuid.uuid4())
        _insert(conn, db, record_id, name, fields, now, owner)
        return to_json(_row(conn, db, record_id))


def _insert(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    owner: str | None,
) -> None:
    conn.execute(
        "INSERT INTO records (db, id, rev, name, fields, updated_at) VALUES (?, ?, 1, ?, ?, ?)",
        (db, record_id, name, _dump_fields(fields), now),
    )
    if owner is not None:
        _grant(conn, db, record_id, owner, _OWNER_RIGHTS)
    feed.refresh_record(conn, db, record_id, now)


def update_record(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    now: float,
    *,
    name: str | None,
    fields: Mapping[str, str] | None,
    expected_rev: int | None = None,
    by_user: str | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Change name and/or fields, bump ``rev``; check the revision and rights for a user.

    ``by_user`` set: the user must be able to read (else 404) and write (else 403) the record,
    and ``expected_rev`` must be the current rev (else 409, nothing changes). ``actor``: the
    audit trail gets the update.
    """
    with transaction(conn):
        row = _row(conn, db, record_id)
        if by_user is not None:
            rights = _rights(conn, db, record_id, by_user)
            if not rights.read or row[5]:
                raise unknown_record()
            earlier = None if actor is None else audit.earlier_change(conn, actor)
            if earlier is not None:
                if (earlier.kind, earlier.record_id, earlier.base_rev) != (
                    "update",
                    record_id,
                    expected_rev,
                ):
                    raise _change_id_reused()
                return to_json(row)  # a resend of a save that is done
            if not rights.write:
                raise _no_write_right()
        if expected_rev is not None and expected_rev != row[1]:
            raise ApiError(
                409,
                "stale_revision",
                "Stale revision",
                f"The record is at revision {row[1]}, not {expected_rev}; "
                "reload it and apply your change again.",
            )
        _update(
            conn,
            db,
            record_id,
            row[2] if name is None else name,
            row[3] if fields is None else _dump_fields(fields),
            now,
        )
        if actor is not None:
            audit.record_event(
                conn, actor, "update", db, record_id, now, base_rev=row[1], rev=row[1] + 1
            )
        return to_json(_row(conn, db, record_id))


def _update(
    conn: sqlite3.Connection, db: str, record_id: str, name: str, fields_json: str, now: float
) -> None:
    # Every write raises rev by exactly one: the conditional writes rely on it (see put_record).
    conn.execute(
        "UPDATE records SET rev = rev + 1, name = ?, fields = ?, updated_at = ?"
        " WHERE db = ? AND id = ?",
        (name, fields_json, now, db, record_id),
    )
    feed.refresh_record(conn, db, record_id, now)


def _no_write_right() -> ApiError:
    return ApiError(
        403, "no_write_right", "No write right", "You may read this record but not change it."
    )


def set_rights(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    user_id: str,
    now: float,
    *,
    read: bool | None,
    write: bool | None,
    export: bool | None,
    delete: bool | None = None,
) -> Rights:
    """Set a user's rights on a record (``None`` keeps the current value); return the result."""
    with transaction(conn):
        _row(conn, db, record_id)
        old = _rights(conn, db, record_id, user_id)
        new = Rights(
            *(
                o if n is None else n
                for o, n in zip(
                    (old.read, old.write, old.export, old.delete),
                    (read, write, export, delete),
                    strict=True,
                )
            )
        )
        _grant(conn, db, record_id, user_id, new)
        feed.refresh_record(conn, db, record_id, now)
    return new


def create_allowed(conn: sqlite3.Connection, db: str, user_id: str) -> bool:
    """Whether the user may create records in ``db`` (yes unless the right was taken)."""
    row = conn.execute(
        "SELECT can_create FROM create_rights WHERE db = ? AND user_id = ?", (db, user_id)
    ).fetchone()
    return row is None or bool(row[0])


def set_create_right(conn: sqlite3.Connection, db: str, user_id: str, allowed: bool) -> None:
    """Give or take a user's right to create records in ``db``."""
    with transaction(conn):
        if allowed:
            conn.execute("DELETE FROM create_rights WHERE db = ? AND user_id = ?", (db, user_id))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO create_rights (db, user_id, can_create) VALUES (?, ?, 0)",
                (db, user_id),
            )


def _require_create_right(conn: sqlite3.Connection, db: str, user_id: str) -> None:
    if not create_allowed(conn, db, user_id):
        raise ApiError(
            403,
            "no_create_right",
            "No create right",
            "You may not create records in this database; ask the server manager.",
        )


def set_sealed(conn: sqlite3.Connection, db: str, record_id: str, sealed: bool, now: float) -> None:
    """Seal or unseal a record: sealed records leave every feed with reason ``sealed``."""
    with transaction(conn):
        rev = _row(conn, db, record_id)[1]
        conn.execute(
            "UPDATE records SET sealed = ? WHERE db = ? AND id = ?", (int(sealed), db, record_id)
        )
        feed.refresh_record(conn, db, record_id, now)
        audit.record_event(
            conn, audit.MANAGER, "seal" if sealed else "unseal", db, record_id, now, rev=rev
        )


def delete_record(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    now: float,
    actor: Actor = audit.MANAGER,
) -> None:
    """Delete a record and its rights; every feed that held it gets a ``deleted`` row, and
    the audit trail the delete (which is how a later write to the id meets 410)."""
    with transaction(conn):
        _delete(conn, db, record_id, now, actor, _row(conn, db, record_id)[1])


def _delete(
    conn: sqlite3.Connection, db: str, record_id: str, now: float, actor: Actor, rev: int
) -> None:
    feed.refresh_record(conn, db, record_id, now, deleted=True)
    conn.execute("DELETE FROM rights WHERE db = ? AND record_id = ?", (db, record_id))
    conn.execute("DELETE FROM records WHERE db = ? AND id = ?", (db, record_id))
    audit.record_event(conn, actor, "delete", db, record_id, now, base_rev=rev)


def import_records(
    conn: sqlite3.Connection,
    db: str,
    items: Iterable[tuple[str, Mapping[str, str]]],
    grants: Mapping[str, Rights],
    now: float,
) -> list[str]:
    """Bulk-create records in one transaction (executemany); grant rights to the given users."""
    new = [(db, str(uuid.uuid4()), name, _dump_fields(fields), now) for name, fields in items]
    ids = [row[1] for row in new]
    with transaction(conn):
        conn.executemany(
            "INSERT INTO records (db, id, rev, name, fields, updated_at) VALUES (?, ?, 1, ?, ?, ?)",
            new,
        )
        for user_id, rights in grants.items():
            r, w, e, d = (int(v) for v in (rights.read, rights.write, rights.export, rights.delete))
            conn.executemany(
                "INSERT INTO rights (db, record_id, user_id, can_read, can_write, can_export,"
                " can_delete) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((db, rid, user_id, r, w, e, d) for rid in ids),
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
            "SELECT r.id, r.rev, r.name, r.fields, r.updated_at"
            + where
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
    delete: bool
    sealed: bool


def list_rights(
    conn: sqlite3.Connection,
    db: str,
    *,
    user_id: str | None = None,
    record_id: str | None = None,
) -> list[RightInfo]:
    """The rights rows of a database, optionally of one user and/or one record; by record
    name, then user name. 404 ``unknown_record`` for a ``record_id`` the database lacks."""
    if record_id is not None:
        _row(conn, db, record_id)
    rows = conn.execute(
        "SELECT u.name, r.id, r.name, g.can_read, g.can_write, g.can_export, g.can_delete,"
        " r.sealed"
        " FROM rights g JOIN records r ON r.db = g.db AND r.id = g.record_id"
        " JOIN users u ON u.id = g.user_id"
        " WHERE g.db = :db AND (:user IS NULL OR g.user_id = :user)"
        " AND (:rid IS NULL OR g.record_id = :rid)"
        " ORDER BY lower(r.name), r.id, u.name",
        {"db": db, "user": user_id, "rid": record_id},
    ).fetchall()
    return [RightInfo(r[0], r[1], r[2], *(bool(v) for v in r[3:8])) for r in rows]


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


# --- conditional writes: the write side of offline edits (docs/sync-api.yaml) ---------------


@dataclass(frozen=True)
class WriteResult:
    """What a conditional write did: the record now (None after a delete); ``created`` for a
    new record (201); ``replayed`` when the server held the result already and wrote nothing."""

    record: dict[str, Any] | None
    created: bool = False
    replayed: bool = False


def create_for_user(
    conn: sqlite3.Connection,
    db: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    actor: Actor,
) -> WriteResult:
    """Create a record under a server-made id (``POST``), if the user has the create right.
    A resend with the change id of a create that is done answers that record as it is now
    (``replayed``) instead of creating a second one."""
    assert actor.user_id is not None
    with transaction(conn):
        earlier = audit.earlier_change(conn, actor)
        if earlier is not None:
            if earlier.kind != "create" or earlier.record_id is None:
                raise _change_id_reused()
            row = _row_or_none(conn, db, earlier.record_id)
            if row is None:
                raise _record_deleted()
            _visible_rights(conn, db, row, actor.user_id)
            return WriteResult(to_json(row), replayed=True)
        return _create_as(conn, db, str(uuid.uuid4()), name, fields, now, actor)


def put_for_user(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    actor: Actor,
    base_rev: int | None,
) -> WriteResult:
    """A conditional write: an update on ``base_rev`` (``If-Match``) or, with ``base_rev``
    None, a create under the client's id (``If-None-Match: *``), in one transaction.

    A resend is answered from what the server holds and writes nothing: the same change id
    (``actor.change_id``) in the audit trail, or, without one, a record that already equals
    the requested result one revision after the base (every write raises rev by exactly one,
    so its previous revision was the base); for a create, the record at rev 1 with the
    requested content. A record id that was deleted is never used again (410).
    """
    assert actor.user_id is not None
    with transaction(conn):
        row = _row_or_none(conn, db, record_id)
        if row is None:
            return _create_absent(conn, db, record_id, name, fields, now, actor, base_rev)
        rights = _visible_rights(conn, db, row, actor.user_id)
        earlier = audit.earlier_change(conn, actor)
        kind = "create" if base_rev is None else "update"
        if earlier is not None:
            if (earlier.kind, earlier.record_id, earlier.base_rev) != (kind, record_id, base_rev):
                raise _change_id_reused()
            return WriteResult(to_json(row), replayed=True)
        same = (row[2], json.loads(row[3])) == (name, dict(fields))
        if same and row[1] == (1 if base_rev is None else base_rev + 1):
            return WriteResult(to_json(row), replayed=True)
        if base_rev is None:
            raise PreconditionFailed(
                "record_exists",
                "A record with this id exists already with other content; merge with it.",
                to_json(row),
            )
        if not rights.write:
            raise _no_write_right()
        if row[1] != base_rev:
            raise _moved_on(row, base_rev)
        _update(conn, db, record_id, name, _dump_fields(fields), now)
        audit.record_event(
            conn, actor, "update", db, record_id, now, base_rev=base_rev, rev=base_rev + 1
        )
        return WriteResult(to_json(_row(conn, db, record_id)))


def _create_absent(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    actor: Actor,
    base_rev: int | None,
) -> WriteResult:
    if audit.last_delete(conn, db, record_id) is not None:
        raise _record_deleted()
    if base_rev is not None:
        raise unknown_record()
    assert actor.user_id is not None
    if audit.earlier_change(conn, actor) is not None:
        raise _change_id_reused()
    return _create_as(conn, db, record_id, name, fields, now, actor)


def _create_as(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    name: str,
    fields: Mapping[str, str],
    now: float,
    actor: Actor,
) -> WriteResult:
    """Create ``record_id`` for ``actor`` (who needs the database's create right) and record it
    in the audit trail; the one path of a POST create and a conditional PUT create."""
    assert actor.user_id is not None
    _require_create_right(conn, db, actor.user_id)
    _insert(conn, db, record_id, name, fields, now, actor.user_id)
    audit.record_event(conn, actor, "create", db, record_id, now, rev=1)
    return WriteResult(to_json(_row(conn, db, record_id)), created=True)


def delete_for_user(
    conn: sqlite3.Connection,
    db: str,
    record_id: str,
    now: float,
    actor: Actor,
    base_rev: int,
) -> WriteResult:
    """A conditional delete on ``base_rev`` (``If-Match``), in one transaction.

    A resend of a delete that the server already carried out answers as done (``replayed``):
    its change id is in the audit trail, or, without one, the record's deletion was made by
    the same user and client from the same revision. Another deletion: 410.
    """
    assert actor.user_id is not None
    with transaction(conn):
        row = _row_or_none(conn, db, record_id)
        earlier = audit.earlier_change(conn, actor)
        if row is None:
            deletion = audit.last_delete(conn, db, record_id)
            if earlier is not None and (earlier.kind, earlier.record_id) == ("delete", record_id):
                return WriteResult(None, replayed=True)
            if deletion == (actor.user_id, actor.client_id, base_rev):
                return WriteResult(None, replayed=True)
            if deletion is not None:
                raise _record_deleted()
            raise unknown_record()
        rights = _visible_rights(conn, db, row, actor.user_id)
        if earlier is not None:
            raise _change_id_reused()
        if not rights.delete:
            raise ApiError(
                403,
                "no_delete_right",
                "No delete right",
                "You may not delete this record; ask the server manager.",
            )
        if row[1] != base_rev:
            raise _moved_on(row, base_rev)
        _delete(conn, db, record_id, now, actor, base_rev)
        return WriteResult(None)


def _row_or_none(conn: sqlite3.Connection, db: str, record_id: str) -> tuple[Any, ...] | None:
    try:
        return _row(conn, db, record_id)
    except ApiError:
        return None


def _visible_rights(
    conn: sqlite3.Connection, db: str, row: tuple[Any, ...], user_id: str
) -> Rights:
    """The user's rights on a record the user may see: 404 without the read right (as if it
    did not exist), 403 ``record_sealed`` for a sealed one the user could read."""
    rights = _rights(conn, db, row[0], user_id)
    if not rights.read:
        raise unknown_record()
    if row[5]:
        raise ApiError(
            403,
            "record_sealed",
            "Record sealed",
            "This record is sealed by the server manager; it cannot be changed.",
        )
    return rights


def _moved_on(row: tuple[Any, ...], base_rev: int) -> PreconditionFailed:
    return PreconditionFailed(
        "revision_moved",
        f"The record is at revision {row[1]}, not {base_rev}; merge your "
        "change with the current record and send it again.",
        to_json(row),
    )


def _record_deleted() -> ApiError:
    return ApiError(
        410,
        "record_deleted",
        "Record deleted",
        "This record was deleted on the server; its id is not used again.",
    )


def _change_id_reused() -> ApiError:
    return bad_request(
        "This X-Change-Id was used for another change; make a new one for each change.",
        "change_id_reused",
    )
