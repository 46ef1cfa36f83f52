"""A fast feed server for the bench: the documented sync protocol for one user, served from
memory with every page encoded (and gzipped) before the clock starts.

Why: against the reference server a first sync measures the server as much as the client (it
reads SQLite, builds JSON and gzips every page while the client waits). This server does that
work once, at start-up, so a sync costs it a dictionary lookup and a ``sendall`` per page
(about 0.02 s of its CPU for a first sync of 100k records) and the figures measure the add-on.

It follows ``docs/sync-api.yaml`` closely enough for the real add-on: ``POST /session``,
``GET .../offline/policy``, ``GET .../offline/head`` (ETag, ``If-None-Match`` -> ``304`` with a
``Date``), ``GET .../offline/changes?cursor=&limit=`` (opaque cursors, ``remaining``, the last
page's digest computed with :mod:`offline_addon.protocol.digest`), problem+json errors. Bodies
of 1400 bytes and more are sent gzipped (level 1) to a client that accepts gzip, as the
reference server does, unless the server is started with ``gzip=False``.

Feed model (as the reference server's): one row per record, in sequence order; a change moves
the record's row to the end with a new sequence number; a delete leaves a ``delete`` row; a
first page without cursor skips ``delete`` rows. Bench-only control endpoints under ``/bench/``
(loopback, no auth) change records and report the server's CPU time; the pages a client will
ask for next (the first-sync chain, and the new tail after a change) are encoded right away,
before the bench times anything.

Run as ``python -m bench.feedserver`` with a JSON job on stdin (see :class:`FeedServerProcess`,
which the bench uses); it prints ``listening on <url>`` when every page is ready.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bench.dataset import BASE_TIME, Kind, changed_note, database_name, make_records, record_ids
from offline_addon.protocol.digest import line_hash, make_digest
from reference_server.testing import end_process

API = "/api/v1"
GZIP_MIN_BYTES = 1400  # as the reference server (reference_server/app.py)
GZIP_LEVEL = 1
MAX_PAGE = 5000
VALIDITY_SECONDS = 7 * 24 * 3600
_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


@dataclass
class _Row:
    record_id: str
    upsert: bool
    fragment: bytes  # the change as JSON, ready to join into a page


@dataclass
class _Page:
    raw: bytes
    packed: bytes | None  # gzipped, for a client that accepts it
    next_seq: int
    has_more: bool


@dataclass
class _Record:
    rev: int
    name: str
    fields: dict[str, str]
    updated_at: float


@dataclass
class FeedDatabase:
    """One user's feed of one database, in memory.

    ``rows[seq - 1]`` is the row with sequence number ``seq`` (None once the record's row moved
    on to a later number). ``pages`` caches encoded pages by ``(after_seq, limit, first)``;
    any change empties it, because every page's ``remaining`` changes with it."""

    name: str
    token: str
    records: dict[str, _Record] = field(default_factory=dict)
    rows: list[_Row | None] = field(default_factory=list)
    seq_of: dict[str, int] = field(default_factory=dict)
    count: int = 0
    total: int = 0
    changes_made: int = 0
    pages: dict[tuple[int, int, bool], _Page] = field(default_factory=dict)

    @property
    def head_seq(self) -> int:
        return len(self.rows)

    def digest(self) -> dict[str, object]:
        d = make_digest(self.count, self.total)
        return {"count": d.count, "sum": d.sum, "algorithm": "sha256-sum"}

    # -- writing the feed ----------------------------------------------------------------

    def put(self, record_id: str, record: _Record | None, reason: str = "deleted") -> None:
        """Write the record's row at the end of the feed (``None``: a delete row)."""
        old_seq = self.seq_of.get(record_id)
        if old_seq is not None:
            old = self.rows[old_seq - 1]
            self.rows[old_seq - 1] = None
            if old is not None and old.upsert:
                held = self.records[record_id]
                self.count -= 1
                self.total -= line_hash(record_id, held.rev)
        if record is None:
            sid = _encode(record_id)
            fragment = f'{{"op":"delete","id":{sid},"reason":{_encode(reason)}}}'
            self.records.pop(record_id, None)
        else:
            self.records[record_id] = record
            self.count += 1
            self.total += line_hash(record_id, record.rev)
            fragment = _upsert_json(record_id, record)
        self.rows.append(_Row(record_id, record is not None, fragment.encode("ascii")))
        self.seq_of[record_id] = len(self.rows)
        self.pages.clear()

    def change(self, update: int, delete: int, insert: int) -> dict[str, Any]:
        """Update ``update`` records (a new note and rev), delete ``delete``, insert ``insert``
        new ones: the records changed longest ago first, so that repeated calls change
        different records."""
        live = [r for r in self.rows if r is not None and r.upsert]
        picked = live[: update + delete]
        now = time.time()
        for row in picked[:update]:
            old = self.records[row.record_id]
            fields = dict(old.fields)
            fields["notes"] = changed_note(self.changes_made)
            self.changes_made += 1
            self.put(row.record_id, _Record(old.rev + 1, old.name, fields, now))
        for row in picked[update:]:
            self.put(row.record_id, None)
        for serial in range(insert):
            rid = f"new-{self.changes_made:08d}-{serial:04d}-{secrets.token_hex(4)}"
            self.changes_made += 1
            fields = {
                "username": f"new{serial}",
                "password": secrets.token_hex(8),
                "notes": changed_note(self.changes_made),
            }
            self.put(rid, _Record(1, f"New entry {self.changes_made:08d}", fields, now))
        return {"head_seq": self.head_seq, "count": self.count, "digest": self.digest()}

    # -- reading the feed ----------------------------------------------------------------

    def page(self, after: int, limit: int, first: bool, cursor: CursorCodec) -> _Page:
        """The page after sequence ``after`` (``first``: no cursor was sent, so delete rows
        are skipped), encoded."""
        parts: list[bytes] = []
        seq = after
        rows = self.rows
        while seq < len(rows) and len(parts) < limit:
            row = rows[seq]
            seq += 1
            if row is not None and (row.upsert or not first):
                parts.append(row.fragment)
        if first and len(parts) < limit:
            seq = len(rows)  # only skipped delete rows lay ahead: the page ends at the head
        remaining = sum(1 for row in rows[seq:] if row is not None)
        has_more = remaining > 0
        text = (
            b'{"changes":['
            + b",".join(parts)
            + b'],"next_cursor":"'
            + cursor.encode(self.name, seq).encode("ascii")
            + b'","has_more":'
            + (b"true" if has_more else b"false")
            + b',"remaining":%d' % remaining
        )
        if not has_more:
            text += b',"digest":' + _encode(self.digest()).encode("ascii")
        return _Page(text + b"}", None, seq, has_more)

    def encoded_page(
        self, after: int, limit: int, first: bool, cursor: CursorCodec, zipped: bool
    ) -> _Page:
        """A page from the cache, or encoded (and gzipped when ``zipped``) now."""
        key = (after, limit, first)
        hit = self.pages.get(key)
        if hit is None:
            hit = self.page(after, limit, first, cursor)
            if zipped and len(hit.raw) >= GZIP_MIN_BYTES:
                hit.packed = gzip.compress(hit.raw, compresslevel=GZIP_LEVEL, mtime=0)
            self.pages[key] = hit
        return hit

    def warm(self, start: int, first: bool, limit: int, cursor: CursorCodec, zipped: bool) -> int:
        """Encode the chain of pages a sync from ``start`` will ask for; return how many."""
        after, pages = start, 0
        while True:
            page = self.encoded_page(after, limit, first, cursor, zipped)
            pages += 1
            if not page.has_more:
                return pages
            after, first = page.next_seq, False


