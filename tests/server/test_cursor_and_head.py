"""Cursors are signed, bound to user, database and epoch, and expire with compaction; head/ETag."""

from __future__ import annotations

import base64
import json

import pytest

from reference_server.testing import RunningServer

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
    assert first.json() == {"seq": 0}
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
