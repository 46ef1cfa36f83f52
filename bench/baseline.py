"""The baseline: the plainest fetch-decode-insert loop this machine can run.

A requests.Session with keep-alive pulls the change feed page by page, decodes the JSON, and
``executemany`` inserts the upserts into a SQLCipher file keyed with the same password, one
commit per page. No validation, no full-text index, no cursor bookkeeping: this is the practical
limit the add-on is measured against (issue 6: the add-on must reach >= 0.65x of it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlcipher3


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


def baseline_sync(who: Login, target: Path, limit: int) -> tuple[int, float]:
    """Pull the whole feed into a fresh SQLCipher file. Returns (records, seconds)."""
    count, seconds, _ = baseline_pull(who, target, limit, None)
    return count, seconds


def baseline_pull(
    who: Login, target: Path, limit: int, start: str | None
) -> tuple[int, float, str | None]:
    """Pull the feed from ``start`` (None: from the beginning, into a fresh file) to its end.

    Returns (upserts written, seconds, the cursor to continue from)."""
    url = f"{who.server_url}/api/v1/databases/{who.database}/offline/changes"
    headers = {"Authorization": f"Bearer {who.token}", "X-Client-Id": who.client_id}
    started = time.perf_counter()
    conn = sqlcipher3.connect(str(target))
    try:
        escaped = who.password.replace("'", "''")
        conn.execute(f"PRAGMA key = '{escaped}'")
        if start is None:
            conn.execute(
                "CREATE TABLE records (id TEXT PRIMARY KEY, rev INTEGER, name TEXT, fields TEXT)"
            )
            conn.commit()
        count = 0
        cursor = start
        with requests.Session() as http:
            while True:
                params: dict[str, str | int] = {"limit": limit}
                if cursor is not None:
                    params["cursor"] = cursor
                resp = http.get(url, params=params, headers=headers, timeout=(5, 60))
                resp.raise_for_status()
                page = resp.json()
                rows = [
                    (c["id"], c["rev"], c["record"]["name"], json.dumps(c["record"]["fields"]))
                    for c in page["changes"]
                    if c["op"] == "upsert"
                ]
                gone = [(c["id"],) for c in page["changes"] if c["op"] == "delete"]
                conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", rows)
                conn.executemany("DELETE FROM records WHERE id = ?", gone)
                conn.commit()
                count += len(rows)
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
    finally:
        conn.close()
    return count, time.perf_counter() - started, cursor


def changes_round_trip(who: Login, cursor: str | None, limit: int) -> float:
    """Seconds for one GET of the changes page at ``cursor`` (the server's work and the
    transfer, nothing stored): what "one round trip" costs for the page a sync would fetch.
    Reading the feed changes nothing on the server, so the sync that follows sees the same."""
    url = f"{who.server_url}/api/v1/databases/{who.database}/offline/changes"
    headers = {"Authorization": f"Bearer {who.token}", "X-Client-Id": who.client_id}
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    with requests.Session() as http:
        http.get(f"{who.server_url}/api/v1/databases/{who.database}/offline/head",
                 headers=headers, timeout=(5, 60)).raise_for_status()  # connect outside the timing
        started = time.perf_counter()
        resp = http.get(url, params=params, headers=headers, timeout=(5, 60))
        resp.raise_for_status()
        json.loads(resp.content)
        return time.perf_counter() - started
