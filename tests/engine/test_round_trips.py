"""How many requests a sync costs: head is the policy check of an incremental sync.

Counted on the real server (its request log), so every request the client sends, retries
included, is seen.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon.protocol.answers import Head, HeadUnchanged
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.transport import SyncClient
from reference_server.testing import RunningServer, running_server
from tests.support.accounts import log_in
from tests.support.copies import opened_file, paths_of, set_meta
from tests.support.hostile import HostileServer, Reply
from tests.support.records import server_records

HEAD = "/api/v1/databases/demo/offline/head"
POLICY = "/api/v1/databases/demo/offline/policy"
CHANGES = "/api/v1/databases/demo/offline/changes"
COPIES = "/api/v1/databases/demo/offline/copies/"
"""The server's registry of copies: reported after a sync that changed what it says,
forgotten after a wipe (issue 16)."""


@pytest.fixture
def stocked(demo: RunningServer) -> list[str]:
    return demo.admin.import_records("demo", server_records(150), grant={"alice": "rwe"})


def paths_seen(server: RunningServer) -> list[str]:
    return [path for _, path in server.requests.seen()]


def synced_copy(server: RunningServer, session: Session, folder: Path) -> CopyPaths:
    """A first sync (policy, head, feed, the copy's report), then the request log is
    cleared."""
    paths = paths_of(folder, session)
    server.requests.clear()
    assert sync_copy(paths, session, create=True).outcome == "synced"
    assert paths_seen(server) == [POLICY, HEAD, CHANGES, COPIES + session.client_id]
    server.requests.clear()
    return paths


def opened(paths: CopyPaths) -> OfflineCopy:
    """Alice's copy, opened."""
    return OfflineCopy.open(paths, "alice-pw")


def test_sync_with_nothing_new_makes_exactly_one_request(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "unchanged"
    assert paths_seen(demo) == [HEAD]


def test_answers_with_nothing_new_keep_the_connection_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connects: list[object] = []
    real_connect = socket.socket.connect

    def counted(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(sock, address)

    with HostileServer() as srv:  # a server that keeps connections alive after a 304
        srv.route("/offline/head", Reply(304, [("ETag", '"e-1-604800"')]))
        monkeypatch.setattr(socket.socket, "connect", counted)
        with srv.client() as client:
            for _ in range(4):
                assert isinstance(client.head("demo", '"e-1-604800"'), HeadUnchanged)
    # One connection for all four (an unread 304 used to close it: one per sync).
    assert len(connects) == 1


def test_requests_share_one_watchdog_thread_for_their_deadlines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    with HostileServer() as srv:
        srv.route("/offline/head", Reply(304, [("ETag", '"e-1-604800"')]))
        with srv.client() as client:
            client.head("demo", '"e-1-604800"')  # the watchdog may start here, once
            monkeypatch.setattr(threading.Thread, "start", counted)
            for _ in range(5):
                assert isinstance(client.head("demo", '"e-1-604800"'), HeadUnchanged)
    # A timer thread per request cost about 0.8 ms each (a third of a sync with nothing new).
    assert started == []
    assert [t.name for t in threading.enumerate()].count("offline-request-watchdog") == 1


def test_a_hundred_changes_take_exactly_two_requests(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    for record_id in stocked[:100]:
        demo.admin.update_record("demo", record_id, name=f"Changed {record_id}")
    result = sync_copy(paths, alice, create=False)
    assert (result.outcome, result.changed) == ("synced", 100)
    assert paths_seen(demo) == [HEAD, CHANGES]
    with opened(paths) as copy:
        assert {r.name for r in copy.list_records() if r.record_id in stocked[:100]} == {
            f"Changed {record_id}" for record_id in stocked[:100]
        }
    demo.requests.clear()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert paths_seen(demo) == [HEAD]


def test_a_revoked_right_is_detected_by_head_and_wipes_the_copy(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    demo.admin.set_user_offline("alice", enabled=False)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "wiped"
    assert "offline right" in result.message
    assert paths_seen(demo) == [HEAD, COPIES + alice.client_id]
    assert list(folder.iterdir()) == []


def test_a_database_switched_off_is_detected_by_head_and_wipes_the_copy(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    demo.admin.set_database_offline("demo", False)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "wiped"
    assert "switched off" in result.message
    assert paths_seen(demo) == [HEAD, COPIES + alice.client_id]
    assert list(folder.iterdir()) == []


def test_a_changed_validity_reaches_the_copy_without_a_policy_call(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    with opened(paths) as copy:
        assert copy.meta.validity_seconds == 7 * 86400
    demo.admin.set_user_offline("alice", enabled=True, validity_days=2)
    assert sync_copy(paths, alice, create=False).outcome == "synced"
    assert POLICY not in paths_seen(demo)
    with opened(paths) as copy:
        assert copy.meta.validity_seconds == 2 * 86400
        valid_until = copy.meta.valid_until
    assert valid_until is not None
    assert valid_until < time.time() + 2 * 86400 + 60


def test_a_copy_with_an_etag_of_the_old_format_syncs_once_and_then_costs_one_request(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = synced_copy(demo, alice, folder)
    with opened(paths) as copy:
        etag = copy.meta.etag
    assert etag is not None
    epoch, seq, *_cached = etag.strip('"').split("-")
    with opened_file(paths, "alice-pw") as db:
        set_meta(db, etag=f'"{epoch}-{seq}"')  # as stored before validity was in it
    assert sync_copy(paths, alice, create=False).outcome == "synced"
    assert paths_seen(demo) == [HEAD, CHANGES]
    demo.requests.clear()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert paths_seen(demo) == [HEAD]


def test_an_unchanged_head_records_the_server_time_from_its_date_header(tmp_path: Path) -> None:
    # The server's clock runs far ahead of the local one: the stored server time must be the
    # server's (from the 304's Date header), not the local clock's.
    server_now = [2_000_000_000.0]
    with running_server(tmp_path / "srv", clock=lambda: server_now[0]) as srv:
        srv.admin.create_database("demo", offline_allowed=True)
        srv.admin.create_user("alice", "alice-pw", offline_right=True, validity_days=7)
        srv.admin.import_records("demo", server_records(5), grant={"alice": "rwe"})
        alice = log_in(srv.url, "demo", "alice", "alice-pw")
        paths = synced_copy(srv, alice, tmp_path / "copies")
        server_now[0] += 1000.75
        result = sync_copy(paths, alice, create=False)
        assert result.outcome == "unchanged"
        assert paths_seen(srv) == [HEAD]
    assert result.server_time == 2_000_001_000.0  # the Date header has whole seconds
    with opened(paths) as copy:
        assert copy.meta.last_contact_server_time == 2_000_001_000.0


class _NoDateClient(SyncClient):
    """A 304 whose Date header was absent or unparsable (a proxy may drop it)."""

    def head(
        self, database: str, etag: str | None = None, *, deadline: float | None = None
    ) -> Head | HeadUnchanged:
        head = super().head(database, etag, deadline=deadline)
        if isinstance(head, HeadUnchanged):
            return dataclasses.replace(head, server_time=None)
        return head


def test_an_unchanged_head_without_a_date_estimates_the_server_time_from_local_elapsed(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    start = time.time()
    sync_copy(paths, alice, create=True, clock=lambda: start)
    with opened(paths) as copy:
        first_server_time = copy.meta.last_contact_server_time
    assert first_server_time is not None
    with _NoDateClient(alice.server_url, alice.token, alice.client_id) as client:
        result = sync_copy(paths, alice, create=False, clock=lambda: start + 300, client=client)
        assert result.outcome == "unchanged"
        assert result.server_time == first_server_time + 300
        # a local clock that went back never moves the server time backwards
        result = sync_copy(paths, alice, create=False, clock=lambda: start - 50, client=client)
    assert result.server_time == first_server_time + 300
    with opened(paths) as copy:
        assert copy.meta.last_contact_local_time == start - 50
