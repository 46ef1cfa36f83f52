"""The baselines: the plainest fetch-decode-insert loops this machine can run.

A ``requests.Session`` with keep-alive pulls the change feed page by page, ``json`` decodes it,
and ``executemany`` writes the upserts into a SQLCipher file keyed with the same password and
prepared with the same pragmas as the add-on's copies (``offline_addon.storage.cipher``: WAL,
``synchronous=NORMAL``, the same cache size), one transaction per page. No validation, no
digest, no cursor bookkeeping. Two variants:

- **plain loop**: the records table only (the practical limit of a client without search);
- **plain loop + index**: the same loop keeping the index the add-on keeps, the way a
  straightforward implementation would, page by page in the page's transaction: the
  contentless FTS5 ``records_fts`` (same tokenizer, same body text: every field but the
  password) and the ``records_name_trigrams`` trigram index. The page's ids are looked up
  first, so that updates and deletes unindex the old rows; new records get rowids after the
  last one, so that their index rows need no read-back (as the add-on does; an
  ``INSERT ... SELECT rowid`` per row would be about twice as slow).

The add-on must beat the second clearly (it knows more: a first sync only inserts) and come
close to the first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlcipher3

_PRAGMAS_AS_OF_WRITING = (
    "PRAGMA cipher_memory_security = OFF",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 4000",
    "PRAGMA cache_size = -8192",
    "PRAGMA temp_store = MEMORY",
)


def copy_pragmas() -> tuple[str, ...]:
    """The add-on's pragmas for its copies (so that the baseline follows when they change)."""
    try:
        from offline_addon.storage.cipher import PRAGMAS
    except ImportError:  # moved or renamed by a later change: the values measured so far
        return _PRAGMAS_AS_OF_WRITING
    return tuple(PRAGMAS)


_SCHEMA = (
    "CREATE TABLE records (id TEXT PRIMARY KEY NOT NULL, rev INTEGER NOT NULL,"
    " name TEXT NOT NULL, fields TEXT NOT NULL, updated_at REAL NOT NULL)",
)
_INDEX_SCHEMA = (
    # As offline_addon/storage/migrations.py (v7 and v4): the same index the add-on keeps.
    "CREATE VIRTUAL TABLE records_fts USING fts5(name, body, content='', contentless_delete=1,"
    " detail=none, tokenize='unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE records_name_trigrams USING fts5(name, detail=none, tokenize='trigram')",
)
_HELD = "SELECT r.id, r.rowid FROM json_each(?) AS j JOIN records AS r ON r.id = j.value"


@dataclass(frozen=True)
class Login:
    """A bench user's online session (the token is short-lived and only used on loopback)."""

    server_url: str
    database: str
    user_id: str
    username: str
    password: str
    client_id: str
    token: str


@dataclass(frozen=True)
class PlainRun:
    """What a plain loop did: upserts written, seconds, the cursor to continue from."""

    records: int
    seconds: float
    cursor: str | None


def login(server_url: str, database: str, username: str, password: str, client_id: str) -> Login:
    """POST /session and return the session."""
    resp = requests.post(
        f"{server_url}/api/v1/session",
        json={
            "database": database,
            "username": username,
            "password": password,
            "client_id": client_id,
        },
        timeout=30,
    )
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return Login(
        server_url, database, body["user_id"], username, password, client_id, body["token"]
    )


def _headers(who: Login) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}", "X-Client-Id": who.client_id}


def _changes_url(who: Login) -> str:
    return f"{who.server_url}/api/v1/databases/{who.database}/offline/changes"


def open_plain(target: Path, password: str, *, index: bool, create: bool) -> Any:
    """A SQLCipher connection keyed and prepared like the add-on's (schema made if ``create``)."""
    conn = sqlcipher3.connect(str(target))
    escaped = password.replace("'", "''")
    conn.execute(f"PRAGMA key = '{escaped}'")
    for pragma in copy_pragmas():
        conn.execute(pragma).fetchall()
    if create:
        for statement in _SCHEMA + (_INDEX_SCHEMA if index else ()):
            conn.execute(statement)
        conn.commit()
    return conn


def _write_page(conn: Any, changes: list[dict[str, Any]]) -> int:
    """The plain loop's page: replace upserts, drop deletes, one transaction."""
    upserts = [c for c in changes if c["op"] == "upsert"]
    conn.executemany(
        "DELETE FROM records WHERE id = ?", [(c["id"],) for c in changes if c["op"] == "delete"]
    )
    conn.executemany(
        "INSERT OR REPLACE INTO records (id, rev, name, fields, updated_at) VALUES (?, ?, ?, ?, ?)",
        [
            (
                c["id"],
                c["rev"],
                c["record"]["name"],
                json.dumps(c["record"]["fields"]),
                c["record"]["updated_at"],
            )
            for c in upserts
        ],
    )
    conn.commit()
    return len(upserts)