def _upsert_json(record_id: str, record: _Record) -> str:
    sid = _encode(record_id)
    return (
        f'{{"op":"upsert","id":{sid},"rev":{record.rev},"record":{{"id":{sid},'
        f'"rev":{record.rev},"name":{_encode(record.name)},"fields":{_encode(record.fields)},'
        f'"updated_at":{record.updated_at!r}}}}}'
    )


class CursorCodec:
    """Opaque cursors: the database and a feed position under this server's epoch."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch

    def encode(self, database: str, seq: int) -> str:
        text = f"{self.epoch}:{seq}:{database}".encode()
        return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")

    def decode(self, database: str, cursor: str) -> int:
        """The position of ``cursor``; ValueError if it is not one of ours for ``database``."""
        padded = cursor + "=" * (-len(cursor) % 4)
        epoch, seq, name = base64.urlsafe_b64decode(padded).decode().split(":", 2)
        if epoch != self.epoch or name != database or not seq.isdigit():
            raise ValueError("not a cursor of this feed")
        return int(seq)


@dataclass
class FeedState:
    """Everything the server holds: the user, the databases, the cursor codec, counters."""

    username: str
    password: str
    user_id: str
    zipped: bool
    limits: tuple[int, ...]
    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    databases: dict[str, FeedDatabase] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self.cursor = CursorCodec(self.epoch)

    def load(self, name: str, kind: Kind, count: int) -> None:
        """Create database ``name`` with the bench's ``count`` records of ``kind``."""
        db = FeedDatabase(name, secrets.token_hex(24))
        ids = record_ids(count)
        for i, (rid, item) in enumerate(zip(ids, make_records(kind, count), strict=True)):
            db.put(rid, _Record(1, item["name"], item["fields"], BASE_TIME + i))
        self.databases[name] = db
        for limit in self.limits:
            db.warm(0, True, limit, self.cursor, self.zipped)


