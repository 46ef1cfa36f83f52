"""The HTTP API (``/api/v1``) as a Flask app: request parsing, auth, and answers.

The SQL lives in ``accounts``, ``records`` and ``feed``; this module only turns requests into
calls and results (or :class:`ApiError`) into JSON and problem+json answers.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from reference_server import accounts, audit, copies, feed, records, reports
from reference_server.audit import Actor
from reference_server.cursor import Cursor, InvalidCursor, decode_cursor, encode_cursor
from reference_server.datadir import open_data_folder
from reference_server.db import ConnectionPool, connect, get_meta, initialise, transaction
from reference_server.errors import (
    ApiError,
    bad_request,
    bad_token,
    client_mismatch,
    not_server_manager,
)

log = logging.getLogger("reference_server")

API = "/api/v1"
DEFAULT_PAGE = 500
MAX_PAGE = 5000
DEFAULT_LIST = 100
MAX_LIST = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024
GZIP_MIN_BYTES = 1400  # below one TCP segment compression buys nothing
GZIP_LEVEL = 1  # the fastest level already shrinks feed pages ~4x; higher ones cost CPU
_DIGITS = re.compile(r"^[0-9]{1,10}$")


@dataclass(frozen=True)
class ServerState:
    """What the request handlers share: the connection pool and the clock."""

    pool: ConnectionPool
    clock: Callable[[], float]


def create_app(data_dir: Path, clock: Callable[[], float] = time.time) -> Flask:
    """The API app over the existing data folder ``data_dir`` (see ``datadir``).

    Raises :class:`~reference_server.errors.DataFolderError` when ``data_dir`` is not a data
    folder. Call :func:`close_app` when done so that the pooled SQLite connections are closed.
    """
    conn = connect(open_data_folder(data_dir))
    try:
        initialise(conn)
    finally:
        conn.close()
    app = Flask("reference_server")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["reference_server"] = ServerState(ConnectionPool(Path(data_dir)), clock)
    _register_errors(app)
    _register_session_routes(app)
    _register_record_routes(app)
    _register_offline_routes(app)
    _register_report_routes(app)
    _register_manager_routes(app)
    app.after_request(_finish_response)
    return app


def close_app(app: Flask) -> None:
    """Close the app's SQLite connections."""
    _state(app).pool.close()


def _state(app: Flask | None = None) -> ServerState:
    state: ServerState = (app or current_app).extensions["reference_server"]
    return state


def _conn() -> sqlite3.Connection:
    """The request's pooled connection (returned to the pool at teardown)."""
    if "conn_cm" not in g:
        g.conn_cm = _state().pool.connection()
        g.conn = g.conn_cm.__enter__()
    conn: sqlite3.Connection = g.conn
    return conn


def _now() -> float:
    return _state().clock()


# --- answers -------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return Response(text, status=status, headers=headers, mimetype="application/json")


def _problem(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(error.to_problem()),
        status=error.status,
        headers=headers,
        mimetype="application/problem+json",
    )


