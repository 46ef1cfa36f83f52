"""Databases, users and sessions (tokens): the server manager's side plus login."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Literal

from reference_server import copies, feed
from reference_server.db import transaction
from reference_server.errors import ApiError, bad_request, bad_token, unknown_database, unknown_user
from reference_server.passwords import hash_password, verify_password

DEFAULT_VALIDITY_DAYS = 7
DEFAULT_LOGIN_ATTEMPTS = 10
MAX_LOGIN_ATTEMPTS = 1000
TOKEN_LIFETIME_S = 12 * 3600
_DUMMY_SALT = bytes(16)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class DatabaseInfo:
    """A database as the server manager sees it."""

    name: str
    offline_allowed: bool
    record_count: int
    offline_editing: bool = False
    offline_login_attempts: int = DEFAULT_LOGIN_ATTEMPTS
    """Wrong offline passwords in a row after which a client deletes its copy."""


@dataclass(frozen=True)
class UserInfo:
    """A user as the server manager sees it (no password material)."""

    id: str
    name: str
    offline_right: bool
    validity_seconds: int


@dataclass(frozen=True)
class UserDeletion:
    """What deleting a user removed."""

    rights: int
    sessions: int
    validity_seconds: int


@dataclass(frozen=True)
class DatabaseDeletion:
    """What deleting a database removed."""

    records: int
    sessions: int
    offline_allowed: bool


@dataclass(frozen=True)
class TokenOwner:
    """Whom a valid bearer token belongs to."""

    user_id: str
    username: str
    db: str
    client_id: str
    token_hash: str
    password_generation: int = 0
    """The password generation the token was issued under (see :func:`set_password`)."""


def check_name(kind: str, name: object) -> str:
    """A database or user name: 1-64 letters, digits and ``_.@-`` (safe in paths and URLs)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise bad_request(
            f"A {kind} name must be 1-64 characters: letters, digits, '_', '.', '@' or '-'."
        )
    return name


def create_database(conn: sqlite3.Connection, name: str, offline_allowed: bool) -> None:
    """Create an empty database; refuse a name that exists."""
    check_name("database", name)
    with transaction(conn):
        if database_exists(conn, name):
            raise ApiError(
                409,
                "database_exists",
                "Database exists",
                f"A database named {name!r} exists already.",
            )
        conn.execute(
            "INSERT INTO databases (name, offline_allowed) VALUES (?, ?)",
            (name, int(offline_allowed)),
        )


