"""The write side: conditional writes (If-Match / If-None-Match), idempotent resends, the
record rights they need, the audit trail, and the offline editing setting in the policy."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from reference_server.testing import RunningServer
from tests.support.api import ApiClient, apply, assert_problem

OFFLINE_PW = "pw-Mv6!offline-edit"
SERVER_PW = "pw-Qk3#server-side"
NEW_ID = "0d5c8f4e-2b7a-4c1e-9f3d-6a8b1c2d3e4f"


def put(
    client: ApiClient, record_id: str, body: dict[str, Any], **headers: str
) -> requests.Response:
    return client.http.put(
        f"{client.base}/databases/{client.db}/records/{record_id}",
        json=body,
        headers=_headers(headers),
    )


def delete(client: ApiClient, record_id: str, **headers: str) -> requests.Response:
    return client.http.delete(
        f"{client.base}/databases/{client.db}/records/{record_id}", headers=_headers(headers)
    )


def _headers(given: dict[str, str]) -> dict[str, str]:
    names = {
        "if_match": "If-Match",
        "if_none_match": "If-None-Match",
        "offline": "X-Offline-Change",
        "change_id": "X-Change-Id",
    }
    return {names[key]: value for key, value in given.items()}


def record(name: str, **fields: str) -> dict[str, Any]:
    return {"name": name, "fields": fields}


@pytest.fixture
def router(demo: RunningServer) -> str:
    """A record at rev 1 that alice may read, write, export and delete; bob reads and writes."""
    return demo.admin.add_record(
        "demo", "Core router", {"password": "pw-Base1#old"}, grant={"alice": "rwed", "bob": "rwe"}
    )


def _audit(demo: RunningServer, **filters: Any) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.record_id, e.user_name, e.offline, e.local_time, e.base_rev, e.rev)
        for e in demo.admin.audit_entries(**filters)
    ]


# --- updates -------------------------------------------------------------------------------


def test_an_update_on_the_current_revision_is_saved_with_its_new_revision(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    r = put(alice, router, record("Core router", password=OFFLINE_PW), if_match='"1"')
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert (r.json()["rev"], r.json()["fields"]) == (2, {"password": OFFLINE_PW})
    assert demo.admin.exportable_view("demo", "alice")[router] == (
        2,
        "Core router",
        {"password": OFFLINE_PW},
    )


def test_an_update_on_an_old_revision_answers_412_with_the_current_record(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    demo.admin.update_record("demo", router, fields={"password": SERVER_PW})
    r = put(alice, router, record("Core router", password=OFFLINE_PW), if_match='"1"')
    assert_problem(r, 412, "revision_moved")
    assert r.json()["current"] == {
        **r.json()["current"],
        "id": router,
        "rev": 2,
        "fields": {"password": SERVER_PW},
    }
    assert demo.admin.exportable_view("demo", "alice")[router][0] == 2


def test_a_resent_update_is_recognised_by_its_change_id_even_after_others_moved_on(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    body = record("Core router", password=OFFLINE_PW)
    first = put(alice, router, body, if_match='"1"', change_id="chg-1", offline="1714550400")
    assert first.status_code == 200
    demo.admin.update_record("demo", router, name="Core router B")
    again = put(alice, router, body, if_match='"1"', change_id="chg-1", offline="1714550400")
    assert again.status_code == 200, again.text
    assert again.json()["rev"] == 3  # the record as it is now; nothing written again
    assert again.json()["name"] == "Core router B"
    assert [e[0] for e in _audit(demo, user="alice")] == ["update"]


def test_a_resent_update_without_change_id_is_recognised_by_its_result(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    body = record("Core router", password=OFFLINE_PW)
    assert put(alice, router, body, if_match='"1"').status_code == 200
    again = put(alice, router, body, if_match='"1"')
    assert again.status_code == 200
    assert again.json()["rev"] == 2
    # A different result on the same base is a real conflict.
    assert_problem(
        put(alice, router, record("Core router", password="pw-other"), if_match='"1"'),
        412,
        "revision_moved",
    )
    assert demo.admin.exportable_view("demo", "alice")[router][0] == 2


def test_a_change_id_used_for_another_change_is_refused(alice: ApiClient, router: str) -> None:
    assert put(alice, router, record("A"), if_match='"1"', change_id="chg-1").status_code == 200
    r = put(alice, router, record("B"), if_match='"2"', change_id="chg-1")
    assert_problem(r, 400, "change_id_reused")
    r = put(alice, NEW_ID, record("C"), if_none_match="*", change_id="chg-1")
    assert_problem(r, 400, "change_id_reused")


def test_the_legacy_save_still_works_and_says_409_when_stale(alice: ApiClient, router: str) -> None:
    r = put(alice, router, {"rev": 1, **record("Core router", password=OFFLINE_PW)})
    assert r.status_code == 200
    assert r.headers["ETag"] == '"2"'
    assert_problem(put(alice, router, {"rev": 1, **record("x")}), 409, "stale_revision")
    assert_problem(put(alice, router, record("x")), 400, "bad_request")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"if_match": "1"}, "bad_request"),
        ({"if_match": '"0"'}, "bad_request"),
        ({"if_match": '"1", "2"'}, "bad_request"),
        ({"if_none_match": '"1"'}, "bad_request"),
        ({"if_match": '"1"', "if_none_match": "*"}, "bad_request"),
        ({"if_match": '"1"', "offline": "yesterday"}, "bad_request"),
        ({"if_match": '"1"', "offline": "-5"}, "bad_request"),
        ({"if_match": '"1"', "change_id": "a b"}, "bad_request"),
        ({"if_match": '"1"', "change_id": "x" * 129}, "bad_request"),
    ],
)
def test_malformed_conditions_are_refused_and_change_nothing(
    demo: RunningServer, alice: ApiClient, router: str, headers: dict[str, str], code: str
) -> None:
    assert_problem(put(alice, router, record("x"), **headers), 400, code)
    assert demo.admin.exportable_view("demo", "alice")[router][0] == 1


# --- creates -------------------------------------------------------------------------------


def test_a_create_under_the_clients_id_and_its_resend_make_one_record(
    demo: RunningServer, alice: ApiClient
) -> None:
    body = record("Door controller", password=OFFLINE_PW)
    first = put(alice, NEW_ID, body, if_none_match="*", offline="1714550400.5")
    assert first.status_code == 201, first.text
    assert first.headers["ETag"] == '"1"'
    assert first.json()["id"] == NEW_ID
    again = put(alice, NEW_ID, body, if_none_match="*", offline="1714550400.5")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert [rid for rid, *_ in demo.admin.list_records("demo")] == [NEW_ID]
    other = put(alice, NEW_ID, record("Door controller", password="pw-other"), if_none_match="*")
    assert_problem(other, 412, "record_exists")
    assert other.json()["current"]["fields"] == {"password": OFFLINE_PW}
    # The creator holds every right on it, and it is in the creator's feed.
    rights = demo.admin.list_rights("demo", user="alice")
    assert [(r.read, r.write, r.export, r.delete) for r in rights] == [(True,) * 4]
    changes, _ = alice.read_all()
    assert [c["id"] for c in changes] == [NEW_ID]


def test_a_create_resend_with_its_change_id_is_recognised_after_others_edited_it(
    demo: RunningServer, alice: ApiClient
) -> None:
    body = record("Door controller", password=OFFLINE_PW)
    assert put(alice, NEW_ID, body, if_none_match="*", change_id="c-7").status_code == 201
    demo.admin.update_record("demo", NEW_ID, fields={"password": SERVER_PW})
    again = put(alice, NEW_ID, body, if_none_match="*", change_id="c-7")
    assert again.status_code == 200
    assert again.json()["rev"] == 2
    assert len(demo.admin.list_records("demo")) == 1


@pytest.mark.parametrize("bad_id", ["r1", NEW_ID.upper(), "{" + NEW_ID + "}", NEW_ID[:-1]])
def test_a_create_needs_a_canonical_uuid(
    demo: RunningServer, alice: ApiClient, bad_id: str
) -> None:
    assert_problem(put(alice, bad_id, record("x"), if_none_match="*"), 400, "bad_record_id")
    assert demo.admin.list_records("demo") == []


def test_a_create_needs_the_create_right_online_and_offline(
    demo: RunningServer, alice: ApiClient
) -> None:
    assert demo.admin.create_allowed("demo", "alice") is True
    demo.admin.set_create_right("demo", "alice", False)
    assert_problem(put(alice, NEW_ID, record("x"), if_none_match="*"), 403, "no_create_right")
    r = alice.http.post(f"{alice.base}/databases/demo/records", json=record("x"))
    assert_problem(r, 403, "no_create_right")
    assert demo.admin.list_records("demo") == []
    demo.admin.set_create_right("demo", "alice", True)
    assert put(alice, NEW_ID, record("x"), if_none_match="*").status_code == 201


def test_an_id_that_was_deleted_is_never_created_again(
    demo: RunningServer, alice: ApiClient
) -> None:
    assert put(alice, NEW_ID, record("x"), if_none_match="*").status_code == 201
    demo.admin.delete_record("demo", NEW_ID)
    assert_problem(put(alice, NEW_ID, record("x"), if_none_match="*"), 410, "record_deleted")
    assert_problem(put(alice, NEW_ID, record("x"), if_match='"1"'), 410, "record_deleted")
    assert demo.admin.list_records("demo") == []


def test_the_online_create_and_save_recognise_a_resend_by_its_change_id(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    url = f"{alice.base}/databases/demo/records"
    once = {"X-Change-Id": "post-1"}
    first = alice.http.post(url, json=record("Door"), headers=once)
    assert first.status_code == 201
    again = alice.http.post(url, json=record("Door"), headers=once)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(demo.admin.list_records("demo")) == 2
    saved = put(alice, router, {"rev": 1, **record("R2")}, change_id="save-1")
    assert saved.status_code == 200
    assert put(alice, router, {"rev": 1, **record("R2")}, change_id="save-1").json() == (
        saved.json()
    )
    assert_problem(
        put(alice, router, {"rev": 2, **record("R3")}, change_id="save-1"), 400, "change_id_reused"
    )
    assert_problem(
        alice.http.post(url, json=record("x"), headers={"X-Change-Id": "save-1"}),
        400,
        "change_id_reused",
    )
    demo.admin.delete_record("demo", first.json()["id"])
    assert_problem(alice.http.post(url, json=record("Door"), headers=once), 410, "record_deleted")
    assert [e.kind for e in demo.admin.audit_entries(user="alice")] == ["create", "update"]


# --- deletes -------------------------------------------------------------------------------


def test_a_delete_on_the_current_revision_removes_the_record_from_every_feed(
    demo: RunningServer, alice: ApiClient, bob: ApiClient, router: str
) -> None:
    replica: dict[str, int] = {}
    changes, page = bob.read_all()
    apply(replica, changes)
    assert replica == {router: 1}
    r = delete(alice, router, if_match='"1"', offline="1714550400")
    assert r.status_code == 204
    assert r.content == b""
    changes, _ = bob.read_all(page["next_cursor"])
    apply(replica, changes)
    assert replica == {}
    assert changes == [{"op": "delete", "id": router, "reason": "deleted"}]


def test_a_resent_delete_is_done_and_another_users_delete_is_410(
    demo: RunningServer, alice: ApiClient, bob: ApiClient, router: str
) -> None:
    assert delete(alice, router, if_match='"1"').status_code == 204
    assert delete(alice, router, if_match='"1"').status_code == 204  # lost answer, resent
    assert_problem(delete(alice, router, if_match='"2"'), 410, "record_deleted")
    assert_problem(delete(bob, router, if_match='"1"'), 410, "record_deleted")
    other = demo.admin.add_record("demo", "Other", {}, grant={"alice": "rwed"})
    assert delete(alice, other, if_match='"1"', change_id="del-1").status_code == 204
    assert delete(alice, other, if_match='"1"', change_id="del-1").status_code == 204
    assert_problem(delete(alice, str(uuid.uuid4()), if_match='"1"'), 404, "unknown_record")


def test_a_delete_needs_if_match_the_delete_right_and_the_current_revision(
    demo: RunningServer, alice: ApiClient, bob: ApiClient, router: str
) -> None:
    assert_problem(delete(alice, router), 428, "precondition_required")
    assert_problem(delete(alice, router, if_none_match="*"), 400, "bad_request")
    assert_problem(delete(bob, router, if_match='"1"'), 403, "no_delete_right")
    demo.admin.update_record("demo", router, name="Moved on")
    moved = delete(alice, router, if_match='"1"')
    assert_problem(moved, 412, "revision_moved")
    assert moved.json()["current"]["name"] == "Moved on"
    assert router in demo.admin.exportable_view("demo", "alice")


# --- rights --------------------------------------------------------------------------------


def test_writes_follow_the_record_rights_with_codes_that_never_mean_wipe(
    demo: RunningServer, alice: ApiClient, bob: ApiClient, router: str
) -> None:
    demo.admin.set_rights("demo", "bob", router, write=False)
    assert_problem(put(bob, router, record("x"), if_match='"1"'), 403, "no_write_right")
    demo.admin.set_rights("demo", "bob", router, read=False)
    assert_problem(put(bob, router, record("x"), if_match='"1"'), 404, "unknown_record")
    assert_problem(delete(bob, router, if_match='"1"'), 404, "unknown_record")
    demo.admin.seal_record("demo", router)
    assert_problem(put(alice, router, record("x"), if_match='"1"'), 403, "record_sealed")
    assert_problem(delete(alice, router, if_match='"1"'), 403, "record_sealed")
    assert_problem(put(alice, router, record("x"), if_none_match="*"), 403, "record_sealed")
    assert demo.admin.list_records("demo") == [(router, 1, "Core router", True)]


def test_a_write_right_taken_after_a_push_does_not_refuse_its_resend(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    body = record("Core router", password=OFFLINE_PW)
    assert put(alice, router, body, if_match='"1"', change_id="c-1").status_code == 200
    demo.admin.set_rights("demo", "alice", router, write=False)
    assert put(alice, router, body, if_match='"1"', change_id="c-1").status_code == 200
    assert_problem(put(alice, router, body, if_match='"2"'), 403, "no_write_right")


def test_delete_rights_are_set_listed_and_kept_by_an_older_file(
    demo: RunningServer, router: str
) -> None:
    rights = demo.admin.set_rights("demo", "bob", router, delete=True)
    assert (rights.read, rights.write, rights.export, rights.delete) == (True, True, True, True)
    listed = {r.user: r.delete for r in demo.admin.list_rights("demo")}
    assert listed == {"alice": True, "bob": True}


# --- feed, audit, policy -------------------------------------------------------------------


def test_a_conditional_write_reaches_the_feed_in_its_transaction(
    demo: RunningServer, alice: ApiClient, bob: ApiClient, router: str
) -> None:
    _, page = bob.read_all()
    assert put(alice, router, record("Renamed"), if_match='"1"').status_code == 200
    changes, last = bob.read_all(page["next_cursor"])
    assert [(c["op"], c["rev"], c["record"]["name"]) for c in changes] == [("upsert", 2, "Renamed")]
    assert last["digest"] == demo.admin.recompute_feed_digest("demo", "bob")


def test_the_audit_trail_says_who_changed_what_and_whether_offline(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    assert (
        put(
            alice, router, record("A"), if_match='"1"', offline="1714550400.25", change_id="c-1"
        ).status_code
        == 200
    )
    assert put(alice, NEW_ID, record("B"), if_none_match="*").status_code == 201
    assert delete(alice, NEW_ID, if_match='"1"', offline="1714550500").status_code == 204
    demo.admin.seal_record("demo", router)
    assert _audit(demo) == [
        ("update", router, "alice", True, 1714550400.25, 1, 2),
        ("create", NEW_ID, "alice", False, None, None, 1),
        ("delete", NEW_ID, "alice", True, 1714550500.0, 1, None),
        ("seal", router, "(server manager)", False, None, None, 2),
    ]
    [entry, *_] = demo.admin.audit_entries()
    assert (entry.db, entry.client_id, entry.change_id) == ("demo", "test-client", "c-1")
    assert [e[0] for e in _audit(demo, user="alice", db="demo")] == ["update", "create", "delete"]
    assert _audit(demo, db="other") == []
    assert _audit(demo, since=entry.at + 3600) == []
    text = repr(demo.admin.audit_entries())
    assert OFFLINE_PW not in text


def test_the_audit_trail_outlives_the_user(demo: RunningServer, alice: ApiClient) -> None:
    assert put(alice, NEW_ID, record("B"), if_none_match="*").status_code == 201
    demo.admin.delete_user("alice")
    assert [e[2] for e in _audit(demo, user="alice")] == ["alice"]


def test_offline_editing_is_off_by_default_and_shown_in_policy_and_head(
    demo: RunningServer, alice: ApiClient
) -> None:
    assert alice.get("/offline/policy").json()["offline_editing"] is False
    head = alice.get("/offline/head")
    assert head.json()["offline_editing"] is False
    assert [d.offline_editing for d in demo.admin.list_databases()] == [False]
    demo.admin.set_database_editing("demo", True)
    assert alice.get("/offline/policy").json()["offline_editing"] is True
    # Head is the policy check of an incremental sync: its ETag must change with the setting.
    changed = alice.get("/offline/head", headers={"If-None-Match": head.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.json()["offline_editing"] is True
    assert changed.headers["ETag"] != head.headers["ETag"]
    assert (
        alice.get("/offline/head", headers={"If-None-Match": changed.headers["ETag"]}).status_code
        == 304
    )


def test_a_push_is_taken_when_offline_editing_was_switched_off(
    demo: RunningServer, alice: ApiClient, router: str
) -> None:
    demo.admin.set_database_editing("demo", False)
    demo.admin.set_database_offline("demo", False)
    r = put(
        alice,
        router,
        record("Core router", password=OFFLINE_PW),
        if_match='"1"',
        offline="1714550400",
    )
    assert r.status_code == 200