# --- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # TCP_NODELAY
    server_version = "bench-feedserver"
    sys_version = ""
    state: FeedState  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        mime: str = "application/json",
        headers: Mapping[str, str] | None = None,
        packed: bytes | None = None,
    ) -> None:
        use_gzip = packed is not None and "gzip" in self.headers.get("Accept-Encoding", "")
        payload = packed if use_gzip and packed is not None else body
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        if status != 304:
            self.wfile.write(payload)
        with self.state.lock:
            self.state.requests += 1
            self.state.bytes_sent += len(payload)

    def _json(
        self, value: object, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        body = _encode(value).encode("ascii")
        packed = (
            gzip.compress(body, GZIP_LEVEL, mtime=0)
            if (self.state.zipped and len(body) >= GZIP_MIN_BYTES)
            else None
        )
        self._send(status, body, headers=headers, packed=packed)

    def _problem(self, status: int, code: str, detail: str) -> None:
        body = _encode(
            {
                "type": "about:blank",
                "title": code.replace("_", " "),
                "status": status,
                "code": code,
                "detail": detail,
            }
        ).encode("ascii")
        self._send(status, body, mime="application/problem+json")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def _database(self, name: str) -> FeedDatabase | None:
        db = self.state.databases.get(name)
        if db is None:
            self._problem(404, "unknown_database", f"There is no database {name!r}.")
            return None
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), db.token):
            self._problem(401, "bad_token", "Log in first to get a token for this database.")
            return None
        return db

    # -- routes --------------------------------------------------------------------------

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path == f"{API}/session":
            self._login(body)
        elif url.path.startswith("/bench/databases/") and url.path.endswith("/changes"):
            self._control_change(unquote(url.path.split("/")[3]), body)
        else:
            self._problem(404, "not_found", "There is no such endpoint.")

    def do_PUT(self) -> None:
        # The copies registry (a client reports its copy after each sync): taken and echoed,
        # not kept; a client that got no 200 would report again after every sync.
        db, client_id = self._copy_route()
        if db is None:
            return
        body = self._body()
        if not isinstance(body, dict):
            self._problem(400, "bad_request", "The request body must be a JSON object.")
            return
        now = time.time()
        self._json(
            {
                "database": db.name,
                "username": self.state.username,
                "client_id": client_id,
                "state": "present",
                "last_sync": now,
                "record_count": body.get("record_count", 0),
                "pending_changes": body.get("pending_changes", 0),
                "unpushed_log_entries": body.get("unpushed_log_entries", 0),
                "complete": bool(body.get("complete", False)),
                "changed_at": now,
                "why": None,
            }
        )

    def do_DELETE(self) -> None:
        db, _ = self._copy_route()
        if db is not None:
            self._send(204, b"")

    def _copy_route(self) -> tuple[FeedDatabase | None, str]:
        """The database and client id of ``/databases/{db}/offline/copies/{client_id}``
        (None after answering a wrong path or token)."""
        parts = urlsplit(self.path).path.split("/")
        if (
            not self.path.startswith(f"{API}/databases/")
            or len(parts) != 8
            or parts[5:7] != ["offline", "copies"]
        ):
            self._problem(404, "not_found", "There is no such endpoint.")
            return None, ""
        return self._database(unquote(parts[4])), unquote(parts[7])

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.split("/")
        if url.path == "/bench/stats":
            self._json(
                {
                    "cpu_seconds": time.process_time(),
                    "requests": self.state.requests,
                    "bytes_sent": self.state.bytes_sent,
                }
            )
            return
        prefix = f"{API}/databases/"
        if not url.path.startswith(prefix) or len(parts) != 7 or parts[5] != "offline":
            self._problem(404, "not_found", "There is no such endpoint.")
            return
        db = self._database(unquote(parts[4]))
        if db is None:
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if parts[6] == "policy":
            self._json(
                {
                    "offline_enabled": True,
                    "offline_editing": False,
                    "offline_right": True,
                    "validity_seconds": VALIDITY_SECONDS,
                    "server_time": time.time(),
                }
            )
        elif parts[6] == "head":
            self._head(db)
        elif parts[6] == "changes":
            self._changes(db, query)
        else:
            self._problem(404, "not_found", "There is no such endpoint.")

    def _login(self, body: Any) -> None:
        state = self.state
        if not isinstance(body, dict):
            self._problem(400, "bad_request", "The request body must be a JSON object.")
            return
        db = state.databases.get(str(body.get("database")))
        if db is None:
            self._problem(404, "unknown_database", "There is no such database.")
            return
        if body.get("username") != state.username or body.get("password") != state.password:
            self._problem(401, "bad_credentials", "Wrong user name or password.")
            return
        self._json(
            {
                "token": db.token,
                "user_id": state.user_id,
                "username": state.username,
                "server_time": time.time(),
            }
        )

    def _head(self, db: FeedDatabase) -> None:
        etag = f'"{self.state.epoch}-{db.head_seq}-{VALIDITY_SECONDS}-0"'  # editing off
        sent = {
            t.strip().removeprefix("W/") for t in self.headers.get("If-None-Match", "").split(",")
        }
        if etag in sent:
            self._send(304, headers={"ETag": etag})  # send_response adds Date
            return
        self._json(
            {
                "seq": db.head_seq,
                "offline_enabled": True,
                "offline_editing": False,
                "offline_right": True,
                "validity_seconds": VALIDITY_SECONDS,
                "server_time": time.time(),
            },
            headers={"ETag": etag},
        )

    def _changes(self, db: FeedDatabase, query: Mapping[str, str]) -> None:
        raw_limit = query.get("limit", "500") or "500"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            self._problem(400, "bad_limit", f"'limit' must be a whole number from 1 to {MAX_PAGE}.")
            return
        raw_cursor = query.get("cursor", "")
        after = 0
        if raw_cursor:
            try:
                after = self.state.cursor.decode(db.name, raw_cursor)
            except (ValueError, UnicodeDecodeError):
                self._problem(400, "bad_cursor", "The cursor is not valid; start again.")
                return
        with self.state.lock:
            page = db.encoded_page(
                after, int(raw_limit), not raw_cursor, self.state.cursor, self.state.zipped
            )
        self._send(200, page.raw, packed=page.packed)

    def _control_change(self, name: str, body: Any) -> None:
        db = self.state.databases.get(name)
        if db is None or not isinstance(body, dict):
            self._problem(404, "unknown_database", "There is no such database.")
            return
        with self.state.lock:
            before = db.head_seq
            answer = db.change(
                int(body.get("update", 0)), int(body.get("delete", 0)), int(body.get("insert", 0))
            )
            # The page a copy at the old head asks for next, encoded before the bench times it.
            for limit in self.state.limits:
                db.warm(before, False, limit, self.state.cursor, self.state.zipped)
        self._json(answer)