def database_exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a database of this name exists."""
    row = conn.execute("SELECT 1 FROM databases WHERE name = ?", (name,)).fetchone()
    return row is not None


def require_database(conn: sqlite3.Connection, name: str) -> None:
    """Raise 404 ``unknown_database`` unless the database exists."""
    if not database_exists(conn, name):
        raise unknown_database(name)


def database_offline_allowed(conn: sqlite3.Connection, name: str) -> bool:
    """The database's "offline allowed" switch."""
    row = conn.execute("SELECT offline_allowed FROM databases WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise unknown_database(name)
    return bool(row[0])


def set_database_offline(conn: sqlite3.Connection, name: str, allowed: bool, now: float) -> int:
    """Switch offline use of a database on or off; return how many reported copies were
    marked revoked by switching it off."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE databases SET offline_allowed = ? WHERE name = ?", (int(allowed), name)
        )
        if cur.rowcount == 0:
            raise unknown_database(name)
        if allowed:
            return 0
        return copies.mark_revoked(conn, now, "database offline use switched off", db=name)


def database_offline_editing(conn: sqlite3.Connection, name: str) -> bool:
    """The database's "offline editing allowed" setting (off unless switched on)."""
    row = conn.execute("SELECT offline_editing FROM databases WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise unknown_database(name)
    return bool(row[0])


def set_database_editing(conn: sqlite3.Connection, name: str, allowed: bool) -> None:
    """Allow or forbid editing offline copies of a database."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE databases SET offline_editing = ? WHERE name = ?", (int(allowed), name)
        )
        if cur.rowcount == 0:
            raise unknown_database(name)


def database_login_attempts(conn: sqlite3.Connection, name: str) -> int:
    """The database's limit of wrong offline passwords in a row (see the offline policy)."""
    row = conn.execute(
        "SELECT offline_login_attempts FROM databases WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise unknown_database(name)
    return int(row[0])


def set_database_login_attempts(conn: sqlite3.Connection, name: str, attempts: int) -> None:
    """Set the limit of wrong offline passwords in a row (1-1000) of a database."""
    if (
        isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_LOGIN_ATTEMPTS
    ):
        raise bad_request(
            f"offline_login_attempts must be a whole number from 1 to {MAX_LOGIN_ATTEMPTS}, "
            f"not {attempts!r}."
        )
    with transaction(conn):
        cur = conn.execute(
            "UPDATE databases SET offline_login_attempts = ? WHERE name = ?", (attempts, name)
        )
        if cur.rowcount == 0:
            raise unknown_database(name)


def list_databases(conn: sqlite3.Connection) -> list[DatabaseInfo]:
    """All databases with their switches and record count."""
    rows = conn.execute(
        "SELECT d.name, d.offline_allowed, (SELECT COUNT(*) FROM records r WHERE r.db = d.name),"
        " d.offline_editing, d.offline_login_attempts FROM databases d ORDER BY d.name"
    ).fetchall()
    return [
        DatabaseInfo(name, bool(allowed), count, bool(editing), attempts)
        for name, allowed, count, editing, attempts in rows
    ]


def delete_database(conn: sqlite3.Connection, name: str, now: float) -> DatabaseDeletion:
    """Delete a database with its records, rights, feeds and sessions, in one transaction.

    Its sessions end (their tokens get 401, a new login 404 ``unknown_database``); neither
    answer makes a client wipe its copy (only an authenticated 403 does), so copies stop
    opening when their offline validity runs out.
    """
    with transaction(conn):
        offline_allowed = database_offline_allowed(conn, name)
        sessions = _end_sessions(conn, "db", name, now)
        conn.execute("DELETE FROM rights WHERE db = ?", (name,))
        conn.execute("DELETE FROM create_rights WHERE db = ?", (name,))
        records = conn.execute("DELETE FROM records WHERE db = ?", (name,)).rowcount
        feed.forget_database(conn, name)
        copies.mark_revoked(conn, now, "database deleted", db=name)
        conn.execute("DELETE FROM databases WHERE name = ?", (name,))
    return DatabaseDeletion(records, sessions, offline_allowed)


def create_user(
    conn: sqlite3.Connection,
    name: str,
    password: str,
    *,
    offline_right: bool,
    validity_seconds: int,
) -> str:
    """Create a user (password stored as salted scrypt); return the new user id."""
    check_name("user", name)
    if not isinstance(password, str) or not password:
        raise bad_request("The password must not be empty.")
    if validity_seconds <= 0:
        raise bad_request("The offline validity must be positive.")
    salt, pw_hash = hash_password(password)
    user_id = str(uuid.uuid4())
    with transaction(conn):
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise ApiError(409, "user_exists", "User exists", f"A user named {name!r} exists.")
        conn.execute(
            "INSERT INTO users (id, name, pw_salt, pw_hash, offline_right, validity_seconds)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, name, salt, pw_hash, int(offline_right), validity_seconds),
        )
    return user_id


def user_by_name(conn: sqlite3.Connection, name: str) -> UserInfo:
    """Look a user up by name; 404 ``unknown_user`` if there is none."""
    return _user_where(conn, "name", name)


def user_by_id(conn: sqlite3.Connection, user_id: str) -> UserInfo:
    """Look a user up by id; 404 ``unknown_user`` if there is none."""
    return _user_where(conn, "id", user_id)


def _user_where(conn: sqlite3.Connection, column: Literal["id", "name"], value: str) -> UserInfo:
    row = conn.execute(
        # The column is one of two literals, never input: S608 does not apply.
        f"SELECT id, name, offline_right, validity_seconds FROM users WHERE {column} = ?",  # noqa: S608
        (value,),
    ).fetchone()
    if row is None:
        raise unknown_user(value)
    return UserInfo(row[0], row[1], bool(row[2]), row[3])


def list_users(conn: sqlite3.Connection) -> list[UserInfo]:
    """All users."""
    rows = conn.execute(
        "SELECT id, name, offline_right, validity_seconds FROM users ORDER BY name"
    ).fetchall()
    return [UserInfo(r[0], r[1], bool(r[2]), r[3]) for r in rows]


def set_user_offline(
    conn: sqlite3.Connection,
    user_id: str,
    enabled: bool,
    validity_seconds: int | None,
    now: float,
) -> int:
    """Set a user's offline right and, if given, the offline validity; return how many of the
    user's reported copies were marked revoked by taking the right."""
    if validity_seconds is not None and validity_seconds <= 0:
        raise bad_request("The offline validity must be positive.")
    with transaction(conn):
        conn.execute("UPDATE users SET offline_right = ? WHERE id = ?", (int(enabled), user_id))
        if validity_seconds is not None:
            conn.execute(
                "UPDATE users SET validity_seconds = ? WHERE id = ?", (validity_seconds, user_id)
            )
        if enabled:
            return 0
        return copies.mark_revoked(conn, now, "offline right taken", user_id=user_id)


def delete_user(conn: sqlite3.Connection, user_id: str, now: float) -> UserDeletion:
    """Delete a user with their rights, feeds and sessions, in one transaction.

    The records stay (other users may hold rights on them). The user's tokens get 401 and a
    new login fails like a wrong password.
    """
    with transaction(conn):
        validity = user_by_id(conn, user_id).validity_seconds
        sessions = _end_sessions(conn, "user_id", user_id, now)
        rights = conn.execute("DELETE FROM rights WHERE user_id = ?", (user_id,)).rowcount
        conn.execute("DELETE FROM create_rights WHERE user_id = ?", (user_id,))
        feed.forget_user(conn, user_id)
        copies.mark_revoked(conn, now, "user deleted", user_id=user_id)
        conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    return UserDeletion(rights, sessions, validity)


def end_sessions(conn: sqlite3.Connection, user_id: str, now: float) -> int:
    """Revoke every token of a user (for example after a password reset); return how many
    of them were still valid."""
    with transaction(conn):
        return _end_sessions(conn, "user_id", user_id, now)


def _end_sessions(
    conn: sqlite3.Connection, column: Literal["user_id", "db"], value: str, now: float
) -> int:
    # The column is one of two literals, never input: S608 does not apply.
    active = conn.execute(
        f"SELECT COUNT(*) FROM tokens WHERE {column} = ? AND expires_at >= ?",  # noqa: S608
        (value, now),
    ).fetchone()[0]
    conn.execute(f"DELETE FROM tokens WHERE {column} = ?", (value,))  # noqa: S608
    return int(active)


def longest_validity(conn: sqlite3.Connection) -> int:
    """The longest offline validity of any user, in seconds (0 without users)."""
    row = conn.execute("SELECT MAX(validity_seconds) FROM users").fetchone()
    return int(row[0] or 0)


def set_password(
    conn: sqlite3.Connection,
    user_id: str,
    new_password: str,
    *,
    changed_by: TokenOwner | None = None,
) -> int:
    """Replace a user's password and return its new password generation (one more than
    before). Existing tokens stay valid but keep the generation they were issued under, so an
    offline client can tell a session of an older password; ``changed_by`` (the token whose
    holder changed it, knowing both passwords) moves to the new generation."""
    if not new_password:
        raise bad_request("The new password must not be empty.")
    salt, pw_hash = hash_password(new_password)
    with transaction(conn):
        conn.execute(
            "UPDATE users SET pw_salt = ?, pw_hash = ? WHERE id = ?", (salt, pw_hash, user_id)
        )
        generation = password_generation(conn, user_id) + 1
        conn.execute(
            "INSERT OR REPLACE INTO password_generations (user_id, generation) VALUES (?, ?)",
            (user_id, generation),
        )
        if changed_by is not None:
            conn.execute(
                "INSERT OR REPLACE INTO token_generations (token_hash, generation) VALUES (?, ?)",
                (changed_by.token_hash, generation),
            )
    return generation


def password_generation(conn: sqlite3.Connection, user_id: str) -> int:
    """How many times the user's password was changed (0 for never)."""
    row = conn.execute(
        "SELECT generation FROM password_generations WHERE user_id = ?", (user_id,)
    ).fetchone()
    return int(row[0]) if row is not None else 0


def check_password(conn: sqlite3.Connection, username: str, password: str) -> UserInfo:
    """The user if the password is right; 401 ``bad_credentials`` otherwise (same for both)."""
    row = conn.execute(
        "SELECT id, pw_salt, pw_hash FROM users WHERE name = ?", (username,)
    ).fetchone()
    if row is None:
        # Hash anyway, so that the answer time does not reveal which user names exist.
        verify_password(password, _DUMMY_SALT, b"")
    if row is None or not verify_password(password, row[1], row[2]):
        raise ApiError(
            401, "bad_credentials", "Login failed", "The user name or the password is wrong."
        )
    return user_by_id(conn, row[0])


def open_session(
    conn: sqlite3.Connection, db: str, user_id: str, client_id: str, now: float
) -> str:
    """Issue a new bearer token for this user and database; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))
        conn.execute(
            "DELETE FROM token_generations WHERE token_hash NOT IN (SELECT token_hash FROM tokens)"
        )
        conn.execute(
            "INSERT INTO tokens (token_hash, user_id, db, client_id, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (_token_hash(token), user_id, db, client_id, now + TOKEN_LIFETIME_S),
        )
        conn.execute(
            "INSERT INTO token_generations (token_hash, generation) VALUES (?, ?)",
            (_token_hash(token), password_generation(conn, user_id)),
        )
    return token


def resolve_token(conn: sqlite3.Connection, token: str, now: float) -> TokenOwner:
    """Whom a token belongs to; 401 ``bad_token`` if unknown, revoked or expired."""
    token_hash = _token_hash(token)
    row = conn.execute(
        "SELECT t.user_id, u.name, t.db, t.client_id, t.expires_at, coalesce(g.generation, 0)"
        " FROM tokens t JOIN users u ON u.id = t.user_id"
        " LEFT JOIN token_generations g ON g.token_hash = t.token_hash WHERE t.token_hash = ?",
        (token_hash,),
    ).fetchone()
    if row is None or row[4] < now:
        raise bad_token()
    return TokenOwner(row[0], row[1], row[2], row[3], token_hash, int(row[5]))


def revoke_token(conn: sqlite3.Connection, owner: TokenOwner) -> None:
    """Revoke one token (logout)."""
    with transaction(conn):
        conn.execute("DELETE FROM tokens WHERE token_hash = ?", (owner.token_hash,))
        conn.execute("DELETE FROM token_generations WHERE token_hash = ?", (owner.token_hash,))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ManagerToken:
    """A server manager API token as listed (its label and creation time; never the token)."""

    label: str
    created_at: float


def create_manager_token(conn: sqlite3.Connection, label: str, now: float) -> str:
    """Issue a server manager API token under a new ``label``; only its hash is stored, so the
    token is shown this once."""
    check_name("token label", label)
    token = "psrm_" + secrets.token_urlsafe(32)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM manager_tokens WHERE label = ?", (label,)).fetchone():
            raise ApiError(
                409,
                "token_exists",
                "Token exists",
                f"A server manager token labelled {label!r} exists; revoke it first or choose "
                "another label.",
            )
        conn.execute(
            "INSERT INTO manager_tokens (token_hash, label, created_at) VALUES (?, ?, ?)",
            (_token_hash(token), label, now),
        )
    return token


def revoke_manager_token(conn: sqlite3.Connection, label: str) -> None:
    """Revoke the server manager token with this label (404 if there is none)."""
    with transaction(conn):
        cur = conn.execute("DELETE FROM manager_tokens WHERE label = ?", (label,))
    if cur.rowcount == 0:
        raise ApiError(
            404,
            "unknown_token",
            "Unknown token",
            f"There is no server manager token labelled {label!r}.",
        )


def list_manager_tokens(conn: sqlite3.Connection) -> list[ManagerToken]:
    """The server manager tokens, by label."""
    rows = conn.execute("SELECT label, created_at FROM manager_tokens ORDER BY label").fetchall()
    return [ManagerToken(label, created_at) for label, created_at in rows]


def is_manager_token(conn: sqlite3.Connection, token: str) -> bool:
    """Whether ``token`` is a valid server manager token."""
    row = conn.execute(
        "SELECT 1 FROM manager_tokens WHERE token_hash = ?", (_token_hash(token),)
    ).fetchone()
    return row is not None
