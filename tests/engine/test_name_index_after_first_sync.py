"""A first sync leaves its name index (trigrams) to be built after its result (issue 13):
names are searched in the records meanwhile, with the same results, and the worker builds
the index once the callers have the result."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from hookspecs import Session
from offline_addon.protocol.page_rows import with_rows
from offline_addon.storage.offline_copy import Completion, OfflineCopy
from offline_addon.storage.page_writer import DEFER_NAMES_FROM, names_pending
from offline_addon.storage.paths import CopyPaths
from reference_server.testing import RunningServer
from tests.support.copies import CONTACT, COPY_PASSWORD, first_sync_by_worker, new_copy, paths_of
from tests.support.kill import Child
from tests.support.records import delete, page, server_records, upsert

COUNT = DEFER_NAMES_FROM + 200
QUERIES = ("Gateway 0042", "teway 01", "ay", "zq", "Gateway", "ßtraße", "fresh", "xylo")


def _big_page() -> list[dict[str, Any]]:
    return [
        upsert(f"g{i:05d}", 1, f"Gateway {i:04d} ßtraße" if i % 9 else f"Xylo {i}", notes="x")
        for i in range(COUNT)
    ]


def _answers(copy: OfflineCopy) -> list[object]:
    return [
        ([r.record_id for r in copy.search(q, limit=COUNT)], copy.count_matches(q)) for q in QUERIES
    ]


def _trigram_rows(copy: OfflineCopy) -> int:
    return int(copy._db.execute("SELECT count(*) FROM records_name_trigrams").fetchone()[0])


def test_a_first_page_into_an_empty_copy_leaves_the_name_index_for_later(tmp_path: Path) -> None:
    reference = new_copy(tmp_path / "reference")  # small pages: indexed as they come
    copy = new_copy(tmp_path / "copy")
    try:
        changes = _big_page()
        cursor = None
        for n in range(0, COUNT, DEFER_NAMES_FROM // 2):
            chunk = page(changes[n : n + DEFER_NAMES_FROM // 2], f"r{n}")
            assert reference.apply_page(chunk, cursor, CONTACT).applied
            cursor = chunk.next_cursor
        assert not names_pending(reference._db)
        held = {change["id"]: 1 for change in changes}
        first = with_rows(page(changes, "c1", holdings=held))
        copy.apply_page(first, None, CONTACT, completion=Completion(None))
        assert copy.meta.complete
        assert names_pending(copy._db)
        assert _trigram_rows(copy) == 0
        assert _answers(copy) == _answers(reference)
        # Changes while the index waits: a rename, a delete, a new record, an offline-style
        # update that renames; all found by their names now and after the build.
        second = page(
            [
                upsert("g00042", 2, "Renamed fresh one"),
                delete("g00043"),
                upsert("new-1", 1, "Gateway fresh"),
            ],
            "c2",
        )
        assert copy.apply_page(second, "c1", CONTACT).applied
        assert reference.apply_page(second, cursor, CONTACT).applied
        assert _answers(copy) == _answers(reference)
        assert [r.record_id for r in copy.search("Renamed fre")] == ["g00042"]
        copy.compact_search_index()
        assert not names_pending(copy._db)
        assert _trigram_rows(copy) == COUNT  # one removed, one added
        assert _answers(copy) == _answers(reference)
        copy._db.execute(
            "INSERT INTO records_name_trigrams(records_name_trigrams, rank)"
            " VALUES ('integrity-check', 0)"
        )
        copy.compact_search_index()  # nothing left to build: the index stays as it is
        assert _trigram_rows(copy) == COUNT
    finally:
        copy.close()
        reference.close()


def test_a_small_first_page_and_later_pages_are_indexed_as_they_come(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    try:
        changes = _big_page()
        copy.apply_page(page(changes[:10], "c1", has_more=True), None, CONTACT)
        copy.apply_page(page(changes[10:], "c2"), "c1", CONTACT)  # a big page, copy not empty
        assert not names_pending(copy._db)
        assert _trigram_rows(copy) == COUNT
    finally:
        copy.close()


def test_the_worker_builds_the_name_index_after_the_first_syncs_result(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    demo.admin.import_records("demo", server_records(COUNT), grant={"alice": "rwe"})
    result, pending = first_sync_by_worker(folder, alice, names_pending)
    assert (result.outcome, result.record_count) == ("synced", COUNT)
    assert pending  # as the engine left it; the worker built it after the result
    with OfflineCopy.open(paths_of(folder, alice), "alice-pw") as copy:
        assert not names_pending(copy._db)
        assert _trigram_rows(copy) == COUNT
        assert [r.name for r in copy.search("Account 00042")] == ["Rec Account 00042"]


def test_an_interrupted_first_sync_keeps_the_name_index_waiting_until_it_is_built(
    tmp_path: Path,
) -> None:
    changes = _big_page()
    copy = new_copy(tmp_path)
    copy.apply_page(page(changes[:DEFER_NAMES_FROM], "c1", has_more=True), None, CONTACT)
    paths = copy.paths
    copy.close()  # the first sync stops here (a kill leaves the same: each page commits)
    with OfflineCopy.open(paths, COPY_PASSWORD) as again:
        assert names_pending(again._db)
        assert [r.record_id for r in again.search("Gateway 0005")] == ["g00005"]
        rest = page(changes[DEFER_NAMES_FROM:], "c2", holdings={c["id"]: 1 for c in changes})
        assert again.apply_page(rest, "c1", CONTACT, completion=Completion(None)).completed
        assert names_pending(again._db)  # the copy was not empty: still waiting
        assert [r.record_id for r in again.search("Gateway 1100")] == ["g01100"]
        again.merge_search_index()  # the upkeep after a small sync builds it as well
        assert not names_pending(again._db)
        assert _trigram_rows(again) == COUNT
        assert [r.record_id for r in again.search("Gateway 1100")] == ["g01100"]


def test_a_kill_during_the_build_leaves_the_index_waiting_or_built(tmp_path: Path) -> None:
    count = 20 * DEFER_NAMES_FROM
    changes = [upsert(f"k{i:06d}", 1, f"Keeper {i:06d}", notes="n") for i in range(count)]
    made = new_copy(tmp_path / "made")
    made.apply_page(with_rows(page(changes, "c1")), None, CONTACT)
    assert names_pending(made._db)
    source = made.db_path
    made.close()
    for trial, delay in enumerate((0.0, 0.02, 0.05, 0.1, 0.2, 0.4)):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        shutil.copy(source, folder / source.name)
        child = Child(
            {
                "action": "build_names",
                "folder": str(folder),
                "copy_id": "a" * 64,
                "password": COPY_PASSWORD,
            }
        )
        assert child.until("building") == "building"
        time.sleep(delay)
        child.kill()
        with OfflineCopy.open(CopyPaths(folder, "a" * 64), COPY_PASSWORD) as copy:
            assert copy.integrity_ok()
            pending = names_pending(copy._db)
            # waiting (as before the build) or built, never between
            assert _trigram_rows(copy) == (0 if pending else count)
            assert [r.record_id for r in copy.search("Keeper 012345")] == ["k012345"]
            assert copy.count_matches("eeper 0199") == 100
