"""Cursors are signed, bound to user, database and epoch, and expire with compaction; head/ETag."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from reference_server.db import get_meta
from reference_server.testing import RunningServer, running_server
from tests.support.api import ApiClient, assert_problem


@pytest.fixture
def cursor(demo: RunningServer, alice: ApiClient) -> str:
    demo.admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {}} for i in range(3)],
        grant={"alice": "rwe", "bob": "rwe"},
    )
    return str(alice.changes().json()["next_cursor"])


def _reforge(cursor: str, **changes: object) -> str:
    body, sig = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    new_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{new_body}.{sig}"


def test_valid_cursor_is_accepted(alice: ApiClient, cursor: str) -> None:
    assert alice.changes(cursor).status_code == 200


@pytest.mark.parametrize(
    "garbled",
    [
        "x",
        "a.b",
        "....",
        "é.é",
        "eyJ9.AAAA",
        "A" * 5000,
        "%00",
        "null",
    ],
)
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
    assert demo.admin.compact(horizon_days=0).dropped == 2  # alice's and bob's tombstone
    assert_problem(alice.changes(cursor), 410, "cursor_expired")
    assert alice.changes(latest).status_code == 200  # a cursor past the horizon still works


def test_a_first_sync_after_compaction_pages_to_the_end_and_then_syncs_incrementally(
    demo: RunningServer, alice: ApiClient
) -> None:
    ids = demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(4)], grant={"alice": "rwe"}
    )
    demo.admin.delete_record("demo", ids[3])  # its tombstone is the newest row of alice's feed
    assert demo.admin.compact(horizon_days=0).dropped == 1
    # A new copy: page by page from nothing, although every upsert lies behind the horizon.
    changes, last = alice.read_all(limit=1)
    assert {c["id"] for c in changes} == set(ids[:3])
    assert last["digest"]["count"] == 3
    demo.admin.delete_record("demo", ids[0])
    later, _ = alice.read_all(last["next_cursor"])
    assert [(c["op"], c["id"]) for c in later] == [("delete", ids[0])]


def test_a_first_sync_of_a_feed_compacted_empty_can_sync_again(
    demo: RunningServer, alice: ApiClient
) -> None:
    [rid] = demo.admin.import_records("demo", [{"name": "R", "fields": {}}], grant={"alice": "rwe"})
    demo.admin.delete_record("demo", rid)
    demo.admin.compact(horizon_days=0)
    first = alice.changes().json()
    assert first["changes"] == []
    assert alice.changes(first["next_cursor"]).status_code == 200


def test_a_cursor_of_a_first_sync_interrupted_by_a_compaction_is_410(
    demo: RunningServer, alice: ApiClient
) -> None:
    ids = demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(4)], grant={"alice": "rwe"}
    )
    first = alice.changes(limit=1).json()
    demo.admin.delete_record("demo", ids[3])
    demo.admin.compact(horizon_days=0)
    # The first page was read before the tombstone was dropped: the rest might miss it.
    assert_problem(alice.changes(first["next_cursor"], limit=1), 410, "cursor_expired")


def _old_format(demo: RunningServer, cursor: str) -> str:
    """The same position as a server before cursors carried their horizon would sign it."""
    body = cursor.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    del payload["horizon"]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    secret = bytes.fromhex(get_meta(demo.admin.connection, "secret"))
    sig = hmac.new(secret, raw, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (raw, sig))


def test_a_cursor_signed_before_cursors_carried_a_horizon_still_works_until_a_compaction(
    demo: RunningServer, alice: ApiClient, cursor: str
) -> None:
    old = _old_format(demo, cursor)
    assert alice.changes(old).status_code == 200
    demo.admin.delete_record("demo", demo.admin.list_records("demo")[0][0])
    demo.admin.compact(horizon_days=0)
    assert_problem(alice.changes(old), 410, "cursor_expired")


def test_default_compaction_keeps_tombstones_within_the_longest_validity(
    demo: RunningServer, alice: ApiClient, cursor: str
) -> None:
    demo.admin.delete_record("demo", demo.admin.list_records("demo")[0][0])
    assert demo.admin.compact().dropped == 0
    assert alice.changes(cursor).status_code == 200


def test_head_etag_gives_304_until_the_feed_changes(demo: RunningServer, alice: ApiClient) -> None:
    first = alice.get("/offline/head")
    etag = first.headers["ETag"]
    body = first.json()
    assert isinstance(body.pop("server_time"), float)
    assert body == {
        "seq": 0,
        "offline_enabled": True,
        "offline_right": True,
        "offline_editing": False,
        "offline_login_attempts": 10,
        "validity_seconds": 7 * 86400,
        "password_generation": 0,
    }
    not_modified = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    [rid] = demo.admin.import_records("demo", [{"name": "A", "fields": {}}], grant={"alice": "rwe"})
    changed = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["seq"] > 0
    assert changed.headers["ETag"] != etag
    # a change that does not touch alice's feed keeps her ETag
    demo.admin.import_records("demo", [{"name": "B", "fields": {}}], grant={"bob": "rwe"})
    same = alice.get("/offline/head", headers={"If-None-Match": changed.headers["ETag"]})
    assert same.status_code == 304
    demo.admin.bump_epoch()
    assert (
        alice.get("/offline/head", headers={"If-None-Match": changed.headers["ETag"]}).status_code
        == 200
    )
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
            not_modified = client.get(
                "/offline/head", headers={"If-None-Match": first.headers["ETag"]}
            )
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
    assert_problem(
        alice.get("/offline/head", headers={"If-None-Match": etag}), 403, "offline_right_missing"
    )
    demo.admin.set_user_offline("alice", enabled=True)
    demo.admin.set_database_offline("demo", False)
    assert_problem(
        alice.get("/offline/head", headers={"If-None-Match": etag}), 403, "offline_disabled"
    )
