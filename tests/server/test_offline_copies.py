"""The offline copies registry: clients report their copies, the server manager lists them
(``psr-server admin offline list`` and ``GET /admin/offline/copies``), and what the server
itself takes away shows there until the client's next word."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
import requests

from reference_server.admin import Admin
from reference_server.testing import RunningServer, running_server
from tests.support.accountability import (
    copy_report,
    copy_url,
    event,
    forget_copy,
    manager_list,
    post_events,
    report_copy,
)
from tests.support.accounts import log_in
from tests.support.api import API_CLIENT_ID, ApiClient, assert_problem
from tests.support.servers import PsrRunner, seed

T0 = 1_714_600_000.0  # 2024-05-01 21:46:40 UTC


def _states(admin: Admin, **kw: object) -> list[tuple[str, str, str, str, str | None]]:
    return [
        (c.db, c.user_name, c.client_id, c.state, c.why)
        for c in admin.offline_copies(**kw)  # type: ignore[arg-type]
    ]


def test_a_report_is_listed_with_the_server_time_as_last_sync(tmp_path: Path) -> None:
    now = [T0]
    with running_server(tmp_path / "srv", clock=lambda: now[0]) as srv:
        seed(srv, "demo", {"alice": "alice-pw"})
        alice = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        r = report_copy(alice, copy_report(1840, 2, 7, complete=True))
        assert r.status_code == 200, r.text
        assert r.json()["last_sync"] == T0
        assert r.json()["state"] == "present"
        now[0] += 60
        resend = report_copy(alice, copy_report(1841, 0, 0))
        alice.close()
        assert resend.json()["last_sync"] == T0 + 60
        [copy] = srv.admin.offline_copies()
    assert (copy.user_name, copy.client_id, copy.db, copy.last_sync) == (
        "alice",
        API_CLIENT_ID,
        "demo",
        T0 + 60,
    )
    assert (copy.record_count, copy.pending_changes, copy.unpushed_log_entries) == (1841, 0, 0)


def test_the_list_matches_the_copies_reported_and_deleted(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    laptop = ApiClient(demo.url, "demo")
    laptop.http.headers["X-Client-Id"] = "laptop-2"
    session = log_in(demo.url, "demo", "alice", "alice-pw", client_id="laptop-2")
    laptop.http.headers["Authorization"] = "Bearer " + session.token
    for client, client_id in ((alice, API_CLIENT_ID), (bob, API_CLIENT_ID), (laptop, "laptop-2")):
        assert report_copy(client, client_id=client_id).status_code == 200
    assert _states(demo.admin) == [
        ("demo", "alice", "laptop-2", "present", None),
        ("demo", "alice", API_CLIENT_ID, "present", None),
        ("demo", "bob", API_CLIENT_ID, "present", None),
    ]
    assert forget_copy(laptop, "laptop-2").status_code == 204
    assert forget_copy(laptop, "laptop-2").status_code == 204  # idempotent
    assert [c[1:3] for c in _states(demo.admin)] == [
        ("alice", API_CLIENT_ID),
        ("bob", API_CLIENT_ID),
    ]
    assert ("demo", "alice", "laptop-2", "wiped", None) in _states(demo.admin, include_wiped=True)
    laptop.close()


def test_deleting_a_copy_never_reported_is_fine(alice: ApiClient) -> None:
    assert forget_copy(alice).status_code == 204


def test_a_report_for_another_client_installation_is_refused(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    report_copy(bob)
    assert_problem(report_copy(alice, client_id="bobs-laptop"), 403, "client_mismatch")
    assert_problem(forget_copy(alice, "bobs-laptop"), 403, "client_mismatch")
    # alice's DELETE of her own installation never touches bob's copy on the same computer.
    assert forget_copy(alice).status_code == 204
    assert _states(demo.admin) == [("demo", "bob", API_CLIENT_ID, "present", None)]


def test_a_client_id_with_a_slash_is_one_path_segment(demo: RunningServer) -> None:
    client = ApiClient(demo.url, "demo")
    token = log_in(demo.url, "demo", "alice", "alice-pw", client_id="site/laptop 7").token
    client.http.headers["Authorization"] = "Bearer " + token
    url = copy_url(client, "site%2Flaptop%207")
    assert client.http.put(url, json=copy_report()).status_code == 200
    assert _states(demo.admin)[0][2] == "site/laptop 7"
    client.close()


@pytest.mark.parametrize(
    "body",
    [
        {**copy_report(), "last_sync": 1},
        {**copy_report(), "records": [{"password": "Qx7-offline-secret-91zz"}]},
        {k: v for k, v in copy_report().items() if k != "complete"},
        {**copy_report(), "record_count": -1},
        {**copy_report(), "record_count": 10**12},
        {**copy_report(), "pending_changes": True},
        {**copy_report(), "unpushed_log_entries": 1.5},
        {**copy_report(), "complete": "yes"},
    ],
)
def test_a_malformed_report_is_refused_and_changes_nothing(
    demo: RunningServer, alice: ApiClient, body: dict[str, object]
) -> None:
    report_copy(alice, copy_report(5))
    r = alice.http.put(copy_url(alice), json=body)
    assert_problem(r, 400, "bad_request")
    assert "Qx7-offline-secret-91zz" not in r.text
    assert [c.record_count for c in demo.admin.offline_copies()] == [5]


def test_a_report_needs_a_token_for_that_database(demo: RunningServer) -> None:
    r = requests.put(copy_url(ApiClient(demo.url, "demo")), json=copy_report(), timeout=30)
    assert_problem(r, 401, "bad_token")
    assert demo.admin.offline_copies() == []


# --- what the server takes away ----------------------------------------------------------


def test_taking_the_offline_right_marks_the_copy_revoked_until_the_client_says_more(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    report_copy(alice)
    report_copy(bob)
    demo.admin.set_user_offline("alice", enabled=False)
    assert _states(demo.admin) == [
        ("demo", "alice", API_CLIENT_ID, "revoked", "offline right taken"),
        ("demo", "bob", API_CLIENT_ID, "present", None),
    ]
    # A report arriving meanwhile (a sync racing the change) keeps it revoked.
    assert report_copy(alice).json()["state"] == "revoked"
    # The client wipes the copy and says so.
    forget_copy(alice)
    assert [c[1] for c in _states(demo.admin)] == ["bob"]


def test_a_right_given_back_before_the_next_sync_makes_the_copy_present_again(
    demo: RunningServer, alice: ApiClient
) -> None:
    report_copy(alice)
    demo.admin.set_database_offline("demo", False)
    assert _states(demo.admin)[0][3:] == ("revoked", "database offline use switched off")
    demo.admin.set_database_offline("demo", True)
    assert _states(demo.admin)[0][3] == "revoked"  # until the client's next report says
    assert report_copy(alice).json()["state"] == "present"


def test_deleting_the_user_or_the_database_keeps_their_copies_listed_as_revoked(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    report_copy(alice)
    report_copy(bob)
    demo.admin.delete_user("alice")
    demo.admin.delete_database("demo")
    assert _states(demo.admin) == [
        ("demo", "alice", API_CLIENT_ID, "revoked", "user deleted"),
        ("demo", "bob", API_CLIENT_ID, "revoked", "database deleted"),
    ]


# --- the server manager's views ----------------------------------------------------------


def test_offline_list_prints_the_copies(tmp_path: Path, psr: PsrRunner) -> None:
    now = [T0]
    with running_server(tmp_path / "srv", clock=lambda: now[0]) as srv:
        seed(srv, "demo", {"alice": "alice-pw", "bob": "bob-pw"})
        srv.admin.create_database("other")
        data = srv.data_dir
        assert psr("admin", "--data", data, "offline", "list").out == (
            "no offline copies reported\n"
        )
        alice = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        report_copy(alice, copy_report(1840, 2, 7))
        bob = ApiClient(srv.url, "other").login("bob", "bob-pw")
        report_copy(bob, copy_report(12, 0, 0, complete=False))
        now[0] += 3600
        srv.admin.set_user_offline("bob", enabled=False)
        alice.close()
        bob.close()
        out = psr("admin", "--data", data, "offline", "list")
        assert out.code == 0, out.err
        lines = out.out.splitlines()
        assert lines[0].split() == [
            "USER",
            "CLIENT",
            "DATABASE",
            "LAST",
            "SYNC",
            "(UTC)",
            "RECORDS",
            "PENDING",
            "CHANGES",
            "UNPUSHED",
            "LOG",
            "STATE",
        ]
        assert lines[1].split() == [
            "alice",
            API_CLIENT_ID,
            "demo",
            "2024-05-01",
            "21:46:40",
            "1840",
            "2",
            "7",
            "present",
        ]
        assert lines[2].split()[:8] == [
            "bob",
            API_CLIENT_ID,
            "other",
            "2024-05-01",
            "21:46:40",
            "12",
            "0",
            "0",
        ]
        assert lines[2].endswith(
            "revoked 2024-05-01 22:46:40 (offline right taken): deleted at its next sync"
        )
        only_demo = psr("admin", "--data", data, "offline", "list", "--db", "demo").out
        assert len(only_demo.splitlines()) == 2
        assert psr("admin", "--data", data, "offline", "list", "--db", "x").out == (
            "no offline copies of database x reported\n"
        )


def test_the_admin_endpoint_lists_the_same_as_the_command(
    demo: RunningServer, alice: ApiClient, bob: ApiClient
) -> None:
    token = demo.admin.create_manager_token("monitoring")
    report_copy(alice, copy_report(3, 1, 0))
    report_copy(bob)
    forget_copy(bob)
    r = manager_list(demo.url, token)
    assert r.status_code == 200, r.text
    assert [c["username"] for c in r.json()["copies"]] == ["alice"]
    assert r.json()["copies"][0] == demo.admin.offline_copies()[0].to_wire()
    assert r.json()["copies"][0]["pending_changes"] == 1
    everything = manager_list(demo.url, token, include_wiped="true").json()["copies"]
    assert [(c["username"], c["state"]) for c in everything] == [
        ("alice", "present"),
        ("bob", "wiped"),
    ]
    assert manager_list(demo.url, token, db="other").json()["copies"] == []
    assert_problem(manager_list(demo.url, token, include_wiped="1"), 400, "bad_request")


def test_the_admin_endpoint_wants_a_server_manager_token(
    demo: RunningServer, alice: ApiClient
) -> None:
    user_token = str(alice.http.headers["Authorization"]).removeprefix("Bearer ")
    assert_problem(manager_list(demo.url, None), 401, "bad_token")
    assert_problem(manager_list(demo.url, "psrm_not-a-token"), 401, "bad_token")
    assert_problem(manager_list(demo.url, user_token), 403, "not_server_manager")
    token = demo.admin.create_manager_token("old")
    demo.admin.revoke_manager_token("old")
    assert_problem(manager_list(demo.url, token), 401, "bad_token")


def test_manager_tokens_are_made_listed_and_revoked_by_the_command_and_stored_hashed(
    demo: RunningServer, psr: PsrRunner
) -> None:
    data = demo.data_dir
    made = psr("admin", "--data", data, "api-token", "create", "monitoring")
    assert made.code == 0, made.err
    token = made.out.strip()
    assert token.startswith("psrm_")
    assert "shown only this once" in made.err
    assert token not in made.err
    assert manager_list(demo.url, token).status_code == 200
    again = psr("admin", "--data", data, "api-token", "create", "monitoring")
    assert (again.code, again.out) == (1, "")
    assert "exists" in again.err
    listed = psr("admin", "--data", data, "api-token", "list").out
    assert listed.startswith("monitoring\tcreated ")
    assert token not in listed
    conn = sqlite3.connect(data / "server.sqlite3")
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    conn.close()
    stored = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert token.encode() not in stored
    assert psr("admin", "--data", data, "api-token", "revoke", "monitoring").out == (
        "revoked server manager token monitoring\n"
    )
    assert manager_list(demo.url, token).status_code == 401
    gone = psr("admin", "--data", data, "api-token", "revoke", "monitoring")
    assert gone.code == 1
    assert "no server manager token" in gone.err
    assert psr("admin", "--data", data, "api-token", "list").out == "no server manager tokens\n"


def test_the_data_folder_stays_owner_only(
    demo: RunningServer, alice: ApiClient, psr: PsrRunner
) -> None:
    post_events(alice, [event("mode-1")])
    report_copy(alice)
    psr("admin", "--data", demo.data_dir, "api-token", "create", "mode-check")
    assert stat.S_IMODE(demo.data_dir.stat().st_mode) == 0o700
    for path in demo.data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_offline_list_and_audit_list_never_print_a_clients_control_characters(
    demo: RunningServer, psr: PsrRunner
) -> None:
    sly = "inst\x1b[2J\x07"
    client = ApiClient(demo.url, "demo")
    login = {"database": "demo", "username": "alice", "password": "alice-pw", "client_id": sly}
    token = client.http.post(f"{client.base}/session", json=login).json()["token"]
    client.http.headers["Authorization"] = "Bearer " + token
    assert client.http.put(copy_url(client, "inst%1B%5B2J%07"), json=copy_report()).ok
    evil = event("cc-1", "field_copied", "rec\x1b]0;x\x07", "pass\x1bword", client_id=sly)
    assert post_events(client, [evil]).status_code == 200
    client.close()
    for area in ("offline", "audit"):
        out = psr("admin", "--data", demo.data_dir, area, "list").out
        assert "\x1b" not in out
        assert "\x07" not in out
        assert "inst?[2J?" in out
