"""``POST .../offline/audit``: what users did offline reaches the audit trail once, and nothing
else can ride along (no values, no search terms, no other user's or client's events)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
import requests

from reference_server.audit import AuditEntry
from reference_server.testing import RunningServer, ServerProcess, running_server
from tests.support.accountability import LOCAL_TIME, event, post_events
from tests.support.api import API, API_CLIENT_ID, ApiClient, assert_problem
from tests.support.servers import PsrRunner, seed

SECRET_VALUE = "Qx7-offline-secret-91zz"
SEARCH_TERM = "Qx7-search-term-44kk"


def _offline_entries(srv: RunningServer, user: str | None = None) -> list[AuditEntry]:
    return [e for e in srv.admin.audit_entries(user=user) if e.kind != "create"]


def _ids(srv: RunningServer) -> list[str | None]:
    return [e.change_id for e in _offline_entries(srv)]


def test_a_batch_is_recorded_as_offline_events_with_local_and_receive_time(
    tmp_path: Path,
) -> None:
    now = [1_800_000_000.0]
    with running_server(tmp_path / "srv", clock=lambda: now[0]) as srv:
        seed(srv, "demo", {"alice": "alice-pw"})
        alice = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        events = [
            event("e-1", "offline_login"),
            event("e-2", "record_shown", "rec-7"),
            event("e-3", "field_revealed", "rec-7", "password"),
            event("e-4", "field_copied", "rec-7", "username", local_time=LOCAL_TIME + 5),
        ]
        r = post_events(alice, events)
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 4, "recorded": 4, "known": 0, "server_time": now[0]}
        alice.close()
        entries = _offline_entries(srv)
    assert [(e.kind, e.record_id, e.field) for e in entries] == [
        ("offline_login", None, None),
        ("record_shown", "rec-7", None),
        ("field_revealed", "rec-7", "password"),
        ("field_copied", "rec-7", "username"),
    ]
    assert {(e.user_name, e.db, e.client_id, e.offline, e.at) for e in entries} == {
        ("alice", "demo", API_CLIENT_ID, True, 1_800_000_000.0)
    }
    assert [e.local_time for e in entries] == [LOCAL_TIME] * 3 + [LOCAL_TIME + 5]
    assert [e.change_id for e in entries] == ["e-1", "e-2", "e-3", "e-4"]


def test_the_same_batch_twice_is_recorded_once(demo: RunningServer, alice: ApiClient) -> None:
    batch = [event("a-1"), event("a-2", "field_copied")]
    assert post_events(alice, batch).json()["recorded"] == 2
    again = post_events(alice, batch).json()
    assert (again["received"], again["recorded"], again["known"]) == (2, 0, 2)
    assert _ids(demo) == ["a-1", "a-2"]


def test_a_batch_with_half_known_ids_records_only_the_new_half(
    demo: RunningServer, alice: ApiClient
) -> None:
    post_events(alice, [event("h-1"), event("h-2")])
    r = post_events(alice, [event("h-1"), event("h-3"), event("h-2"), event("h-4")])
    assert (r.json()["recorded"], r.json()["known"]) == (2, 2)
    assert _ids(demo) == ["h-1", "h-2", "h-3", "h-4"]


def test_an_id_twice_in_one_batch_is_recorded_once(demo: RunningServer, alice: ApiClient) -> None:
    r = post_events(alice, [event("d-1"), event("d-1", "field_copied")])
    assert (r.json()["recorded"], r.json()["known"]) == (1, 1)
    assert [e.kind for e in _offline_entries(demo)] == ["record_shown"]


def test_two_clients_sending_the_same_batch_at_once_record_it_once(
    demo: RunningServer, alice: ApiClient
) -> None:
    batch = [event(f"c-{i}") for i in range(50)]
    answers: list[dict[str, int]] = []
    start = threading.Barrier(4)

    def send() -> None:
        client = ApiClient(demo.url, "demo").login("alice", "alice-pw")
        start.wait()
        answers.append(post_events(client, batch).json())
        client.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4
    assert sum(a["recorded"] for a in answers) == 50
    assert sorted(str(i) for i in _ids(demo)) == sorted(e["id"] for e in batch)


def test_ids_are_per_user_and_client_installation(demo: RunningServer, alice: ApiClient) -> None:
    bob = ApiClient(demo.url, "demo").login("bob", "bob-pw")
    assert post_events(alice, [event("same-id")]).json()["recorded"] == 1
    assert post_events(bob, [event("same-id")]).json()["recorded"] == 1
    bob.close()
    assert [e.user_name for e in _offline_entries(demo)] == ["alice", "bob"]


def test_an_event_id_used_by_a_write_counts_as_known(demo: RunningServer, alice: ApiClient) -> None:
    created = alice.http.post(
        f"{alice.base}/databases/demo/records",
        json={"name": "Mail", "fields": {}},
        headers={"X-Change-Id": "shared-id"},
    )
    assert created.status_code == 201
    assert post_events(alice, [event("shared-id")]).json()["known"] == 1


# --- bounds ------------------------------------------------------------------------------


def test_500_events_are_taken_and_501_refused_whole(demo: RunningServer, alice: ApiClient) -> None:
    r = post_events(alice, [event(f"n-{i}") for i in range(501)])
    assert_problem(r, 400, "bad_request")
    assert "at most 500 events" in r.json()["detail"]
    assert _ids(demo) == []
    assert post_events(alice, [event(f"n-{i}") for i in range(500)]).json()["recorded"] == 500


def test_a_body_over_512_kib_is_413_and_records_nothing(
    demo: RunningServer, alice: ApiClient
) -> None:
    padded = [event(f"p-{i}", record_id="r" * 256) for i in range(500)]
    body = json.dumps({"events": padded}).encode() + b" " * (512 * 1024)
    r = alice.http.post(
        f"{alice.base}/databases/demo/offline/audit",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")
    # Without Content-Length (chunked) the limit holds as well.
    chunked = alice.http.post(
        f"{alice.base}/databases/demo/offline/audit",
        data=iter([body[: len(body) // 2], body[len(body) // 2 :]]),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(chunked, 413, "payload_too_large")
    assert _ids(demo) == []


@pytest.mark.parametrize(
    "key", ["value", "field_value", "password", "search", "search_term", "query", "q", "text"]
)
def test_an_event_with_any_other_key_is_refused_and_its_value_kept_out(
    demo: RunningServer,
    alice: ApiClient,
    key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sneaky = {**event("k-2", "field_revealed"), key: SECRET_VALUE}
    r = post_events(alice, [event("k-1"), sneaky])
    assert_problem(r, 400, "bad_request")
    assert "Event 2 has a key the server does not take" in r.json()["detail"]
    assert SECRET_VALUE not in r.text
    assert SECRET_VALUE not in caplog.text
    assert _ids(demo) == []  # the good event of the batch is not recorded either


def test_no_field_value_or_search_term_reaches_the_server_file(
    demo: RunningServer, alice: ApiClient
) -> None:
    attempts = [
        {**event("v-1", "field_revealed"), "value": SECRET_VALUE},
        {**event("v-2"), "search": SEARCH_TERM},
        event("v-3", "field_copied", field=SECRET_VALUE * 20),  # a "name" too long to be one
        {"events": [event("v-4")], "search_term": SEARCH_TERM},
    ]
    for attempt in attempts[:3]:
        assert post_events(alice, [attempt]).status_code == 400
    wrapped = alice.http.post(f"{alice.base}/databases/demo/offline/audit", json=attempts[3])
    assert_problem(wrapped, 400, "bad_request")
    demo.admin.connection.execute("PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in demo.data_dir.iterdir() if p.is_file())
    assert SECRET_VALUE.encode() not in stored
    assert SEARCH_TERM.encode() not in stored


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "record_opened"}, "'kind' must be one of"),
        ({"id": ""}, "'id' must be 1-128"),
        ({"id": "x" * 129}, "'id' must be 1-128"),
        ({"id": "has space"}, "'id' must be 1-128"),
        ({"id": 7}, "'id' must be 1-128"),
        ({"local_time": -1}, "'local_time' must be"),
        ({"local_time": "1714550400"}, "'local_time' must be"),
        ({"local_time": True}, "'local_time' must be"),
        ({"local_time": 1e12}, "'local_time' must be"),
        ({"record_id": ""}, "needs 'record_id'"),
        ({"record_id": "r" * 257}, "needs 'record_id'"),
        ({"record_id": None}, "needs 'record_id'"),
    ],
)
def test_a_malformed_event_is_refused_with_the_reason(
    alice: ApiClient, change: dict[str, object], message: str
) -> None:
    r = post_events(alice, [{**event("m-1"), **change}])
    assert_problem(r, 400, "bad_request")
    assert message in r.json()["detail"]


def test_each_kind_takes_exactly_its_parts(alice: ApiClient) -> None:
    login_with_record = {**event("x-1", "offline_login"), "record_id": "rec-1"}
    shown_with_field = {**event("x-2", "record_shown"), "field": "password"}
    revealed_without_field = {
        k: v for k, v in event("x-3", "field_revealed").items() if k != "field"
    }
    for bad, message in [
        (login_with_record, "'offline_login' event has no 'record_id'"),
        (shown_with_field, "'record_shown' event has no 'field'"),
        (revealed_without_field, "'field_revealed' event needs 'field'"),
    ]:
        r = post_events(alice, [bad])
        assert_problem(r, 400, "bad_request")
        assert message in r.json()["detail"]


@pytest.mark.parametrize(
    "body", [[], {"events": {}}, {"events": [1]}, {}, {"events": [], "extra": 1}, "x"]
)
def test_a_body_that_is_not_a_batch_is_refused(alice: ApiClient, body: object) -> None:
    r = alice.http.post(f"{alice.base}/databases/demo/offline/audit", json=body)
    assert_problem(r, 400, "bad_request")


def test_an_empty_batch_records_nothing(alice: ApiClient) -> None:
    assert post_events(alice, []).json()["received"] == 0


# --- who may log -------------------------------------------------------------------------


def test_events_of_another_client_installation_are_refused(
    demo: RunningServer, alice: ApiClient
) -> None:
    r = post_events(alice, [event("o-1"), event("o-2", client_id="someone-elses-laptop")])
    assert_problem(r, 403, "client_mismatch")
    assert "Event 2" in r.json()["detail"]
    assert _ids(demo) == []


def test_events_are_always_the_token_users(demo: RunningServer, bob: ApiClient) -> None:
    # There is no user in an event: bob can only ever log for bob.
    r = post_events(bob, [{**event("u-1"), "user": "alice"}])
    assert_problem(r, 400, "bad_request")
    post_events(bob, [event("u-2")])
    assert [e.user_name for e in _offline_entries(demo)] == ["bob"]


def test_a_token_is_needed_for_that_database(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.create_database("other")
    other = ApiClient(demo.url, "other").login("alice", "alice-pw")
    anonymous = requests.post(
        f"{demo.url}{API}/databases/demo/offline/audit", json={"events": [event("t-1")]}, timeout=30
    )
    assert_problem(anonymous, 401, "bad_token")
    other.db = "demo"  # alice's token for "other", sent to "demo"
    assert_problem(post_events(other, [event("t-2")]), 401, "bad_token")
    other.db = "nowhere"
    assert_problem(post_events(other, [event("t-3")]), 404, "unknown_database")
    other.close()
    assert _ids(demo) == []


def test_a_copy_being_deleted_can_still_push_its_log(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.set_user_offline("alice", enabled=False)
    demo.admin.set_database_offline("demo", False)
    assert post_events(alice, [event("w-1")]).json()["recorded"] == 1


# --- audit list --------------------------------------------------------------------------


def test_audit_list_shows_the_events_and_filters_them(tmp_path: Path, psr: PsrRunner) -> None:
    now = [1_714_600_000.0]  # 2024-05-01 21:46:40 UTC
    with running_server(tmp_path / "srv", clock=lambda: now[0]) as srv:
        seed(srv, "demo", {"alice": "alice-pw", "bob": "bob-pw"})
        srv.admin.create_database("other")
        alice = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        post_events(alice, [event("l-1", "offline_login"), event("l-2", "field_copied")])
        now[0] += 86_400  # a day later
        bob = ApiClient(srv.url, "other").login("bob", "bob-pw")
        post_events(bob, [event("l-3", "record_shown", "rec-9")])
        alice.close()
        bob.close()
        data = srv.data_dir

        def rows(*args: str) -> list[list[str]]:
            out = psr("admin", "--data", data, "audit", "list", *args)
            assert out.code == 0, out.err
            return [line.split() for line in out.out.splitlines()[1:]]

        everything = rows()
        assert psr("admin", "--data", data, "audit", "list").out.splitlines()[0].split() == [
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
        ]
        assert everything[1] == [
            "2024-05-01",
            "21:46:40",
            "alice",
            "demo",
            "field_copied",
            "rec-1",
            "password",
            "-",
            "offline",
            "2024-05-01",
            "08:00:00",
            "(client",
            "clock)",
            API_CLIENT_ID,
        ]
        assert [r[4] for r in everything] == ["offline_login", "field_copied", "record_shown"]
        assert [r[4] for r in rows("--user", "bob")] == ["record_shown"]
        assert [r[4] for r in rows("--db", "demo")] == ["offline_login", "field_copied"]
        assert [r[4] for r in rows("--since", "2024-05-02")] == ["record_shown"]
        assert [r[4] for r in rows("--since", "2024-05-02T21:46:40Z")] == ["record_shown"]
        assert [r[4] for r in rows("--since", str(int(now[0])))] == ["record_shown"]
        assert len(rows("--since", "1714600000")) == 3
        assert psr("admin", "--data", data, "audit", "list", "--since", "2099-01-01").out == (
            "no audit entries match\n"
        )


def test_a_server_killed_while_batches_arrive_records_each_event_once_after_the_resends(
    tmp_path: Path,
) -> None:
    data = tmp_path / "srv"
    batches = [[event(f"k{b}-{i}") for i in range(100)] for b in range(20)]
    with running_server(data) as srv:
        seed(srv, "demo", {"alice": "alice-pw"})
    proc = ServerProcess(data).start()
    alice = ApiClient(proc.url, "demo").login("alice", "alice-pw")
    sent = threading.Event()

    def push() -> None:
        for batch in batches:
            try:
                post_events(alice, batch)
            except requests.RequestException:
                return  # the server is gone mid-request: the answer is lost
            sent.set()

    pusher = threading.Thread(target=push)
    pusher.start()
    assert sent.wait(30)
    proc.kill()  # SIGKILL while later batches are on the way
    pusher.join(timeout=60)
    alice.close()
    with ServerProcess(data) as again:
        client = ApiClient(again.url, "demo").login("alice", "alice-pw")
        answers = [post_events(client, batch).json() for batch in batches]
        client.close()
        rows = again.admin.connection.execute(
            "SELECT change_id, COUNT(*) FROM audit GROUP BY change_id"
        ).fetchall()
    assert sum(a["known"] for a in answers) >= 100  # at least the first batch had arrived
    assert sum(a["recorded"] + a["known"] for a in answers) == 2000
    assert len(rows) == 2000
    assert {count for _id, count in rows} == {1}