def _write_indexed_page(conn: Any, changes: list[dict[str, Any]]) -> int:
    """The plain loop + index's page: look the page's ids up, unindex what goes or changes,
    write, index what is new or changed (new records get rowids after the last one, so
    their index rows need no read-back), one transaction."""
    held = dict(conn.execute(_HELD, (json.dumps([c["id"] for c in changes]),)).fetchall())
    upserts = [c for c in changes if c["op"] == "upsert"]
    old = [(held[c["id"]],) for c in changes if c["id"] in held]
    conn.executemany("DELETE FROM records_fts WHERE rowid = ?", old)
    conn.executemany("DELETE FROM records_name_trigrams WHERE rowid = ?", old)
    conn.executemany(
        "DELETE FROM records WHERE id = ?",
        [(c["id"],) for c in changes if c["op"] == "delete" and c["id"] in held],
    )
    first = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]) + 1
    rows = []
    for c in upserts:
        rowid = held.get(c["id"])
        if rowid is None:
            rowid, first = first, first + 1
        record = c["record"]
        rows.append(
            (
                rowid,
                c["id"],
                c["rev"],
                record["name"],
                json.dumps(record["fields"]),
                record["updated_at"],
                _body(record["fields"]),
            )
        )
    conn.executemany(
        "INSERT OR REPLACE INTO records (rowid, id, rev, name, fields, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [r[:6] for r in rows],
    )
    conn.executemany(
        "INSERT INTO records_fts (rowid, name, body) VALUES (?, ?, ?)",
        [(r[0], r[3], r[6]) for r in rows],
    )
    conn.executemany(
        "INSERT INTO records_name_trigrams (rowid, name) VALUES (?, ?)",
        [(r[0], r[3]) for r in rows],
    )
    conn.commit()
    return len(upserts)


def _body(fields: dict[str, str]) -> str:
    return " ".join(value for key, value in fields.items() if key.lower() != "password")


def plain_first_sync(who: Login, target: Path, limit: int, *, index: bool) -> PlainRun:
    """A first sync by the plain loop (``index``: + the add-on's index) into a fresh file:
    keying it (the KDF, as the add-on's create), the whole feed, closing it."""
    started = time.perf_counter()
    conn = open_plain(target, who.password, index=index, create=True)
    try:
        with requests.Session() as http:
            run = plain_pull(who, conn, limit, None, index=index, http=http)
    finally:
        conn.close()
    return PlainRun(run.records, time.perf_counter() - started, run.cursor)


def plain_pull(
    who: Login,
    conn: Any,
    limit: int,
    start: str | None,
    *,
    index: bool,
    http: requests.Session,
) -> PlainRun:
    """Pull the feed from ``start`` (None: the beginning) to its end into the open file
    ``conn``, over the kept-alive ``http``; ``index``: keep the add-on's index too."""
    started = time.perf_counter()
    write = _write_indexed_page if index else _write_page
    count = 0
    cursor = start
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        resp = http.get(_changes_url(who), params=params, headers=_headers(who), timeout=(5, 60))
        resp.raise_for_status()
        page = json.loads(resp.content)
        count += write(conn, page["changes"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    return PlainRun(count, time.perf_counter() - started, cursor)


def drain(who: Login, limit: int) -> tuple[int, float]:
    """Fetch every page of a first sync and keep nothing: (changes, seconds). What the server
    and the transfer cost, with the least client work (the cursor is read from the page's
    tail; the changes are counted, not decoded)."""
    started = time.perf_counter()
    count = 0
    cursor: str | None = None
    with requests.Session() as http:
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            resp = http.get(
                _changes_url(who), params=params, headers=_headers(who), timeout=(5, 120)
            )
            resp.raise_for_status()
            body = resp.content
            tail = json.loads(b"{" + body[body.rindex(b'"next_cursor"') :])
            count += body.count(b'{"op":')
            cursor = tail["next_cursor"]
            if not tail["has_more"]:
                return count, time.perf_counter() - started


def changes_round_trip(who: Login, cursor: str | None, limit: int) -> float:
    """Seconds for one GET of the changes page at ``cursor`` (the server's work and the
    transfer, nothing stored): what "one round trip" costs for the page a sync would fetch.
    Reading the feed changes nothing on the server, so the sync that follows sees the same."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    with requests.Session() as http:
        http.get(
            f"{who.server_url}/api/v1/databases/{who.database}/offline/head",
            headers=_headers(who),
            timeout=(5, 60),
        ).raise_for_status()  # connect first
        started = time.perf_counter()
        resp = http.get(_changes_url(who), params=params, headers=_headers(who), timeout=(5, 60))
        resp.raise_for_status()
        json.loads(resp.content)
        return time.perf_counter() - started
