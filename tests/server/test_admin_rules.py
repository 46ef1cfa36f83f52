"""The server manager's Python API: what it accepts, and what it reports back."""

from __future__ import annotations

import pytest

from reference_server.errors import ApiError
from reference_server.testing import RunningServer
from tests.support.api import ApiClient


@pytest.mark.parametrize("days", [0, 366, 100_000, -1, 0.001, 2.5, True])
def test_validity_days_outside_whole_1_to_365_is_refused_naming_the_argument(
    demo: RunningServer, days: object
) -> None:
    with pytest.raises(ApiError) as created:
        demo.admin.create_user("carol", "pw-Zq8#server-test", validity_days=days)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as changed:
        demo.admin.set_user_offline("alice", True, validity_days=days)  # type: ignore[arg-type]
    for error in (created.value, changed.value):
        assert (error.status, error.code) == (400, "bad_request")
        assert "validity_days must be a whole number from 1 to 365" in error.detail
    assert [u.name for u in demo.admin.list_users()] == ["alice", "bob"]
    assert demo.admin.user("alice").validity_seconds == 7 * 86400


def test_validity_bounds_themselves_are_accepted(demo: RunningServer) -> None:
    demo.admin.create_user("carol", "pw-Zq8#server-test", validity_days=365)
    demo.admin.set_user_offline("alice", True, validity_days=1)
    assert demo.admin.user("carol").validity_seconds == 365 * 86400
    assert demo.admin.user("alice").validity_seconds == 86400


def test_validity_in_seconds_is_for_tests_bounded_to_a_day_and_reaches_the_client(
    demo: RunningServer, alice: ApiClient
) -> None:
    demo.admin.set_user_offline("alice", True, validity_seconds=90)
    assert alice.get("/offline/policy").json()["validity_seconds"] == 90
    for seconds in (0, 86_401):
        with pytest.raises(ApiError, match="validity_seconds must be a whole number from 1"):
            demo.admin.set_user_offline("alice", True, validity_seconds=seconds)
    with pytest.raises(ApiError, match="in days or in seconds, not both"):
        demo.admin.set_user_offline("alice", True, validity_days=2, validity_seconds=90)


def test_a_user_created_without_a_validity_gets_seven_days(demo: RunningServer) -> None:
    demo.admin.create_user("carol", "pw-Zq8#server-test")
    assert demo.admin.user("carol").validity_seconds == 7 * 86400


def test_compaction_reports_what_it_removed_and_the_newest_removed_tombstone(
    demo: RunningServer,
) -> None:
    ids = demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(3)], grant={"alice": "rwe"}
    )
    nothing = demo.admin.compact()
    assert (nothing.dropped, nothing.horizon_seconds, nothing.newest_dropped_at) == (
        0,
        7 * 86400,
        None,
    )
    demo.admin.delete_record("demo", ids[0])
    demo.admin.delete_record("demo", ids[1])
    newest = demo.admin.connection.execute("SELECT MAX(changed_at) FROM feed").fetchone()[0]
    done = demo.admin.compact(horizon_days=0)
    assert (done.dropped, done.horizon_seconds, done.newest_dropped_at) == (2, 0, newest)
    with pytest.raises(ApiError, match="horizon_days must be a whole number from 0 to 3650"):
        demo.admin.compact(horizon_days=-1)


def test_rights_list_by_user_by_record_and_all(demo: RunningServer) -> None:
    ids = demo.admin.import_records(
        "demo",
        [{"name": "Bank", "fields": {}}, {"name": "apps", "fields": {}}],
        grant={"alice": "rwe", "bob": "r"},
    )
    demo.admin.seal_record("demo", ids[0])
    every = demo.admin.list_rights("demo")
    # Ordered by record name (case-blind), then user.
    assert [(r.record_name, r.user, r.read, r.write, r.export, r.sealed) for r in every] == [
        ("apps", "alice", True, True, True, False),
        ("apps", "bob", True, False, False, False),
        ("Bank", "alice", True, True, True, True),
        ("Bank", "bob", True, False, False, True),
    ]
    assert {r.record_id for r in demo.admin.list_rights("demo", user="bob")} == set(ids)
    assert [r.user for r in demo.admin.list_rights("demo", record_id=ids[1])] == ["alice", "bob"]
    with pytest.raises(ApiError, match="No such record"):
        demo.admin.list_rights("demo", record_id="no-such-record")
    with pytest.raises(ApiError, match="no user named 'carol'"):
        demo.admin.list_rights("demo", user="carol")


def test_adding_one_record_grants_the_rights_and_feeds_it(
    demo: RunningServer, alice: ApiClient
) -> None:
    rid = demo.admin.add_record(
        "demo", "VPN", {"username": "alice", "password": "pw-Zq8#vpn"}, grant={"alice": "re"}
    )
    [change] = alice.read_all()[0]
    assert change["record"]["fields"] == {"username": "alice", "password": "pw-Zq8#vpn"}
    assert [(r.record_id, r.write) for r in demo.admin.list_rights("demo")] == [(rid, False)]
