"""A hostile server against the sync: drips, stalls, loops, bombs, deep nesting, odd numbers and
encodings, redirects, plain http, forged refusals. Each ends by its deadline, within bounded
memory, with an add-on error, and changes nothing it should not (see ``hostile.py``)."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from offline_addon import errors
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.transport import (
    CONNECT_TIMEOUT_S,
    REQUEST_DEADLINE_S,
    SyncClient,
    check_server_url,
    parse_retry_after,
)
from tests.support.hostile import PASSWORD, TOKEN, HostileServer, Reply, policy_body
from tests.support.records import last_page, upsert

pytestmark = pytest.mark.timeout(60)


def _paths(tmp_path: Path, srv: HostileServer) -> CopyPaths:
    s = srv.session
    return CopyPaths.for_copy(
        tmp_path / "copies", s.server_url, s.database, s.username, s.client_id
    )


def _sync(tmp_path: Path, srv: HostileServer, *, create: bool = False, **client: Any) -> Any:
    with srv.client(**client) as c:
        return sync_copy(_paths(tmp_path, srv), srv.session, create=create, client=c, progress=None)


def _records(tmp_path: Path, srv: HostileServer) -> dict[str, int]:
    with OfflineCopy.open(_paths(tmp_path, srv), PASSWORD) as copy:
        assert copy.integrity_ok()
        return {r.record_id: r.rev for r in copy.list_records()}


@pytest.fixture
def srv() -> Any:
    with HostileServer() as server:
        yield server


@pytest.fixture
def synced(srv: HostileServer, tmp_path: Path) -> HostileServer:
    """A copy of the hostile server's three records, made while it still behaved."""
    assert _sync(tmp_path, srv, create=True).outcome == "synced"
    return srv


# -- time: nothing hangs ------------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_server_dripping_one_byte_at_a_time_is_cut_off_at_the_request_deadline(
    srv: HostileServer, tmp_path: Path, headers_too: bool
) -> None:
    body = json.dumps(policy_body()).encode()
    srv.route("/offline/policy", Reply.drip(body, every_s=0.05, headers_too=headers_too))
    started = time.monotonic()
    with pytest.raises(errors.ServerUnreachable, match="timed out"):
        _sync(tmp_path, srv, create=True, request_deadline_s=1.0)
    assert time.monotonic() - started < 3.0
    assert not _paths(tmp_path, srv).db.exists()


def test_a_server_that_never_answers_is_reported_after_one_read_timeout_not_three(
    srv: HostileServer, tmp_path: Path
) -> None:
    srv.route("/offline/policy", Reply(stall=True))
    started = time.monotonic()
    with pytest.raises(errors.ServerUnreachable, match="timed out"):
        _sync(tmp_path, srv, create=True, timeout=(CONNECT_TIMEOUT_S, 0.5), retries=2)
    assert time.monotonic() - started < 1.5, "a timed-out request was sent again"
    assert srv.hits("/offline/policy") == 1


def test_the_timeouts_are_short_enough_to_tell_the_user_in_seconds() -> None:
    assert CONNECT_TIMEOUT_S <= 5
    assert REQUEST_DEADLINE_S <= 120
    started = time.monotonic()
    with (
        SyncClient("http://127.0.0.1:9", TOKEN, "c") as client,
        pytest.raises(errors.ServerUnreachable),
    ):
        client.policy("db")  # connection refused: two short retries, then the answer
    assert time.monotonic() - started < 5.0


def test_a_feed_whose_cursors_alternate_a_b_a_is_stopped(
    synced: HostileServer, tmp_path: Path
) -> None:
    srv = synced
    before = _records(tmp_path, srv)
    srv.route(
        "/offline/head", Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"e-9-604800"')])
    )

    def loop(_path: str, query: dict[str, list[str]], _h: dict[str, str]) -> Reply:
        nxt = "B" if query.get("cursor") == ["A"] else "A"
        return Reply.json({"changes": [], "next_cursor": nxt, "has_more": True, "remaining": 5})

    srv.route("/offline/changes", loop)
    earlier = srv.hits("/offline/changes")
    with pytest.raises(errors.ProtocolError, match="does not advance"):
        _sync(tmp_path, srv)
    assert srv.hits("/offline/changes") - earlier <= 3
    assert _records(tmp_path, srv) == before


