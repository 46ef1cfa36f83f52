"""The offline access log (issue 16, item 1): kept in the copy, pushed before the pull, once.

Real parts: the reference server on loopback, real SQLCipher files, a second real connection
for a writer that holds the file; the fault proxy only for an answer lost after the server
applied the batch, and for an older server that lacks the endpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
import time
from pathlib import Path

import pytest

from hookspecs import Session
from offline_addon.storage.access_log import AccessLog, carry_access_log, count_events
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from reference_server.testing import RunningServer
from tests.support.access import (
    AUDIT,
    COPIES,
    SECRET,
    add_rows,
    audited,
    audited_ids,
    log_rows,
    paths_with,
    registry,
    secret_records,
)
from tests.support.copies import (
    COPY_PASSWORD,
    IDENTITY,
    forget_etag,
    new_copy,
    opened_file,
    paths_of,
)
from tests.support.faults import Fault, FaultProxy
from tests.support.kill import Child

PASSWORD = "alice-pw"
RECORDS = 12


@pytest.fixture
def stocked(demo: RunningServer) -> list[str]:
    return demo.admin.import_records("demo", secret_records(RECORDS), grant={"alice": "rwe"})


def first_sync(session: Session, folder: Path) -> CopyPaths:
    paths = paths_of(folder, session)
    assert sync_copy(paths, session, create=True).outcome == "synced"
    return paths


def note(paths: CopyPaths, *events: tuple[str, str | None, str | None]) -> None:
    """Note ``events`` in the closed copy as an offline session does."""
    with OfflineCopy.open(paths, PASSWORD) as copy:
        access = AccessLog(copy)
        for kind, record_id, field in events:
            access.note(kind, record_id, field)  # type: ignore[arg-type]
        assert access.flush()


# -- in the copy --------------------------------------------------------------------------------


def test_a_note_is_one_row_of_ids_field_names_and_local_time(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    access = AccessLog(copy, clock=lambda: 1714550400.5)
    access.note("offline_login")
    access.note("record_shown", "rec-1")
    access.note("field_revealed", "rec-1", "password")
    access.note("field_copied", "rec-1", "password")
    copy.close()
    rows = log_rows(CopyPaths(tmp_path, "a" * 64), COPY_PASSWORD)
    assert [row[1:] for row in rows] == [
        ("offline_login", None, None, 1714550400.5),
        ("record_shown", "rec-1", None, 1714550400.5),
        ("field_revealed", "rec-1", "password", 1714550400.5),
        ("field_copied", "rec-1", "password", 1714550400.5),
    ]
    assert len({row[0] for row in rows}) == 4  # a fresh client-made id each


def test_a_note_while_another_writer_holds_the_file_does_not_wait_long_or_fail(
    tmp_path: Path,
) -> None:
    copy = new_copy(tmp_path)
    paths = CopyPaths(tmp_path, "a" * 64)
    with opened_file(paths, COPY_PASSWORD) as writer:
        writer.execute("BEGIN IMMEDIATE")  # a sync writing a batch of pages
        access = AccessLog(copy)
        started = time.monotonic()
        access.note("record_shown", "rec-1")
        assert time.monotonic() - started < 2.0
        assert access.held == 1  # waits in memory, the user's read goes on
        writer.execute("COMMIT")
    access.note("record_shown", "rec-2")  # written together with the one held
    assert access.held == 0
    assert count_events(copy) == 2
    copy.close()


def test_closing_writes_what_is_held_and_says_how_many_were_lost_when_it_cannot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = new_copy(tmp_path)
    paths = CopyPaths(tmp_path, "a" * 64)
    with opened_file(paths, COPY_PASSWORD) as writer:
        writer.execute("BEGIN IMMEDIATE")
        access = AccessLog(copy)
        access.note("field_copied", "rec-1", "password")
        with caplog.at_level(logging.WARNING):
            assert not access.flush(wait_s=0.1)
        assert "1 entries could not be saved" in caplog.text
        writer.execute("COMMIT")
    assert access.flush()
    assert count_events(copy) == 1
    copy.close()


def test_a_rebuild_carries_the_log_into_the_new_file(tmp_path: Path) -> None:
    old = new_copy(tmp_path / "old")
    fresh = OfflineCopy.create(CopyPaths(tmp_path / "new", "b" * 64), COPY_PASSWORD, IDENTITY)
    AccessLog(old).note("record_shown", "rec-1")
    AccessLog(old).note("offline_login")
    assert carry_access_log(old, fresh) == 2
    assert carry_access_log(old, fresh) == 2  # twice (a resumed rebuild): still one each
    assert count_events(fresh) == 2
    old.close()
    fresh.close()


# -- pushed before the pull ---------------------------------------------------------------------


def test_a_sync_pushes_the_log_before_the_pull_and_the_server_records_each_event_once(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    events = [
        ("offline_login", None, None),
        ("record_shown", stocked[3], None),
        ("field_revealed", stocked[3], "password"),
        ("field_copied", stocked[3], "password"),
    ]
    note(paths, *events)
    demo.admin.update_record("demo", stocked[0], name="Changed meanwhile")
    demo.requests.clear()
    assert sync_copy(paths, alice, create=False).outcome == "synced"
    seen = [path for _, path in demo.requests.seen()]
    assert seen[0].endswith(AUDIT)  # before head and the feed
    assert audited(demo) == events
    assert log_rows(paths, PASSWORD) == []
    demo.requests.clear()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert paths_with(demo, AUDIT) == []  # an empty log costs no request
    assert audited(demo) == events


def test_a_long_log_goes_in_batches_of_at_most_500_oldest_first(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    add_rows(
        paths,
        PASSWORD,
        [("record_shown", stocked[i % RECORDS], None, 1e9 + i) for i in range(1203)],
    )
    ids = [row[0] for row in log_rows(paths, PASSWORD)]
    demo.requests.clear()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert len(paths_with(demo, AUDIT)) == 3
    assert audited_ids(demo) == ids
    assert log_rows(paths, PASSWORD) == []


def test_an_answer_lost_after_the_server_recorded_the_batch_is_resent_and_recorded_once(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    with FaultProxy(demo.url) as proxy:
        session = dataclasses.replace(alice, server_url=proxy.url)
        paths = first_sync(session, folder)
        note(paths, ("record_shown", stocked[1], None), ("field_copied", stocked[1], "password"))
        proxy.arm(Fault("lost_answer", path_contains=AUDIT, times=0))
        assert sync_copy(paths, session, create=False).outcome == "unchanged"  # not failed
        assert proxy.fired >= 1
        assert len(log_rows(paths, PASSWORD)) == 2  # kept: no 200 was seen
        assert len(audited(demo)) == 2  # but the server has them
        proxy.clear()
        assert sync_copy(paths, session, create=False).outcome == "unchanged"
    assert audited(demo) == [
        ("record_shown", stocked[1], None),
        ("field_copied", stocked[1], "password"),
    ]
    assert log_rows(paths, PASSWORD) == []


def test_an_older_server_without_the_endpoint_keeps_the_log_and_the_sync_goes_on(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    with FaultProxy(demo.url) as proxy:
        session = dataclasses.replace(alice, server_url=proxy.url)
        paths = first_sync(session, folder)
        note(paths, ("offline_login", None, None))
        demo.admin.update_record("demo", stocked[0], name="Changed meanwhile")
        proxy.arm(Fault("status", path_contains=AUDIT, status=404, code="not_found", times=0))
        result = sync_copy(paths, session, create=False)
        assert (result.outcome, result.changed) == ("synced", 1)
        audit_calls = [e for e in proxy.log.entries if AUDIT in e[1]]
        assert len(audit_calls) == 1  # not asked again in this sync
    assert len(log_rows(paths, PASSWORD)) == 1
    assert audited(demo) == []


def test_an_odd_entry_is_dropped_with_a_warning_and_does_not_block_the_others(
    demo: RunningServer,
    alice: Session,
    folder: Path,
    stocked: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    paths = first_sync(alice, folder)
    add_rows(
        paths,
        PASSWORD,
        [
            ("record_shown", stocked[0], None, 1e9),
            ("bogus_kind", stocked[0], None, 1e9),
            ("record_shown", "x" * 300, None, 1e9),
            ("field_revealed", stocked[0], None, 1e9),  # no field name
            ("offline_login", None, None, "not a time"),
            ("field_copied", stocked[0], "password", 1e9 + 1),
        ],
    )
    with caplog.at_level(logging.WARNING):
        assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert "4 entries the server would refuse were dropped" in caplog.text
    assert audited(demo) == [
        ("record_shown", stocked[0], None),
        ("field_copied", stocked[0], "password"),
    ]
    assert log_rows(paths, PASSWORD) == []


# -- the copy report and the wipe ------------------------------------------------------------


def test_the_registry_holds_the_copy_as_it_is_after_each_sync(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    with FaultProxy(demo.url) as proxy:
        session = dataclasses.replace(alice, server_url=proxy.url)
        paths = first_sync(session, folder)
        assert registry(demo) == [
            {
                "db": "demo",
                "user": "alice",
                "client_id": alice.client_id,
                "state": "present",
                "record_count": RECORDS,
                "pending_changes": 0,
                "unpushed_log_entries": 0,
                "complete": True,
            }
        ]
        note(paths, ("offline_login", None, None), ("record_shown", stocked[2], None))
        demo.admin.delete_record("demo", stocked[5])
        proxy.arm(Fault("status", path_contains=AUDIT, status=503, code="busy", times=0))
        assert sync_copy(paths, session, create=False).outcome == "synced"
    [copy] = registry(demo)
    assert (copy["record_count"], copy["unpushed_log_entries"]) == (RECORDS - 1, 2)


def test_a_failed_report_changes_nothing_and_is_sent_with_the_next_sync(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    with FaultProxy(demo.url) as proxy:
        session = dataclasses.replace(alice, server_url=proxy.url)
        proxy.arm(Fault("stall", path_contains=COPIES, times=0, stall_seconds=20))
        paths = paths_of(folder, session)
        started = time.monotonic()
        assert sync_copy(paths, session, create=True).outcome == "synced"
        assert time.monotonic() - started < 15  # the report's own short deadline
        assert registry(demo) == []
        proxy.clear()
        assert sync_copy(paths, session, create=False).outcome == "unchanged"
    assert [c["record_count"] for c in registry(demo)] == [RECORDS]


def test_a_revoked_right_pushes_the_log_before_the_wipe_and_the_registry_says_wiped(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    note(paths, ("offline_login", None, None), ("field_revealed", stocked[4], "password"))
    demo.admin.set_user_offline("alice", enabled=False)
    assert sync_copy(paths, alice, create=False).outcome == "wiped"
    assert audited(demo) == [
        ("offline_login", None, None),
        ("field_revealed", stocked[4], "password"),
    ]
    assert [c["state"] for c in registry(demo)] == ["wiped"]
    assert list(folder.iterdir()) == []


def test_nothing_secret_reaches_the_log_the_requests_or_the_servers_trail(
    demo: RunningServer,
    alice: Session,
    folder: Path,
    stocked: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    paths = first_sync(alice, folder)
    note(paths, ("field_revealed", stocked[0], "password"), ("field_copied", stocked[0], "notes"))
    with opened_file(paths, PASSWORD) as db:
        rows = db.execute("SELECT * FROM access_log").fetchall()
    assert len(rows) == 2
    assert not any(SECRET in repr(row) for row in rows)
    with caplog.at_level(logging.DEBUG):
        sync_copy(paths, alice, create=False)
    assert SECRET not in caplog.text
    entries = [e for e in demo.admin.audit_entries(user="alice", db="demo") if e.field]
    assert [(e.kind, e.field) for e in entries] == [
        ("field_revealed", "password"),
        ("field_copied", "notes"),
    ]
    assert not any(SECRET in repr(entry) for entry in entries)


# -- a kill between the server's answer and the local delete --------------------------------


def push_job(session: Session, folder: Path, **options: object) -> dict[str, object]:
    return {
        "action": "push_log",
        "session": dataclasses.asdict(session),
        "folder": str(folder),
        **options,
    }


def test_a_kill_after_the_servers_answer_and_before_the_delete_resends_and_records_once(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    add_rows(
        paths, PASSWORD, [("record_shown", stocked[i % RECORDS], None, 1e9 + i) for i in range(250)]
    )
    ids = [row[0] for row in log_rows(paths, PASSWORD)]
    child = Child(push_job(alice, folder, batch=100, kill_after=2))
    child.finish()
    assert child.returncode == -signal.SIGKILL
    assert audited_ids(demo) == ids[:200]  # the server took two batches
    assert [row[0] for row in log_rows(paths, PASSWORD)] == ids[100:]  # one deleted
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert audited_ids(demo) == ids  # each once, in order
    assert log_rows(paths, PASSWORD) == []


def test_a_kill_at_a_random_moment_of_the_push_loses_and_doubles_nothing(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    add_rows(
        paths,
        PASSWORD,
        [("field_copied", stocked[i % RECORDS], "password", 1e9 + i) for i in range(600)],
    )
    ids = [row[0] for row in log_rows(paths, PASSWORD)]
    child = Child(push_job(alice, folder, batch=50))
    child.until(f"answered {random.randint(1, 11)}")
    time.sleep(random.uniform(0, 0.02))
    child.kill()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert audited_ids(demo) == ids
    assert log_rows(paths, PASSWORD) == []


def test_an_offline_session_follows_its_copy_into_the_file_a_rebuild_made(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    reader = OfflineCopy.open(paths, PASSWORD)
    access = AccessLog(reader, password=PASSWORD)
    access.note("record_shown", stocked[0])
    with opened_file(paths, PASSWORD) as db:
        db.execute("DELETE FROM records WHERE id = ?", (stocked[9],))
        forget_etag(db)
    demo.admin.update_record("demo", stocked[10], name="Nudge")
    assert sync_copy(paths, alice, create=False).outcome == "repaired"
    access.note("record_shown", stocked[1])  # after the file was replaced
    assert access.held == 0
    reader.close()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    assert audited(demo) == [("record_shown", stocked[0], None), ("record_shown", stocked[1], None)]


def test_notes_made_while_another_program_syncs_the_copy_all_reach_the_server_once(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = first_sync(alice, folder)
    demo.admin.import_records("demo", secret_records(3000), grant={"alice": "rwe"})
    reader = OfflineCopy.open(paths, PASSWORD)
    access = AccessLog(reader, password=PASSWORD)
    child = Child(
        {"session": dataclasses.asdict(alice), "folder": str(folder), "limit": 100, "create": False}
    )
    noted = 0
    while child.returncode is None and noted < 400:
        access.note("record_shown", stocked[noted % RECORDS])  # never fails, never long
        noted += 1
        time.sleep(0.005)
    assert child.finish().startswith("done")
    assert access.flush()
    reader.close()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"
    ids = audited_ids(demo)
    assert (len(ids), len(set(ids))) == (noted, noted)
    assert log_rows(paths, PASSWORD) == []
