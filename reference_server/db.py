"""The server's SQLite file: schema, connections, transactions and the meta table.

One file, ``server.sqlite3`` in the data folder, in WAL mode so that readers (feed pages) never
block the writer and the writer never blocks readers. Writers use ``BEGIN IMMEDIATE`` so that the
feed sequence numbers they assign are in commit order.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference_server import digests

DB_FILENAME = "server.sqlite3"
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS databases (
    name TEXT PRIMARY KEY,
    offline_allowed INTEGER NOT NULL,
    offline_editing INTEGER NOT NULL DEFAULT 0,
    offline_login_attempts INTEGER NOT NULL DEFAULT 10
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pw_salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    offline_right INTEGER NOT NULL,
    validity_seconds INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    db TEXT NOT NULL REFERENCES databases(name),
    id TEXT NOT NULL,
    rev INTEGER NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,            -- compact JSON object {str: str}
    updated_at REAL NOT NULL,
    sealed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (db, id)
);
CREATE TABLE IF NOT EXISTS rights (
    db TEXT NOT NULL,
    record_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    can_read INTEGER NOT NULL,
    can_write INTEGER NOT NULL,
    can_export INTEGER NOT NULL,
    can_delete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (db, record_id, user_id)
);
-- Per database and user: may the user create records there? No row: yes (as before the right
-- existed), so only a taken right is stored.
CREATE TABLE IF NOT EXISTS create_rights (
    db TEXT NOT NULL,
    user_id TEXT NOT NULL,
    can_create INTEGER NOT NULL,
    PRIMARY KEY (db, user_id)
);
CREATE INDEX IF NOT EXISTS rights_by_user ON rights (user_id, db);
-- One row per (user, record): the latest change only. seq is the global change sequence;
-- AUTOINCREMENT never reuses a number, and REPLACE gives a changed row a new, higher one.
CREATE TABLE IF NOT EXISTS feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    db TEXT NOT NULL,
    record_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    rev INTEGER NOT NULL,
    reason TEXT,
    changed_at REAL NOT NULL,
    UNIQUE (user_id, db, record_id)
);
CREATE INDEX IF NOT EXISTS feed_by_user_seq ON feed (user_id, db, seq);
CREATE INDEX IF NOT EXISTS feed_by_record ON feed (db, record_id);
-- Per user and database: the highest seq of a compacted (dropped) delete row. A cursor before
-- it may have missed that delete, so it gets 410.
CREATE TABLE IF NOT EXISTS horizons (
    user_id TEXT NOT NULL,
    db TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, db)
);
-- Per user and database: the digest of the user's current upsert rows (see digests.py),
-- changed in the same transaction as every feed row.
CREATE TABLE IF NOT EXISTS feed_digests (
    user_id TEXT NOT NULL,
    db TEXT NOT NULL,
    count INTEGER NOT NULL,
    sum_hex TEXT NOT NULL,
    PRIMARY KEY (user_id, db)
);
-- The audit trail: who changed which record how and when, online or offline (see audit.py).
-- Kept when users, records or databases are deleted: it is the history.
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    db TEXT NOT NULL,
    record_id TEXT,
    user_id TEXT,
    user_name TEXT NOT NULL,
    client_id TEXT,
    offline INTEGER NOT NULL,
    local_time REAL,
    change_id TEXT,
    base_rev INTEGER,
    rev INTEGER,
    field TEXT                       -- the field NAME of a reported offline access (no value)
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_by_change ON audit (user_id, client_id, change_id)
    WHERE change_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_by_record ON audit (db, record_id);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
-- The offline copies their clients report (see copies.py): one row per database, user and
-- client installation. user_name stays when the user is deleted, like the audit trail's.
CREATE TABLE IF NOT EXISTS offline_copies (
    db TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    client_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('present', 'revoked', 'wiped')),
    last_sync REAL NOT NULL,
    record_count INTEGER NOT NULL,
    pending_changes INTEGER NOT NULL,
    unpushed_log_entries INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    why TEXT,
    PRIMARY KEY (db, user_id, client_id)
);
-- The server manager's API tokens (see accounts.py): only their hashes.
CREATE TABLE IF NOT EXISTS manager_tokens (
    token_hash TEXT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    db TEXT NOT NULL,
    client_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
-- Password generations (see accounts.py): per user, bumped by every password change, per
-- token, the generation of the password it was issued under. Separate tables, so that a file
-- made before them needs no migration (a missing row is generation 0).
CREATE TABLE IF NOT EXISTS password_generations (
    user_id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS token_generations (
    token_hash TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""


def db_path(data_dir: Path) -> Path:
    """Where the server's SQLite file lives inside ``data_dir``."""
    return Path(data_dir) / DB_FILENAME


def connect(data_dir: Path) -> sqlite3.Connection:
    """Open the server's existing database file; autocommit, WAL, busy timeout.

    Never creates the file (``mode=rw``): only ``datadir.init_data_folder`` makes one, so a
    wrong path fails here instead of starting an empty server. ``check_same_thread`` is off
    because pooled connections move between waitress threads; a connection is only ever used
    by one thread at a time.
    """
    uri = db_path(data_dir).absolute().as_uri() + "?mode=rw"
    conn = sqlite3.connect(
        uri,
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def initialise(conn: sqlite3.Connection) -> None:
    """Create the schema, the HMAC secret and the epoch if they do not exist yet; fill the
    feed digests of a file made before they existed."""
    with transaction(conn):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        _add_missing_columns(conn)
        digests.migrate(conn)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (secrets.token_hex(32),)
        )
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (new_epoch(),))


# Columns added after the first release: ``CREATE TABLE IF NOT EXISTS`` leaves an older file's
# table as it was, so they are added here. The defaults keep what the older file meant:
# offline editing off, no delete right, the default limit of wrong offline passwords, no field.
_ADDED_COLUMNS = (
    ("databases", "offline_editing", "INTEGER NOT NULL DEFAULT 0"),
    ("rights", "can_delete", "INTEGER NOT NULL DEFAULT 0"),
    ("databases", "offline_login_attempts", "INTEGER NOT NULL DEFAULT 10"),
    ("audit", "field", "TEXT"),
)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def new_epoch() -> str:
    """A fresh, random epoch label (random, so that a restored file never reuses a label)."""
    return secrets.token_hex(4)


def get_meta(conn: sqlite3.Connection, key: str) -> str:
    """One value of the meta table."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise KeyError(key)
    return str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set one value of the meta table (call inside a transaction)."""
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A transaction: ``BEGIN IMMEDIATE`` for writers, a plain (snapshot) ``BEGIN`` for readers.

    Writers take the write lock up front so that sequence numbers are handed out in the order
    the transactions commit; readers get one consistent snapshot for a whole page.
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class ConnectionPool:
    """A few reusable connections for the request threads, all closed by :meth:`close`."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)
        self._idle: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for the duration of one request."""
        with self._lock:
            if self._closed:
                raise RuntimeError("connection pool is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = connect(self._data_dir)
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with self._lock:
                self._idle.append(conn)

    def close(self) -> None:
        """Close every connection (the server is shutting down)."""
        with self._lock:
            self._closed = True
            conns, self._all, self._idle = self._all, [], []
        for conn in conns:
            conn.close()