def test_a_feed_that_never_ends_stops_at_its_page_budget(
    synced: HostileServer, tmp_path: Path
) -> None:
    srv = synced
    srv.route(
        "/offline/head", Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"e-9-604800"')])
    )
    counter = iter(range(10**6))
    srv.route(
        "/offline/changes",
        lambda _p, _q, _h: Reply.json(
            {"changes": [], "next_cursor": f"c{next(counter)}", "has_more": True, "remaining": 10}
        ),
    )
    earlier = srv.hits("/offline/changes")
    with pytest.raises(errors.ProtocolError, match="did not end"):
        _sync(tmp_path, srv)
    assert srv.hits("/offline/changes") - earlier <= 1 + 2 * 1 + 16  # 10 left, 2500 a page


# -- memory and parsing: refused before objects -------------------------------------------------


def test_a_gzip_bomb_of_empty_objects_is_refused_in_bounded_memory(
    synced: HostileServer, tmp_path: Path
) -> None:
    srv = synced
    before = _records(tmp_path, srv)
    bomb = (
        b'{"changes": [' + b"{}," * (8 * 1024 * 1024 // 3) + b'{}], "next_cursor": "x",'
        b' "has_more": false, "remaining": 0}'
    )
    srv.route(
        "/offline/head", Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"e-9-604800"')])
    )
    srv.route("/offline/changes", Reply.json(bomb, gzipped=True))
    tracemalloc.start()
    try:
        with pytest.raises(errors.ProtocolError, match="larger than asked"):
            _sync(tmp_path, srv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.0f} MiB"
    assert _records(tmp_path, srv) == before


def test_a_bomb_beyond_the_body_cap_is_refused_while_it_is_decompressed(
    synced: HostileServer, tmp_path: Path
) -> None:
    srv = synced
    bomb = gzip.compress(b" " * (48 * 1024 * 1024), 9)  # 48 MiB from about 50 KiB
    srv.route(
        "/offline/head", Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"e-9-604800"')])
    )
    srv.route(
        "/offline/changes",
        Reply(200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], bomb),
    )
    with pytest.raises(errors.ProtocolError, match="larger than"):
        _sync(tmp_path, srv, max_body_bytes=4 * 1024 * 1024)


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("deep nesting", b'{"changes": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        ("rev of 2**70", json.dumps(last_page([upsert("r0", 2**70)])).encode()),
        ("a lone surrogate", json.dumps(last_page([upsert("r9", 1, "x\ud800y")])).encode()),
        (
            "a name of 5000 characters",
            json.dumps(last_page([upsert("r9", 1, "n" * 5000)])).encode(),
        ),
        ("a cursor of 5000 characters", json.dumps(last_page([], cursor="c" * 5000)).encode()),
        (
            "not UTF-8",
            b'{"changes": [], "next_cursor": "\xff\xfe", "has_more": true, "remaining": 0}',
        ),
    ],
)
def test_odd_answers_are_refused_as_protocol_errors_and_change_nothing(
    synced: HostileServer, tmp_path: Path, what: str, body: bytes
) -> None:
    srv = synced
    before = _records(tmp_path, srv)
    srv.route(
        "/offline/head", Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"e-9-604800"')])
    )
    srv.route("/offline/changes", Reply.json(body))
    with pytest.raises(errors.ProtocolError):
        _sync(tmp_path, srv)
    assert _records(tmp_path, srv) == before


@pytest.mark.parametrize("validity", [2**70, 10**12])
def test_a_policy_with_absurd_numbers_is_refused(
    srv: HostileServer, tmp_path: Path, validity: int
) -> None:
    srv.route("/offline/policy", Reply.json(policy_body(validity_seconds=validity)))
    with pytest.raises(errors.ProtocolError, match="invalid offline policy"):
        _sync(tmp_path, srv, create=True)


