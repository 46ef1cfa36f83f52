"""After a large sync the search index is compacted, and through the add-on's worker only
once the callers have the result: the copy is complete and searchable before (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon import AddonSettings, OfflineCopies
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.migrations import SEARCH_INDEXES
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.page_writer import WORDS_LATER_UP_TO
from offline_addon.sync import engine
from offline_addon.sync.engine import compact_index, index_upkeep, sync_copy
from offline_addon.sync.result import Outcome, SyncResult
from reference_server.testing import RunningServer
from tests.support.copies import first_sync_by_worker, opened_file, paths_of
from tests.support.records import server_records

SMALL_PAGE = 200
"""Pages this small commit one by one, each leaving index segments behind (once the first
``WORDS_LATER_UP_TO`` records wait for their words: the upkeep indexes those)."""
RECORDS = WORDS_LATER_UP_TO + 3 * SMALL_PAGE


def _segments(db: Any) -> dict[str, int]:
    """Index segments of each FTS5 table (its ``_idx`` shadow table names them)."""
    return {
        table: int(
            db.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone()[0]  # noqa: S608
        )
        for table in SEARCH_INDEXES
    }


def _found(copy: OfflineCopy, query: str) -> list[str]:
    return [r.record_id for r in copy.search(query, limit=RECORDS)]


@pytest.fixture
def stocked(demo: RunningServer) -> list[str]:
    return demo.admin.import_records("demo", server_records(RECORDS), grant={"alice": "rwe"})


def test_compaction_merges_each_index_into_one_segment_and_finds_the_same(
    stocked: list[str], alice: Session, folder: Path
) -> None:
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=SMALL_PAGE, compact=False)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert min(_segments(copy._db).values()) > 1
        before = (_found(copy, "Account 0042"), _found(copy, "rec"), copy.count_matches("acc"))
        assert compact_index(paths, copy)
        assert _segments(copy._db) == dict.fromkeys(SEARCH_INDEXES, 1)
        after = (_found(copy, "Account 0042"), _found(copy, "rec"), copy.count_matches("acc"))
    assert after == before
    assert len(before[1]) == RECORDS


def test_compaction_waits_for_no_other_writer_and_leaves_the_index_as_it_was(
    stocked: list[str], alice: Session, folder: Path
) -> None:
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=SMALL_PAGE, compact=False)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        segments = _segments(copy._db)
        with CopyLock(paths.lock):  # another writer (a sync of another program, say)
            assert not compact_index(paths, copy)
        assert _segments(copy._db) == segments
        assert len(_found(copy, "rec")) == RECORDS


def test_compaction_leaves_a_file_that_was_replaced_meanwhile_alone(
    stocked: list[str], alice: Session, folder: Path
) -> None:
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=SMALL_PAGE, compact=False)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        replacement = paths.db.with_name("replacement")
        replacement.write_bytes(paths.db.read_bytes())
        replacement.replace(paths.db)  # as a rebuild by another program would
        assert not compact_index(paths, copy)


def test_the_worker_compacts_after_the_callers_have_the_result(
    stocked: list[str],
    alice: Session,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The threshold lowered from a real sync's size to this test's.
    monkeypatch.setattr(engine, "COMPACT_INDEX_AFTER", RECORDS)
    result, left = first_sync_by_worker(folder, alice, _segments, page_limit=SMALL_PAGE)
    assert (result.outcome, result.record_count) == ("synced", RECORDS)
    assert min(left.values()) > 1  # not compacted inside the sync
    with opened_file(paths_of(folder, alice), "alice-pw") as db:
        assert _segments(db) == dict.fromkeys(SEARCH_INDEXES, 1)


def test_a_sync_run_on_its_own_compacts_after_a_large_sync(
    stocked: list[str], alice: Session, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "COMPACT_INDEX_AFTER", RECORDS)
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=SMALL_PAGE)
    with opened_file(paths, "alice-pw") as db:
        assert _segments(db) == dict.fromkeys(SEARCH_INDEXES, 1)


def test_only_a_large_sync_asks_for_compaction() -> None:
    def result(outcome: Outcome, added: int, changed: int = 0) -> SyncResult:
        return SyncResult(outcome, added, changed, 0, added, 0.1, None, "The offline copy")

    limit = engine.COMPACT_INDEX_AFTER
    assert not engine.wants_compaction(result("synced", 100, 100))
    assert engine.wants_compaction(result("synced", limit - 1, 1))
    assert engine.wants_compaction(result("repaired", limit))


def test_small_syncs_leave_their_segments_to_the_merge_between_syncs(
    demo: RunningServer, stocked: list[str], alice: Session, folder: Path
) -> None:
    copies = OfflineCopies(AddonSettings(database_path=str(folder)))
    try:
        copies.create(alice)
        assert copies.wait_idle(30)
        for n in range(8):
            demo.admin.update_record("demo", stocked[n], fields={"notes": f"moved{n} north"})
            assert copies.sync_now(alice).changed == 1
            assert copies.wait_idle(30)
    finally:
        copies.shutdown()
    with opened_file(paths_of(folder, alice), "alice-pw") as db:
        # One new segment per sync and index (8 + the first sync's) without the merges.
        assert _segments(db)["records_fts"] <= 4
    with OfflineCopy.open(paths_of(folder, alice), "alice-pw") as copy:
        assert [r.record_id for r in copy.search("moved3")] == [stocked[3]]
        assert len(_found(copy, "north")) == 8


def test_upkeep_after_a_sync_without_changes_does_nothing(
    stocked: list[str], alice: Session, folder: Path
) -> None:
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=SMALL_PAGE)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "unchanged"
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert not index_upkeep(paths, copy, result)