def serve(state: FeedState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server over ``state`` (call ``serve_forever``)."""
    handler = type("FeedHandler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _main() -> None:
    job = json.loads(sys.stdin.read())
    state = FeedState(
        job["username"], job["password"], job["user_id"], bool(job["gzip"]), tuple(job["limits"])
    )
    for kind, count in job["databases"]:
        state.load(database_name(kind, count), kind, count)
    server = serve(state)
    host, port = server.server_address[:2]
    print(f"listening on http://{host!s}:{port}", flush=True)
    server.serve_forever()


# --- the bench's side ------------------------------------------------------------------------


class FeedServerProcess:
    """``python -m bench.feedserver`` as a child process (its own core, as a real server)."""

    def __init__(
        self,
        databases: Sequence[tuple[Kind, int]],
        *,
        limits: Sequence[int],
        username: str,
        password: str,
        gzip: bool = True,
    ) -> None:
        self._job = {
            "databases": [list(d) for d in databases],
            "limits": list(limits),
            "username": username,
            "password": password,
            "user_id": "00000000-bench-user",
            "gzip": gzip,
        }
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 600.0) -> FeedServerProcess:
        from reference_server.testing import read_line

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.feedserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self._job))
        self._proc.stdin.close()
        line = read_line(self._proc.stdout, timeout)
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the feed server did not start (first line: {line!r})")
        self.url = line.removeprefix("listening on ").strip()
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc)

    def __enter__(self) -> FeedServerProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def change(
        self, database: str, *, update: int = 0, delete: int = 0, insert: int = 0
    ) -> dict[str, Any]:
        """Change records on the server; returns ``{"head_seq", "count", "digest"}``."""
        import requests

        resp = requests.post(
            f"{self.url}/bench/databases/{database}/changes",
            json={"update": update, "delete": delete, "insert": insert},
            timeout=600,
        )
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (start-up included)."""
        import requests

        resp = requests.get(f"{self.url}/bench/stats", timeout=30)
        resp.raise_for_status()
        return float(resp.json()["cpu_seconds"])


if __name__ == "__main__":
    _main()
