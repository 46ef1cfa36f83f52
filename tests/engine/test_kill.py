"""Killing the syncing process after any page leaves a copy that opens, is intact and resumes."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest

from hookspecs import Session
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.sync.engine import sync_copy
from reference_server.testing import RunningServer
from tests.support.copies import paths_of
from tests.support.kill import Child
from tests.support.records import server_records

LIMIT = 25


def run_killed(session: Session, folder: Path, *, kill_after: int, create: bool) -> None:
    """A sync in a child process that SIGKILLs itself right after page ``kill_after``."""
    child = Child(
        {
            "session": dataclasses.asdict(session),
            "folder": str(folder),
            "kill_after": kill_after,
            "create": create,
            "limit": LIMIT,
        }
    )
    child.finish()
    assert child.returncode == -signal.SIGKILL, child.err


@pytest.mark.parametrize("kill_after", [1, 3])
def test_first_sync_killed_after_a_page_resumes_and_converges(
    demo: RunningServer, alice: Session, folder: Path, kill_after: int
) -> None:
    demo.admin.import_records("demo", server_records(120), grant={"alice": "rwe"})
    run_killed(alice, folder, kill_after=kill_after, create=True)
    paths = paths_of(folder, alice)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.integrity_ok()
        assert copy.cursor is not None
        assert copy.record_count() == kill_after * LIMIT
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.outcome == "synced"
    assert result.added == 120 - kill_after * LIMIT
    with OfflineCopy.open(paths, "alice-pw") as copy:
        view = {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}
    assert view == demo.admin.exportable_view("demo", "alice")


def test_incremental_sync_killed_midway_converges_with_later_changes(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    ids = demo.admin.import_records("demo", server_records(60), grant={"alice": "rwe"})
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=LIMIT)
    for record_id in ids[:55]:
        demo.admin.update_record("demo", record_id, name=f"New {record_id[:6]}")
    run_killed(alice, folder, kill_after=1, create=False)
    demo.admin.delete_record("demo", ids[0])
    demo.admin.set_rights("demo", "alice", ids[59], export=False)
    sync_copy(paths, alice, create=False, page_limit=LIMIT)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.integrity_ok()
        view = {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}
    assert view == demo.admin.exportable_view("demo", "alice")
