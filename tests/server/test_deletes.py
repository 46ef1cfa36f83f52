"""Deleting a user or a database: their rows and sessions go, the feeds of everyone else stay
right, and no answer a client then gets is one that wipes a copy (only a 403 does)."""

from __future__ import annotations

import pytest

from reference_server.errors import ApiError
from reference_server.testing import RunningServer
from tests.support.api import ApiClient, assert_problem

# Every table that names a user or a database; a delete must leave none of their rows behind.
USER_TABLES = ("rights", "feed", "feed_digests", "horizons", "tokens")
DB_TABLES = ("records", "rights", "feed", "feed_digests", "tokens")


def _rows(srv: RunningServer, table: str, column: str, value: str) -> int:
    sql = f"SELECT COUNT(*) FROM {table} WHERE {column} = ?"  # noqa: S608 - test constants
    return int(srv.admin.connection.execute(sql, (value,)).fetchone()[0])


def _login(srv: RunningServer, db: str, user: str, password: str) -> int:
    client = ApiClient(srv.url, db)
    try:
        return client.http.post(
            f"{client.base}/session",
            json={
                "database": db,
                "username": user,
                "password": password,
                "client_id": "test-client",
            },
        ).status_code
    finally:
        client.close()


def test_deleting_a_user_removes_their_rights_feed_and_sessions_and_nothing_of_others(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    ids = demo.admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {}} for i in range(5)],
        grant={"alice": "rwe", "bob": "re"},
    )
    demo.admin.delete_record("demo", ids[0])  # a tombstone in both feeds
    cursor = alice.read_all()[1]["next_cursor"]
    bob_view = demo.admin.exportable_view("demo", "bob")
    alice_id = alice.user_id

    gone = demo.admin.delete_user("alice")

    assert (gone.rights, gone.sessions, gone.validity_seconds) == (4, 1, 7 * 86400)
    for table in USER_TABLES:
        assert _rows(demo, table, "user_id", alice_id) == 0, table
    assert _rows(demo, "users", "id", alice_id) == 0
    assert_problem(alice.changes(cursor), 401, "bad_token")
    assert _login(demo, "demo", "alice", "alice-pw") == 401
    # Records stay, and bob's feed is exactly what it was.
    assert len(demo.admin.list_records("demo")) == 4
    assert demo.admin.exportable_view("demo", "bob") == bob_view
    assert demo.admin.feed_digest("demo", "bob") == demo.admin.recompute_feed_digest("demo", "bob")
    assert bob.read_all()[1]["digest"]["count"] == 4


def test_deleting_a_database_removes_its_records_rights_feeds_and_sessions_only(
    demo: RunningServer, alice: ApiClient
) -> None:
    demo.admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {}} for i in range(3)],
        grant={"alice": "rwe", "bob": "rwe"},
    )
    demo.admin.create_database("other")
    demo.admin.import_records("other", [{"name": "kept", "fields": {}}], grant={"alice": "rwe"})
    other = ApiClient(demo.url, "other").login("alice", "alice-pw")
    try:
        cursor = alice.read_all()[1]["next_cursor"]

        gone = demo.admin.delete_database("demo")

        assert (gone.records, gone.sessions, gone.offline_allowed) == (3, 1, True)
        for table in DB_TABLES:
            assert _rows(demo, table, "db", "demo") == 0, table
        assert [d.name for d in demo.admin.list_databases()] == ["other"]
        # Neither answer is a 403, so no client wipes its copy on it: a 404 may be a typo.
        assert_problem(alice.changes(cursor), 401, "bad_token")
        assert _login(demo, "demo", "alice", "alice-pw") == 404
        assert other.read_all()[1]["digest"]["count"] == 1
    finally:
        other.close()


def test_an_old_cursor_is_410_in_a_database_created_again_under_the_same_name(
    demo: RunningServer, alice: ApiClient
) -> None:
    demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(3)], grant={"alice": "rwe"}
    )
    # alice's feed row is the newest one of the server: her cursor is at the highest seq.
    old_cursor = alice.read_all()[1]["next_cursor"]
    demo.admin.delete_database("demo")
    demo.admin.create_database("demo")
    again = ApiClient(demo.url, "demo").login("alice", "alice-pw")
    try:
        assert_problem(again.changes(old_cursor), 410, "cursor_expired")
        # Starting over works, and goes on working once the new database fills.
        first = again.changes().json()
        assert first["changes"] == []
        demo.admin.import_records("demo", [{"name": "new", "fields": {}}], grant={"alice": "rwe"})
        changes, last = again.read_all(first["next_cursor"])
        assert [c["record"]["name"] for c in changes] == ["new"]
        assert last["digest"]["count"] == 1
    finally:
        again.close()


def test_deleting_an_unknown_user_or_database_is_404_and_changes_nothing(
    demo: RunningServer,
) -> None:
    with pytest.raises(ApiError) as user:
        demo.admin.delete_user("nobody")
    with pytest.raises(ApiError) as db:
        demo.admin.delete_database("nowhere")
    assert (user.value.code, db.value.code) == ("unknown_user", "unknown_database")
    assert len(demo.admin.list_users()) == 2


def test_a_password_reset_ends_the_users_sessions(demo: RunningServer, alice: ApiClient) -> None:
    assert demo.admin.reset_password("alice", "pw-Zq8#server-test") == 1
    assert_problem(alice.changes(), 401, "bad_token")
    assert _login(demo, "demo", "alice", "alice-pw") == 401
    assert _login(demo, "demo", "alice", "pw-Zq8#server-test") == 200