# -- transport security: no clear text, no redirects, no forged wipes ---------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://psr.example.com",
        "http://10.1.2.3:8080",
        "http://[2001:db8::1]",
        "ftp://127.0.0.1",
        "https://h:99999",
        "not a url",
    ],
)
def test_a_token_is_never_sent_in_the_clear(url: str, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError):
        SyncClient(url, TOKEN, "c")
    with HostileServer() as srv:
        session = replace(srv.session, server_url=url)
        paths = CopyPaths(tmp_path, "a" * 64)
        with pytest.raises(errors.ConfigurationError):
            sync_copy(paths, session, create=True)
        assert srv.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://psr.example.com",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:1",
        "http://[::1]:5",
    ],
)
def test_https_and_loopback_are_allowed(url: str) -> None:
    assert check_server_url(url) == url


@pytest.mark.parametrize(
    "location",
    [
        "OTHER/api/v1/databases/hostiledb/offline/policy",  # another origin that answers well
        "https://psr.example.com/api/v1/databases/hostiledb/offline/policy",
        "http://127.0.0.1:99999/api/v1/databases/hostiledb/offline/policy",
    ],
    ids=["cross-origin", "to-https-elsewhere", "bad-port"],
)
def test_redirects_are_never_followed(srv: HostileServer, tmp_path: Path, location: str) -> None:
    with HostileServer() as other:
        srv.route("/offline/policy", Reply.redirect(location.replace("OTHER", other.url)))
        with pytest.raises(errors.ProtocolError, match="redirect"):
            _sync(tmp_path, srv, create=True)
        assert other.requests == []
    assert not _paths(tmp_path, srv).db.exists()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(403, [("Content-Type", "text/html")], b"<html><h1>Forbidden</h1>offline_disabled"),
        Reply(403, [], b""),
        Reply(
            403,
            [("Content-Type", "application/json")],
            b'{"code": "offline_disabled", "status": 403}',
        ),
        Reply.problem(403, "access_denied"),
    ],
    ids=["html", "bare", "json-not-problem", "unknown-code"],
)
def test_an_unauthenticated_403_never_wipes_the_copy(
    synced: HostileServer, tmp_path: Path, reply: Reply
) -> None:
    srv = synced
    before = _records(tmp_path, srv)
    srv.route("/offline/head", reply)
    with pytest.raises(errors.ProtocolError):
        _sync(tmp_path, srv)
    assert _records(tmp_path, srv) == before


def test_the_documented_403_wipes_the_copy(synced: HostileServer, tmp_path: Path) -> None:
    synced.route("/offline/head", Reply.problem(403, "offline_right_missing"))
    assert _sync(tmp_path, synced).outcome == "wiped"
    assert not _paths(tmp_path, synced).db.exists()


# -- Retry-After --------------------------------------------------------------------------------


def test_retry_after_as_an_http_date_is_honoured(srv: HostileServer) -> None:
    now = time.time()
    date = formatdate(now, usegmt=True)
    later = formatdate(now + 3, usegmt=True)
    assert parse_retry_after(later, date) == pytest.approx(3, abs=1)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", None) == 0.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None
    answers = iter([Reply.problem(503, "busy", headers=[("Retry-After", later), ("Date", date)])])
    srv.route("/offline/policy", lambda _p, _q, _h: next(answers, Reply.json(policy_body())))
    waits: list[float] = []
    with srv.client(sleep=waits.append) as client:
        assert client.policy("hostiledb").allowed
    assert len(waits) == 1
    assert 1.5 <= waits[0] <= 4.0


def test_a_long_retry_after_date_reaches_the_caller(srv: HostileServer) -> None:
    later = formatdate(time.time() + 3600, usegmt=True)
    srv.route(
        "/offline/policy", Reply.problem(429, "rate_limited", headers=[("Retry-After", later)])
    )
    with srv.client() as client, pytest.raises(errors.ServerBusy) as busy:
        client.policy("hostiledb")
    assert busy.value.retry_after is not None
    assert 3500 < busy.value.retry_after <= 3600


def test_a_head_with_an_absurd_etag_is_refused(synced: HostileServer, tmp_path: Path) -> None:
    before = _records(tmp_path, synced)
    synced.route(
        "/offline/head",
        Reply.json({"seq": 9, **policy_body()}, headers=[("ETag", '"' + "e" * 5000 + '"')]),
    )
    with pytest.raises(errors.ProtocolError, match="ETag"):
        _sync(tmp_path, synced)
    assert _records(tmp_path, synced) == before
