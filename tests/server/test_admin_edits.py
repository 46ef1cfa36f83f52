"""``psr-server admin`` for offline edits: the editing setting, delete and create rights, the
audit trail; and a data folder made before they existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests

from reference_server.admin import Admin
from reference_server.testing import running_server
from tests.support.api import API, ApiClient
from tests.support.servers import PsrRunner

NEW_ID = "3f2b8c1d-4e5a-4b6c-8d7e-9f0a1b2c3d4e"


@pytest.fixture
def data(tmp_path: Path, psr: PsrRunner) -> Path:
    folder = tmp_path / "server-data"
    assert psr("admin", "--data", folder, "init").code == 0
    with Admin(folder) as admin:
        admin.create_database("demo")
        admin.create_user("alice", "alice-pw", offline_right=True)
    return folder


def test_db_editing_switches_the_setting_and_db_list_shows_it(data: Path, psr: PsrRunner) -> None:
    assert psr("admin", "--data", data, "db", "list").out == (
        "demo\toffline allowed\t0 records\tediting off\t10 login attempts\n"
    )
    out = psr("admin", "--data", data, "db", "editing", "demo", "on")
    assert out.out == (
        "offline editing of database demo is now on: users may change their "
        "offline copies; the changes are pushed under their record rights\n"
    )
    assert psr("admin", "--data", data, "db", "list").out.endswith(
        "\tediting on\t10 login attempts\n"
    )
    out = psr("admin", "--data", data, "db", "editing", "demo", "off")
    assert "offline copies are read-only; changes made offline before are still pushed" in (out.out)
    assert psr("admin", "--data", data, "db", "editing", "nowhere", "on").code == 1
    assert psr("admin", "--data", data, "db", "editing", "demo", "maybe").code == 2


def test_right_set_gives_and_takes_the_delete_right_and_right_list_shows_it(
    data: Path, psr: PsrRunner
) -> None:
    with Admin(data) as admin:
        rid = admin.add_record("demo", "VPN", {}, grant={"alice": "rw"})
    out = psr("admin", "--data", data, "right", "set", "demo", "alice", rid, "--delete")
    assert out.out == f"rights of alice on record {rid} in demo: rwd\n"
    lines = psr("admin", "--data", data, "right", "list", "demo").out.splitlines()
    assert [line.split() for line in lines] == [
        ["USER", "RECORD", "ID", "READ", "WRITE", "EXPORT", "DELETE", "STATE", "NAME"],
        ["alice", rid, "yes", "yes", "no", "yes", "open", "VPN"],
    ]
    out = psr("admin", "--data", data, "right", "set", "demo", "alice", rid, "--no-delete")
    assert out.out.endswith(": rw\n")


def test_record_add_grants_the_delete_right_by_letter(data: Path, psr: PsrRunner) -> None:
    out = psr("admin", "--data", data, "record", "add", "demo", "VPN", "--grant", "alice=rwed")
    assert out.code == 0, out.err
    with Admin(data) as admin:
        [right] = admin.list_rights("demo")
    assert (right.read, right.write, right.export, right.delete) == (True, True, True, True)


def test_user_create_right_takes_and_gives_the_right_to_create(data: Path, psr: PsrRunner) -> None:
    out = psr("admin", "--data", data, "user", "create-right", "alice", "demo", "off")
    assert out.out == "user alice may not create records in demo\n"
    with Admin(data) as admin:
        assert admin.create_allowed("demo", "alice") is False
    out = psr("admin", "--data", data, "user", "create-right", "alice", "demo", "on")
    assert out.out == "user alice may create records in demo\n"
    assert psr("admin", "--data", data, "user", "create-right", "bob", "demo", "on").code == 1
    assert psr("admin", "--data", data, "user", "create-right", "alice", "x", "on").code == 1


def test_audit_list_shows_who_changed_what_and_when_it_was_made_offline(
    data: Path, psr: PsrRunner
) -> None:
    assert psr("admin", "--data", data, "audit", "list").out == "no audit entries\n"
    with running_server(data, clock=lambda: 1_714_600_000.0) as srv:
        alice = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        r = alice.http.put(
            f"{alice.base}/databases/demo/records/{NEW_ID}",
            json={"name": "Door", "fields": {"password": "pw-Mv6!offline-edit"}},
            headers={"If-None-Match": "*", "X-Offline-Change": "1714550400"},
        )
        assert r.status_code == 201
        r = alice.http.put(
            f"{alice.base}/databases/demo/records/{NEW_ID}",
            json={"name": "Door 2", "fields": {}},
            headers={"If-Match": '"1"'},
        )
        assert r.status_code == 200
        alice.close()
    lines = psr("admin", "--data", data, "audit", "list").out.splitlines()
    assert [line.split() for line in lines] == [
        [
            "TIME",
            "(UTC)",
            "USER",
            "DATABASE",
            "KIND",
            "RECORD",
            "ID",
            "FIELD",
            "REV",
            "MADE",
            "CLIENT",
        ],
        [
            "2024-05-01",
            "21:46:40",
            "alice",
            "demo",
            "create",
            NEW_ID,
            "-",
            "1",
            "offline",
            "2024-05-01",
            "08:00:00",
            "(client",
            "clock)",
            "test-client",
        ],
        [
            "2024-05-01",
            "21:46:40",
            "alice",
            "demo",
            "update",
            NEW_ID,
            "-",
            "1->2",
            "online",
            "test-client",
        ],
    ]
    assert "pw-Mv6!offline-edit" not in "\n".join(lines)
    for args, count in [
        (["--user", "alice"], 2),
        (["--user", "bob"], 0),
        (["--db", "x"], 0),
        (["--since", "2024-05-02"], 0),
        (["--since", "2024-05-01T21:00"], 2),
        (["--since", "1714600001"], 0),
        (["--limit", "1"], 1),
    ]:
        out = psr("admin", "--data", data, "audit", "list", *args).out.splitlines()
        assert len(out) - 1 == count or (count == 0 and out == ["no audit entries match"]), args
    out = psr("admin", "--data", data, "audit", "list", "--since", "last week")
    assert out.code == 2
    assert "must be UNIX seconds or a date like 2024-05-01" in out.err


def test_a_data_folder_from_before_offline_edits_gains_the_columns_with_safe_defaults(
    data: Path,
) -> None:
    with Admin(data) as admin:
        rid = admin.add_record("demo", "VPN", {}, grant={"alice": "rwe"})
    # Make it look like a file from before: without the new columns.
    conn = sqlite3.connect(data / "server.sqlite3")
    for table, column in (
        ("databases", "offline_editing"),
        ("rights", "can_delete"),
        ("databases", "offline_login_attempts"),
        ("audit", "field"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.commit()
    conn.close()
    with running_server(data) as srv:
        info = srv.admin.list_databases()
        assert [(d.offline_allowed, d.offline_editing) for d in info] == [(True, False)]
        [right] = srv.admin.list_rights("demo")
        assert (right.read, right.write, right.export, right.delete) == (True, True, True, False)
        r = requests.post(
            f"{srv.url}{API}/session",
            timeout=10,
            json={
                "database": "demo",
                "username": "alice",
                "password": "alice-pw",
                "client_id": "c",
            },
        )
        token = r.json()["token"]
        policy = requests.get(
            f"{srv.url}{API}/databases/demo/offline/policy",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert policy["offline_editing"] is False
        assert policy["offline_login_attempts"] == 10
        assert rid
