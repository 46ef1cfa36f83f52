"""Login, logout, password change and the record endpoints the host uses."""

from __future__ import annotations

import requests

from reference_server.testing import RunningServer
from tests.support.api import API, ApiClient


def _login(srv: RunningServer, **body: object) -> requests.Response:
    payload = {
        "database": "demo",
        "username": "alice",
        "password": "alice-pw",
        "client_id": "c1",
        **body,
    }
    return requests.post(f"{srv.url}{API}/session", json=payload, timeout=10)


def test_login_returns_token_user_and_server_time(demo: RunningServer) -> None:
    r = _login(demo)
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == demo.admin.user_id("alice")
    assert body["username"] == "alice"
    assert isinstance(body["token"], str)
    assert len(body["token"]) >= 32
    assert isinstance(body["server_time"], float)


def test_wrong_password_and_unknown_user_get_the_same_401(demo: RunningServer) -> None:
    wrong = _login(demo, password="pw-Zq8!wrong-guess")
    nobody = _login(demo, username="mallory")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["code"] == nobody.json()["code"] == "bad_credentials"
    assert wrong.headers["Content-Type"] == "application/problem+json"
    assert "pw-Zq8!wrong-guess" not in wrong.text


def test_login_to_unknown_database_is_404(demo: RunningServer) -> None:
    r = _login(demo, database="nosuch")
    assert r.status_code == 404
    assert r.json()["code"] == "unknown_database"


def test_logout_revokes_the_token(alice: ApiClient) -> None:
    assert alice.http.delete(f"{alice.base}/session").status_code == 204
    r = alice.get("/offline/policy")
    assert r.status_code == 401
    assert r.json()["code"] == "bad_token"


def test_token_is_bound_to_its_database(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.create_database("other")
    r = alice.http.get(f"{alice.base}/databases/other/records")
    assert r.status_code == 401
    assert r.json()["code"] == "bad_token"


def test_password_change_keeps_other_tokens_and_needs_old_password(
    demo: RunningServer, alice: ApiClient
) -> None:
    url = f"{alice.base}/session/password"
    bad = alice.http.post(url, json={"old_password": "x", "new_password": "new-pw"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "bad_credentials"
    ok = alice.http.post(url, json={"old_password": "alice-pw", "new_password": "new-pw"})
    assert ok.status_code == 204
    assert alice.get("/offline/policy").status_code == 200
    assert _login(demo).status_code == 401
    assert _login(demo, password="new-pw").status_code == 200


def test_create_gives_creator_all_rights_and_lists_it(
    alice: ApiClient, demo: RunningServer
) -> None:
    r = alice.http.post(
        f"{alice.base}/databases/demo/records",
        json={"name": "Mail", "fields": {"password": "s3cret"}},
    )
    assert r.status_code == 201
    record = r.json()
    assert record["rev"] == 1
    assert record["name"] == "Mail"
    assert alice.get(f"/records/{record['id']}").json() == record
    listed = alice.get("/records", params={"q": "mAi"}).json()
    assert listed["total"] == 1
    assert listed["records"] == [record]
    assert demo.admin.exportable_view("demo", "alice")[record["id"]][0] == 1


def test_update_bumps_rev_and_stale_update_gets_409_and_changes_nothing(
    alice: ApiClient,
) -> None:
    rec = alice.http.post(
        f"{alice.base}/databases/demo/records", json={"name": "A", "fields": {}}
    ).json()
    url = f"{alice.base}/databases/demo/records/{rec['id']}"
    ok = alice.http.put(url, json={"rev": 1, "name": "B", "fields": {"u": "x"}})
    assert ok.status_code == 200
    assert ok.json()["rev"] == 2
    stale = alice.http.put(url, json={"rev": 1, "name": "C", "fields": {}})
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_revision"
    now = alice.get(f"/records/{rec['id']}").json()
    assert (now["rev"], now["name"], now["fields"]) == (2, "B", {"u": "x"})


def test_reader_without_write_right_gets_403(demo: RunningServer, bob: ApiClient) -> None:
    [rid] = demo.admin.import_records("demo", [{"name": "R", "fields": {}}], grant={"bob": "re"})
    r = bob.http.put(
        f"{bob.base}/databases/demo/records/{rid}", json={"rev": 1, "name": "X", "fields": {}}
    )
    assert r.status_code == 403
    assert r.json()["code"] == "no_write_right"
    assert demo.admin.list_records("demo")[0][1:3] == (1, "R")


def test_record_without_read_right_or_sealed_is_404_and_unlisted(
    demo: RunningServer, bob: ApiClient
) -> None:
    hidden, sealed = demo.admin.import_records(
        "demo",
        [{"name": "hidden", "fields": {}}, {"name": "sealed", "fields": {}}],
        grant={"alice": "rwe"},
    )
    demo.admin.set_rights("demo", "bob", sealed, read=True, write=True, export=True)
    demo.admin.seal_record("demo", sealed)
    for rid in (hidden, sealed):
        r = bob.get(f"/records/{rid}")
        assert r.status_code == 404
        assert r.json()["code"] == "unknown_record"
    assert bob.get("/records").json() == {"records": [], "total": 0}


def test_policy_reports_switches_and_validity(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.set_user_offline("alice", enabled=False, validity_days=2)
    demo.admin.set_database_offline("demo", False)
    body = alice.get("/offline/policy").json()
    assert body["offline_enabled"] is False
    assert body["offline_right"] is False
    assert body["validity_seconds"] == 2 * 86400
    assert isinstance(body["server_time"], float)


def test_offline_endpoints_refuse_when_switched_off(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.set_user_offline("alice", enabled=False)
    for path in ("/offline/head", "/offline/changes"):
        r = alice.get(path)
        assert r.status_code == 403
        assert r.json()["code"] == "offline_right_missing"
    demo.admin.set_database_offline("demo", False)
    assert alice.get("/offline/head").json()["code"] == "offline_disabled"