def _finish_response(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    if (
        response.status_code == 200
        and not response.direct_passthrough
        and request.accept_encodings["gzip"] > 0
        and response.content_length is not None
        and response.content_length >= GZIP_MIN_BYTES
    ):
        response.set_data(gzip.compress(response.get_data(), compresslevel=GZIP_LEVEL, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
    return response


def _register_errors(app: Flask) -> None:
    @app.teardown_request
    def _release(_exc: BaseException | None) -> None:
        cm = g.pop("conn_cm", None)
        if cm is not None:
            cm.__exit__(None, None, None)

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return _problem(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            status, "bad_request" if status < 500 else "server_error"
        )
        detail = {
            404: "There is no such endpoint; see docs/sync-api.yaml.",
            405: "This endpoint does not support this HTTP method.",
            413: f"The request body is larger than {MAX_BODY_BYTES} bytes.",
        }.get(status, error.description or "The request was not understood.")
        return _problem(ApiError(status, code, error.name, detail))

    @app.errorhandler(sqlite3.OperationalError)
    def _busy(error: sqlite3.OperationalError) -> Response:
        if "locked" in str(error) or "busy" in str(error):
            return _problem(
                ApiError(503, "busy", "Server busy", "The server is busy; retry soon."),
                headers={"Retry-After": "1"},
            )
        return _internal(error)

    @app.errorhandler(Exception)
    def _internal(error: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return _problem(
            ApiError(
                500,
                "server_error",
                "Internal server error",
                "The server failed unexpectedly; the error is in its log.",
            )
        )


# --- request parsing -----------------------------------------------------------------------


def _body(max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:  # a chunked body has no Content-Length to check first
        raise _too_large(max_bytes)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        "Payload too large",
        f"The request body is larger than {max_bytes} bytes; send less at a time.",
    )


def _string(body: dict[str, Any], key: str, *, max_len: int = 1000) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise bad_request(f"'{key}' must be a non-empty string of at most {max_len} characters.")
    return value


def _int_arg(name: str, default: int, low: int, high: int, code: str = "bad_request") -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.match(raw) or not low <= int(raw) <= high:
        raise bad_request(f"'{name}' must be a whole number from {low} to {high}.", code)
    return int(raw)


def _owner(db: str | None = None) -> accounts.TokenOwner:
    """The caller, from ``Authorization: Bearer``; for a db route the token must be for ``db``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise bad_token("Send 'Authorization: Bearer <token>'; log in first to get a token.")
    owner = accounts.resolve_token(_conn(), token.strip(), _now())
    if db is not None and owner.db != db:
        accounts.require_database(_conn(), db)
        raise bad_token(f"This token is for another database; log in to {db!r}.")
    return owner


def _offline_check(conn: sqlite3.Connection, owner: accounts.TokenOwner) -> None:
    why_not = _why_not_offline(conn, owner)
    if why_not == "database offline use switched off":
        raise ApiError(
            403,
            "offline_disabled",
            "Offline use disabled",
            "Offline use is switched off for this database by the server manager.",
        )
    if why_not is not None:
        raise ApiError(
            403,
            "offline_right_missing",
            "No offline right",
            "You do not have the offline mode right; ask the server manager.",
        )


def _why_not_offline(conn: sqlite3.Connection, owner: accounts.TokenOwner) -> copies.Why | None:
    """Why this user may not hold an offline copy of the token's database now (None: may)."""
    if not accounts.database_offline_allowed(conn, owner.db):
        return "database offline use switched off"
    if not accounts.user_by_id(conn, owner.user_id).offline_right:
        return "offline right taken"
    return None


# --- routes --------------------------------------------------------------------------------


def _register_session_routes(app: Flask) -> None:
    @app.post(f"{API}/session")
    def login() -> Response:
        body = _body()
        db = _string(body, "database", max_len=64)
        username = _string(body, "username", max_len=64)
        password = _string(body, "password", max_len=4096)
        client_id = _string(body, "client_id", max_len=200)
        conn = _conn()
        accounts.require_database(conn, db)
        user = accounts.check_password(conn, username, password)
        now = _now()
        token = accounts.open_session(conn, db, user.id, client_id, now)
        return _json(
            {
                "token": token,
                "user_id": user.id,
                "username": user.name,
                "server_time": now,
                "password_generation": accounts.password_generation(conn, user.id),
            }
        )

    @app.delete(f"{API}/session")
    def logout() -> Response:
        accounts.revoke_token(_conn(), _owner())
        return Response(status=204)

    @app.post(f"{API}/session/password")
    def change_password() -> Response:
        owner = _owner()
        body = _body()
        old = _string(body, "old_password", max_len=4096)
        new = _string(body, "new_password", max_len=4096)
        accounts.check_password(_conn(), owner.username, old)
        # This token moves to the new password's generation; the user's other sessions keep
        # theirs (still valid, but an offline client refuses to rebuild under them).
        accounts.set_password(_conn(), owner.user_id, new, changed_by=owner)
        return Response(status=204)


def _register_record_routes(app: Flask) -> None:
    @app.get(f"{API}/databases/<db>/records")
    def list_records(db: str) -> Response:
        owner = _owner(db)
        q = request.args.get("q", "")
        if len(q) > 1000:
            raise bad_request("'q' must be at most 1000 characters.")
        limit = _int_arg("limit", DEFAULT_LIST, 1, MAX_LIST)
        offset = _int_arg("offset", 0, 0, 10**9)
        found, total = records.list_for_user(_conn(), db, owner.user_id, q, limit, offset)
        return _json({"records": found, "total": total})

    @app.get(f"{API}/databases/<db>/records/<record_id>")
    def get_record(db: str, record_id: str) -> Response:
        owner = _owner(db)
        return _json(records.get_for_user(_conn(), db, record_id, owner.user_id))

    @app.post(f"{API}/databases/<db>/records")
    def create_record(db: str) -> Response:
        owner = _owner(db)
        actor = _actor(owner)
        body = _body()
        name, fields = records.check_content(body.get("name"), body.get("fields"))
        result = records.create_for_user(_conn(), db, name, fields, _now(), actor)
        return _json(result.record, 201 if result.created else 200)

    @app.put(f"{API}/databases/<db>/records/<record_id>")
    def update_record(db: str, record_id: str) -> Response:
        owner = _owner(db)
        actor = _actor(owner)
        condition = _write_condition(required=False)
        body = _body()
        if condition is not None:
            return _conditional_put(db, record_id, body, actor, condition)
        # The host's online save: the revision in the body, 409 when it is stale.
        rev = body.get("rev")
        if isinstance(rev, float) and rev.is_integer():
            rev = int(rev)  # JSON does not tell 3 from 3.0
        if not isinstance(rev, int) or isinstance(rev, bool) or rev < 1:
            raise bad_request(
                "'rev' must be the record's current revision (an integer >= 1), "
                "or send the write as a conditional one (If-Match, "
                "If-None-Match)."
            )
        name, fields = records.check_content(body.get("name"), body.get("fields"))
        record = records.update_record(
            _conn(),
            db,
            record_id,
            _now(),
            name=name,
            fields=fields,
            expected_rev=rev,
            by_user=owner.user_id,
            actor=actor,
        )
        return _json(record, headers={"ETag": f'"{record["rev"]}"'})

    @app.delete(f"{API}/databases/<db>/records/<record_id>")
    def delete_record(db: str, record_id: str) -> Response:
        owner = _owner(db)
        actor = _actor(owner)
        condition = _write_condition(required=True)
        if condition is None or condition == CREATE:
            raise bad_request(
                "A delete is conditional on the record's revision: send "
                "'If-Match: \"<rev>\"', not If-None-Match."
            )
        records.delete_for_user(_conn(), db, record_id, _now(), actor, condition)
        return Response(status=204)


CREATE = 0
"""The write condition of a create (``If-None-Match: *``); an update's is its base rev."""
_ETAG_REV = re.compile(r'^(?:W/)?"([1-9][0-9]{0,9})"$')
_CHANGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LOCAL_TIME = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,9})?$")


def _write_condition(*, required: bool) -> int | None:
    """The write's precondition: a base revision from ``If-Match: "<rev>"``, :data:`CREATE`
    for ``If-None-Match: *``, None for neither (the legacy online save); 428 when a delete
    has none."""
    if_match = request.headers.get("If-Match")
    if_none_match = request.headers.get("If-None-Match")
    if if_match is not None and if_none_match is not None:
        raise bad_request("Send If-Match (an update) or If-None-Match: * (a create), not both.")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise bad_request("A create sends 'If-None-Match: *'.")
        return CREATE
    if if_match is None:
        if required:
            raise ApiError(
                428,
                "precondition_required",
                "Precondition required",
                "Send 'If-Match: \"<rev>\"' with the revision your change is based on.",
            )
        return None
    found = _ETAG_REV.match(if_match.strip())
    if found is None:
        raise bad_request("If-Match must be one revision in quotes, like '\"3\"'.")
    return int(found.group(1))


def _actor(owner: accounts.TokenOwner) -> Actor:
    """Who writes, with the optional ``X-Offline-Change`` (the client's local time of an
    offline change) and ``X-Change-Id`` (the client's id of the change)."""
    local_time = request.headers.get("X-Offline-Change")
    if local_time is not None and not _LOCAL_TIME.match(local_time.strip()):
        raise bad_request(
            "X-Offline-Change must be the local time of the change in UNIX "
            "seconds, like 1714550400 or 1714550400.25."
        )
    change_id = request.headers.get("X-Change-Id")
    if change_id is not None and not _CHANGE_ID.match(change_id):
        raise bad_request("X-Change-Id must be 1-128 letters, digits or '._:-' (a UUID will do).")
    return Actor(
        owner.user_id,
        owner.username,
        owner.client_id,
        None if local_time is None else float(local_time),
        change_id,
    )


def _conditional_put(
    db: str, record_id: str, body: dict[str, Any], actor: Actor, condition: int
) -> Response:
    if condition == CREATE and not _is_uuid(record_id):
        raise bad_request(
            "A record created by a client needs a UUID as its id, like "
            "123e4567-e89b-42d3-a456-426614174000 (lower case).",
            "bad_record_id",
        )
    name, fields = records.check_content(body.get("name"), body.get("fields"))
    result = records.put_for_user(
        _conn(),
        db,
        record_id,
        name,
        fields,
        _now(),
        actor,
        None if condition == CREATE else condition,
    )
    assert result.record is not None
    return _json(
        result.record, 201 if result.created else 200, headers={"ETag": f'"{result.record["rev"]}"'}
    )


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _register_offline_routes(app: Flask) -> None:
    @app.get(f"{API}/databases/<db>/offline/policy")
    def policy(db: str) -> Response:
        owner = _owner(db)
        conn = _conn()
        user = accounts.user_by_id(conn, owner.user_id)
        return _json(
            {
                "offline_enabled": accounts.database_offline_allowed(conn, db),
                "offline_editing": accounts.database_offline_editing(conn, db),
                "offline_login_attempts": accounts.database_login_attempts(conn, db),
                "offline_right": user.offline_right,
                "validity_seconds": user.validity_seconds,
                "server_time": _now(),
                "password_generation": owner.password_generation,
            }
        )

    @app.get(f"{API}/databases/<db>/offline/head")
    def head(db: str) -> Response:
        # Head is the policy check of an incremental sync: it refuses like the feed (403) and
        # carries the validity, so a sync with nothing new costs this one round trip.
        owner = _owner(db)
        conn = _conn()
        with transaction(conn, write=False):
            _offline_check(conn, owner)
            validity = accounts.user_by_id(conn, owner.user_id).validity_seconds
            editing = accounts.database_offline_editing(conn, db)
            attempts = accounts.database_login_attempts(conn, db)
            seq = feed.head_seq(conn, owner.user_id, db)
            # Everything a client caches from head is in the ETag: a changed validity,
            # editing setting or wrong-password limit must not be hidden behind a 304.
            epoch = get_meta(conn, "epoch")
            etag = f'"{epoch}-{seq}-{validity}-{int(editing)}-{attempts}"'
        now = _now()
        # The Date header is the server time of a 304 (which has no body); set from the
        # server's own clock rather than left to waitress (which uses the real one).
        headers = {"ETag": etag, "Date": http_date(now)}
        if etag in _etags(request.headers.get("If-None-Match", "")):
            return Response(status=304, headers=headers)
        return _json(
            {
                "seq": seq,
                "offline_enabled": True,
                "offline_editing": editing,
                "offline_login_attempts": attempts,
                "offline_right": True,
                "validity_seconds": validity,
                "server_time": now,
                "password_generation": owner.password_generation,
            },
            headers=headers,
        )

    @app.get(f"{API}/databases/<db>/offline/changes")
    def changes(db: str) -> Response:
        owner = _owner(db)
        limit = _int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE, code="bad_limit")
        raw_cursor = request.args.get("cursor", "")
        conn = _conn()
        with transaction(conn, write=False):
            _offline_check(conn, owner)
            return _json(_changes_page(conn, owner, db, raw_cursor, limit))


def _register_report_routes(app: Flask) -> None:
    # What a client tells about its copy. Accepted whatever the offline policy is now: a copy
    # that is being wiped (right revoked) pushes its log and says it is gone.
    @app.post(f"{API}/databases/<db>/offline/audit")
    def offline_audit(db: str) -> Response:
        owner = _owner(db)
        body = _body(reports.MAX_AUDIT_BODY_BYTES)
        events = reports.check_event_batch(body, owner.client_id)
        conn = _conn()
        now = _now()
        with transaction(conn):
            new = audit.record_access(
                conn, owner.user_id, owner.username, owner.client_id, db, events, now
            )
        known = len(events) - new
        return _json({"received": len(events), "recorded": new, "known": known, "server_time": now})

    @app.put(f"{API}/databases/<db>/offline/copies/<path:client_id>")
    def report_copy(db: str, client_id: str) -> Response:
        owner = _owner(db)
        _check_own_client(owner, client_id)
        report = reports.check_copy_report(_body())
        conn = _conn()
        now = _now()
        with transaction(conn):
            why_not = _why_not_offline(conn, owner)
            stored = copies.report(
                conn,
                db,
                owner.user_id,
                owner.username,
                client_id,
                report,
                now,
                offline_allowed=why_not is None,
                why_not=why_not,
            )
        return _json(stored.to_wire())

    @app.delete(f"{API}/databases/<db>/offline/copies/<path:client_id>")
    def wipe_copy(db: str, client_id: str) -> Response:
        owner = _owner(db)
        _check_own_client(owner, client_id)
        conn = _conn()
        with transaction(conn):
            copies.wiped(conn, db, owner.user_id, client_id, _now())
        return Response(status=204)


def _check_own_client(owner: accounts.TokenOwner, client_id: str) -> None:
    if client_id != owner.client_id:
        raise client_mismatch(
            "A client reports only its own copy: the path must name the client_id this "
            "session logged in with."
        )


def _register_manager_routes(app: Flask) -> None:
    @app.get(f"{API}/admin/offline/copies")
    def list_copies() -> Response:
        _require_manager()
        db = request.args.get("db") or None
        if db is not None and len(db) > 64:
            raise bad_request("'db' must be a database name of at most 64 characters.")
        wiped = request.args.get("include_wiped", "false")
        if wiped not in ("true", "false"):
            raise bad_request("'include_wiped' must be true or false.")
        found = copies.list_copies(_conn(), db=db, include_wiped=wiped == "true")
        return _json({"copies": [copy.to_wire() for copy in found], "server_time": _now()})


def _require_manager() -> None:
    """The caller holds a server manager token: 401 without a valid token, 403 with a user's."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise bad_token("Send 'Authorization: Bearer <server manager token>'.")
    if accounts.is_manager_token(_conn(), token.strip()):
        return
    accounts.resolve_token(_conn(), token.strip(), _now())  # 401 unless a user's token
    raise not_server_manager()


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _changes_page(
    conn: sqlite3.Connection, owner: accounts.TokenOwner, db: str, raw_cursor: str, limit: int
) -> str:
    """One page of the feed as JSON text, read in the caller's snapshot transaction."""
    secret = bytes.fromhex(get_meta(conn, "secret"))
    epoch = get_meta(conn, "epoch")
    horizon = feed.horizon(conn, owner.user_id, db)
    after = 0
    if raw_cursor:
        after = _check_cursor(raw_cursor, secret, epoch, horizon, owner, db).seq
    page = feed.read_page(conn, owner.user_id, db, after, limit, include_deletes=bool(raw_cursor))
    next_cursor = encode_cursor(
        Cursor(epoch, page.last_seq, owner.user_id, db, _now(), horizon), secret
    )
    has_more = page.remaining > 0
    text = (
        f'{{"changes":{page.changes_json},"next_cursor":"{next_cursor}",'
        f'"has_more":{"true" if has_more else "false"},"remaining":{page.remaining}'
    )
    if not has_more:
        text += ',"digest":' + json.dumps(feed.digest(conn, owner.user_id, db))
    return text + "}"


def _check_cursor(
    raw: str,
    secret: bytes,
    epoch: str,
    horizon: int,
    owner: accounts.TokenOwner,
    db: str,
) -> Cursor:
    try:
        cursor = decode_cursor(raw, secret)
    except InvalidCursor as exc:
        raise bad_request(
            "The cursor is not valid; start again without a cursor.", "bad_cursor"
        ) from exc
    if cursor.user_id != owner.user_id or cursor.db != db:
        raise bad_request(
            "This cursor belongs to another user or database; start again without a cursor.",
            "bad_cursor",
        )
    # Behind the horizon *and* issued before the horizon last moved: this cursor may have
    # missed a dropped delete. One issued since (a first sync's next page) has not: a first
    # sync starts from nothing, so it needs no deletes from before it began.
    if cursor.epoch != epoch or (cursor.seq < horizon and cursor.horizon < horizon):
        raise ApiError(
            410,
            "cursor_expired",
            "Cursor expired",
            "The server no longer knows this position (restored or compacted); "
            "sync again from the beginning.",
        )
    return cursor
