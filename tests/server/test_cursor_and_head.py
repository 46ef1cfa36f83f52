"""Cursors are signed, bound to user, database and epoch, and expire with compaction; head/ETag."""

from __future__ import annotations

import base64
import json
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from reference_server.testing import RunningServer, running_server

from .apiclient import ApiClient, assert_problem


@pytest.fixture
def cursor(demo: RunningServer, alice: ApiClient) -> str:
    demo.admin.import_records("demo", [{"name": f"R{i}", "fields": {}} for i in range(3)],
                              grant={"alice": "rwe", "bob": "rwe"})
    return str(alice.changes().json()["next_cursor"])


def _reforge(cursor: str, **changes: object) -> str:
    body, sig = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    new_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{new_body}.{sig}"


def test_valid_cursor_is_accepted(alice: ApiClient, cursor: str) -> None:
    assert alice.changes(cursor).status_code == 200


@pytest.mark.parametrize("garbled", [
    "x", "a.b", "....", "é.é", "eyJ9.AAAA", "A" * 5000, "%00", "null",
])
def test_garbled_cursor_is_400_bad_cursor(alice: ApiClient, cursor: str, garbled: str) -> None:
    assert_problem(alice.changes(garbled), 400, "bad_cursor")


def test_cursor_with_a_moved_position_but_old_signature_is_refused(
    alice: ApiClient, cursor: str
) -> None:
    assert_problem(alice.changes(_reforge(cursor, seq=0)), 400, "bad_cursor")


def test_cursor_with_flipped_signature_bit_is_refused(alice: ApiClient, cursor: str) -> None:
    body, sig = cursor.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert_problem(alice.changes(f"{body}.{flipped}"), 400, "bad_cursor")


def test_another_users_cursor_is_refused(bob: ApiClient, cursor: str) -> None:
    assert_problem(bob.changes(cursor), 400, "bad_cursor")


def test_another_databases_cursor_is_refused(demo: RunningServer, cursor: str) -> None:
    demo.admin.create_database("other")
    client = ApiClient(demo.url, "other").login("alice", "alice-pw")
    try:
        assert_problem(client.changes(cursor), 400, "bad_cursor")
    finally:
        client.close()


def test_cursor_from_before_an_epoch_bump_is_410(
    demo: RunningServer, alice: ApiClient, cursor: str
) -> None:
    demo.admin.bump_epoch()
    assert_problem(alice.changes(cursor), 410, "cursor_expired")
    assert alice.changes().status_code == 200  # starting over works


def test_cursor_older_than_compacted_tombstones_is_410(
    demo: RunningServer, alice: ApiClient, cursor: str
) -> None:
    rid = demo.admin.list_records("demo")[0][0]
    demo.admin.delete_record("demo", rid)
    latest = alice.read_all(cursor)[1]["next_cursor"]
    dropped, _horizon = demo.admin.compact(horizon_days=0)
    assert dropped == 2  # alice's and bob's tombstone
    assert_problem(alice.changes(cursor), 410, "cursor_expired")
    assert alice.changes(latest).status_code == 200  # a cursor past the horizon still works


def test_default_compaction_keeps_tombstones_within_the_longest_validity(
    demo: RunningServer, alice: ApiClient, cursor: str
) -> None:
    demo.admin.delete_record("demo", demo.admin.list_records("demo")[0][0])
    assert demo.admin.compact() == (0, 0)
    assert alice.changes(cursor).status_code == 200


def test_head_etag_gives_304_until_the_feed_changes(demo: RunningServer,
                                                    alice: ApiClient) -> None:
    first = alice.get("/offline/head")
    etag = first.headers["ETag"]
    body = first.json()
    assert isinstance(body.pop("server_time"), float)
    assert body == {"seq": 0, "offline_enabled": True, "offline_right": True,
                    "validity_seconds": 7 * 86400, "password_generation": 0}
    not_modified = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    [rid] = demo.admin.import_records("demo", [{"name": "A", "fields": {}}],
                                      grant={"alice": "rwe"})
    changed = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["seq"] > 0
    assert changed.headers["ETag"] != etag
    # a change that does not touch alice's feed keeps her ETag
    demo.admin.import_records("demo", [{"name": "B", "fields": {}}], grant={"bob": "rwe"})
    same = alice.get("/offline/head", headers={"If-None-Match": changed.headers["ETag"]})
    assert same.status_code == 304
    demo.admin.bump_epoch()
    assert alice.get("/offline/head", headers={"If-None-Match": changed.headers["ETag"]}
                     ).status_code == 200
    assert rid


def test_changing_the_validity_changes_the_etag(demo: RunningServer, alice: ApiClient) -> None:
    etag = alice.get("/offline/head").headers["ETag"]
    assert alice.get("/offline/head", headers={"If-None-Match": etag}).status_code == 304
    demo.admin.set_user_offline("alice", enabled=True, validity_days=3)
    changed = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json()["validity_seconds"] == 3 * 86400


def test_a_304_carries_date_and_etag_from_the_server_clock(tmp_path: Path) -> None:
    fake_now = 1_700_000_000.25
    with running_server(tmp_path / "srv", clock=lambda: fake_now) as srv:
        srv.admin.create_database("demo", offline_allowed=True)
        srv.admin.create_user("alice", "alice-pw", offline_right=True, validity_days=7)
        client = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        try:
            first = client.get("/offline/head")
            assert first.json()["server_time"] == fake_now
            not_modified = client.get("/offline/head",
                                      headers={"If-None-Match": first.headers["ETag"]})
        finally:
            client.close()
    assert not_modified.status_code == 304
    assert not_modified.headers["ETag"] == first.headers["ETag"]
    assert parsedate_to_datetime(not_modified.headers["Date"]).timestamp() == int(fake_now)


def test_head_refuses_like_the_feed_when_offline_is_not_allowed(
    demo: RunningServer, alice: ApiClient
) -> None:
    etag = alice.get("/offline/head").headers["ETag"]
    demo.admin.set_user_offline("alice", enabled=False)
    assert_problem(alice.get("/offline/head", headers={"If-None-Match": etag}), 403,
                   "offline_right_missing")
    demo.admin.set_user_offline("alice", enabled=True)
    demo.admin.set_database_offline("demo", False)
    assert_problem(alice.get("/offline/head", headers={"If-None-Match": etag}), 403,
                   "offline_disabled")
