"""A sync's pages written in batches, and its completion stored with its last page (issue 13),
against the real reference server."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon.storage.offline_copy import BATCH_MIN_PAGE, OfflineCopy
from offline_addon.sync.engine import sync_copy
from reference_server.testing import RunningServer
from tests.support.copies import paths_of
from tests.support.kill import Child
from tests.support.records import server_records

BIG_PAGE = BATCH_MIN_PAGE  # the smallest page that is batched


def _view(paths: Any) -> dict[str, Any]:
    with OfflineCopy.open(paths, "alice-pw") as copy:
        return {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}


def test_a_first_sync_killed_inside_a_batch_opens_incomplete_and_resumes(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    demo.admin.import_records("demo", server_records(3 * BIG_PAGE), grant={"alice": "rwe"})
    # Killed after the second page was applied: both wait in one batch, uncommitted.
    run_killed_big(alice, folder, kill_after=2)
    paths = paths_of(folder, alice)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.integrity_ok()
        assert not copy.meta.complete
        assert copy.record_count() % BIG_PAGE == 0
        assert copy.record_count() < 2 * BIG_PAGE
    result = sync_copy(paths, alice, create=False, page_limit=BIG_PAGE)
    assert result.outcome == "synced"
    assert result.record_count == 3 * BIG_PAGE
    assert _view(paths) == demo.admin.exportable_view("demo", "alice")
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.meta.complete
        assert copy.search("Rec Account 02999")[0].name == "Rec Account 02999"


def run_killed_big(session: Session, folder: Path, *, kill_after: int) -> None:
    child = Child(
        {
            "session": dataclasses.asdict(session),
            "folder": str(folder),
            "kill_after": kill_after,
            "create": True,
            "limit": BIG_PAGE,
        }
    )
    child.finish()
    assert child.returncode == -signal.SIGKILL, child.err


def test_a_sync_with_changes_stores_its_contact_with_the_last_page(
    demo: RunningServer, alice: Session, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = demo.admin.import_records("demo", server_records(40), grant={"alice": "rwe"})
    paths = paths_of(folder, alice)
    assert sync_copy(paths, alice, create=True, page_limit=25).outcome == "synced"
    demo.admin.update_record("demo", ids[3], fields={"notes": "moved"})
    calls: list[object] = []
    real = OfflineCopy.record_contact
    monkeypatch.setattr(
        OfflineCopy, "record_contact", lambda self, *a, **k: calls.append(a) or real(self, *a, **k)
    )
    with OfflineCopy.open(paths, "alice-pw") as copy:
        etag_before = copy.meta.etag
    result = sync_copy(paths, alice, create=False, page_limit=25)
    assert (result.outcome, result.changed) == ("synced", 1)
    assert calls == []  # one write transaction: the page with the contact and the ETag
    with OfflineCopy.open(paths, "alice-pw") as copy:
        meta = copy.meta
        assert meta.complete
        assert meta.etag not in (None, etag_before)
        assert [r.record_id for r in copy.search("moved")] == [ids[3]]
    # The ETag stored with the page is the head's: the next sync is one request (304).
    assert sync_copy(paths, alice, create=False, page_limit=25).outcome == "unchanged"
