"""What the user does offline reaches the server's audit (issue 16, items 1 and 4): through
the public API, and through the reference host's ``show``, ``show --reveal`` and ``copy``
with the add-on loaded by its entry point. Real server, real files, real host; the fault
proxy stands in for a network that is gone (every connection reset)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookspecs import AccessNotingSession, OfflineCredentials, Session
from offline_addon import AddonSettings, InvalidArgument, OfflineCopies
from reference_server.testing import RunningServer
from tests.support.access import (
    SECRET,
    audited,
    file_clipboard,
    log_rows,
    registry,
    secret_records,
)
from tests.support.accounts import log_in
from tests.support.copies import paths_of
from tests.support.faults import Fault, FaultProxy
from tests.support.host import HostRun
from tests.support.servers import seed, serve

PASSWORD = "alice-pw"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with serve(tmp_path / "srv") as running:
        yield running


@pytest.fixture
def ids(server: RunningServer) -> list[str]:
    return seed(server, "demo", {"alice": PASSWORD}, secret_records(8)).ids


@pytest.fixture
def copies(tmp_path: Path) -> Iterator[OfflineCopies]:
    api = OfflineCopies(AddonSettings(database_path=str(tmp_path / "copies")))
    yield api
    api.shutdown()


def credentials(session: Session) -> OfflineCredentials:
    return OfflineCredentials(
        session.server_url, session.database, session.username, session.client_id, PASSWORD
    )


def test_an_offline_session_notes_what_it_shows_reveals_and_copies_and_the_sync_pushes_it(
    server: RunningServer,
    ids: list[str],
    copies: OfflineCopies,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = log_in(server.url, "demo", "alice", PASSWORD)
    copies.create(alice)
    reader = copies.open_offline(credentials(alice))
    assert isinstance(reader, AccessNotingSession)
    assert reader.find_record(ids[0]) is not None  # finding is no showing
    assert len(reader.search(f"{SECRET} Secret")) == 8  # neither is a search (nor its term)
    shown = reader.get_record(ids[1])
    assert shown is not None
    assert reader.reveal(ids[1], "password") == f"{SECRET}-pw-1"
    reader.note_copied(ids[1], "notes")
    with pytest.raises(InvalidArgument, match="no such record or no such field"):
        reader.reveal(ids[1], "pin")
    with pytest.raises(InvalidArgument):
        reader.note_copied("no-such-record", "password")
    rows = log_rows(paths_of(copies.folder, alice), PASSWORD)
    assert not any(SECRET in repr(row) for row in rows)
    reader.close()
    with caplog.at_level(logging.DEBUG):
        copies.sync_now(alice)
    assert audited(server) == [
        ("offline_login", None, None),
        ("record_shown", ids[1], None),
        ("field_revealed", ids[1], "password"),
        ("field_copied", ids[1], "notes"),
    ]
    assert SECRET not in caplog.text
    [copy] = registry(server)
    assert (copy["state"], copy["record_count"], copy["unpushed_log_entries"]) == (
        "present",
        8,
        0,
    )


def test_deleting_the_copy_while_online_pushes_its_log_first_and_marks_it_wiped(
    server: RunningServer, ids: list[str], copies: OfflineCopies
) -> None:
    alice = log_in(server.url, "demo", "alice", PASSWORD)
    copies.create(alice)
    reader = copies.open_offline(credentials(alice))
    reader.get_record(ids[2])
    reader.close()
    assert copies.delete(alice)
    assert audited(server) == [("offline_login", None, None), ("record_shown", ids[2], None)]
    assert [c["state"] for c in registry(server)] == ["wiped"]


def test_the_hosts_offline_show_reveal_and_copy_reach_the_servers_audit_once_each(
    server: RunningServer, ids: list[str], tmp_path: Path
) -> None:
    clip = tmp_path / "clip"
    with FaultProxy(server.url) as proxy:
        online = HostRun(tmp_path / "config", tmp_path / "offline", proxy.url, "alice")
        try:
            assert online.login(PASSWORD)
            assert "is synchronised" in online.run("offline create")
            online.settle()
        finally:
            online.close()
        proxy.arm(Fault("reset", path_contains="", times=0))  # the network is gone
        offline = HostRun(tmp_path / "config", tmp_path / "offline", proxy.url, "alice")
        try:
            offline.shell.clipboard = file_clipboard(clip)
            assert offline.login(PASSWORD)
            assert offline.shell.offline is not None
            out = offline.run(
                "show Secret 003", "show Secret 003 --reveal", "copy 'Secret 003' password"
            )
            assert f"{SECRET}-pw-3" in out  # revealed once, on request
            assert out.count(f"{SECRET}-pw-3") == 1
            assert (clip / "clipboard").read_text(encoding="utf-8") == f"{SECRET}-pw-3"
        finally:
            offline.close()
        assert audited(server) == []  # nothing reached the server while offline
        proxy.clear()
        back = HostRun(tmp_path / "config", tmp_path / "offline", proxy.url, "alice")
        try:
            assert back.login(PASSWORD)  # the login's sync pushes the log first
            back.settle()
        finally:
            back.close()
    assert audited(server) == [
        ("offline_login", None, None),
        ("record_shown", ids[3], None),
        ("record_shown", ids[3], None),
        ("field_revealed", ids[3], "password"),
        ("field_copied", ids[3], "password"),
    ]
    assert not any(SECRET in repr(entry) for entry in server.admin.audit_entries())
