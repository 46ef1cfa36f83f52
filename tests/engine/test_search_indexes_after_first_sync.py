"""A first sync leaves both search indexes (the full-text words and the name trigrams) to be
built after its result (issue 13): searches scan the records meanwhile (names with the same
results, words a little more widely, never by a password), the result says that search
follows, and the worker builds both indexes once the callers have the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hookspecs import Session
from offline_addon.protocol.page_rows import with_rows
from offline_addon.storage.offline_copy import Completion, OfflineCopy
from offline_addon.storage.page_writer import (
    DEFER_INDEXES_FROM,
    pending_indexes,
)
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.result import SEARCH_FOLLOWS
from reference_server.testing import RunningServer
from tests.support.copies import CONTACT, COPY_PASSWORD, first_sync_by_worker, new_copy, paths_of
from tests.support.kill import upkeep_killed
from tests.support.records import delete, page, server_records, upsert

COUNT = DEFER_INDEXES_FROM + 200
QUERIES = ("Gateway 0042", "teway 01", "ay", "zq", "Gateway", "ßtraße", "fresh", "xylo", "qv7k")
HIDDEN = "Zx9Pw-only-in-the-password"
"""A word that only a password holds: no search may find a record by it."""


def _record(i: int) -> dict[str, Any]:
    name = f"Gateway {i:04d} ßtraße" if i % 9 else f"Xylo {i}"
    notes = "qv7k rack" if i % 50 == 7 else "x"
    return upsert(f"g{i:05d}", 1, name, notes=notes, password=f"{HIDDEN} {i}")


def _big_page() -> list[dict[str, Any]]:
    return [_record(i) for i in range(COUNT)]


def _answers(copy: OfflineCopy) -> list[tuple[list[str], int]]:
    return [
        ([r.record_id for r in copy.search(q, limit=COUNT)], copy.count_matches(q)) for q in QUERIES
    ]


def _rows(copy: OfflineCopy, table: str, match: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE {table} MATCH ?"  # noqa: S608 - test constants
    return int(copy._db.execute(sql, (match,)).fetchone()[0])


def _trigram_rows(copy: OfflineCopy) -> int:
    return int(copy._db.execute("SELECT count(*) FROM records_name_trigrams").fetchone()[0])


def _check_indexes(copy: OfflineCopy) -> None:
    for table in ("records_fts", "records_name_trigrams"):
        copy._db.execute(
            f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)"  # noqa: S608
        )


def _assert_wider(pending: list[tuple[list[str], int]], exact: list[tuple[list[str], int]]) -> None:
    """While the full-text index waits, every query finds what the index finds, maybe more."""
    for (ids, count), (exact_ids, exact_count) in zip(pending, exact, strict=True):
        assert set(ids) >= set(exact_ids)
        assert count >= exact_count == len(exact_ids)


def test_a_first_page_into_an_empty_copy_leaves_both_indexes_for_later(tmp_path: Path) -> None:
    reference = new_copy(tmp_path / "reference")  # small pages: indexed as they come
    copy = new_copy(tmp_path / "copy")
    try:
        changes = _big_page()
        cursor = None
        for n in range(0, COUNT, DEFER_INDEXES_FROM // 2):
            chunk = page(changes[n : n + DEFER_INDEXES_FROM // 2], f"r{n}")
            assert reference.apply_page(chunk, cursor, CONTACT).applied
            cursor = chunk.next_cursor
        assert not pending_indexes(reference._db)
        held = {change["id"]: 1 for change in changes}
        first = with_rows(page(changes, "c1", holdings=held))
        copy.apply_page(first, None, CONTACT, completion=Completion(None))
        assert copy.meta.complete
        assert pending_indexes(copy._db).names
        assert pending_indexes(copy._db).text
        assert copy.search_pending()
        assert _trigram_rows(copy) == 0
        assert _rows(copy, "records_fts", "gateway") == 0
        _assert_wider(_answers(copy), _answers(reference))
        # The scan finds a note's word and a name's word, as the index does ...
        assert len(copy.search("qv7k")) == len(reference.search("qv7k")) == COUNT // 50
        assert [r.record_id for r in copy.search("Xylo 450")] == ["g00450"]
        # ... and never a record by its password.
        assert copy.search(HIDDEN) == reference.search(HIDDEN) == []
        assert copy.count_matches(HIDDEN) == 0
        # Changes while the indexes wait: a rename, a delete, a new record; found by their
        # names and words now and after the build.
        second = page(
            [
                upsert("g00042", 2, "Renamed fresh one", notes="moved"),
                delete("g00043"),
                upsert("new-1", 1, "Gateway fresh", notes="qv7k"),
            ],
            "c2",
        )
        assert copy.apply_page(second, "c1", CONTACT).applied
        assert reference.apply_page(second, cursor, CONTACT).applied
        _assert_wider(_answers(copy), _answers(reference))
        assert [r.record_id for r in copy.search("Renamed fre")] == ["g00042"]
        assert [r.record_id for r in copy.search("moved")] == ["g00042"]
        copy.compact_search_index()
        assert not pending_indexes(copy._db)
        assert not copy.search_pending()
        assert _trigram_rows(copy) == COUNT  # one removed, one added
        assert _answers(copy) == _answers(reference)
        assert [r.record_id for r in copy.search("moved")] == ["g00042"]
        assert copy.search(HIDDEN) == []
        _check_indexes(copy)
        copy.compact_search_index()  # nothing left to build: the indexes stay as they are
        assert _trigram_rows(copy) == COUNT
        assert _answers(copy) == _answers(reference)
    finally:
        copy.close()
        reference.close()


def test_a_small_first_page_and_later_pages_are_indexed_as_they_come(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    try:
        changes = _big_page()
        copy.apply_page(page(changes[:10], "c1", has_more=True), None, CONTACT)
        copy.apply_page(page(changes[10:], "c2"), "c1", CONTACT)  # a big page, copy not empty
        assert not pending_indexes(copy._db)
        assert not copy.search_pending()
        assert _trigram_rows(copy) == COUNT
        assert _rows(copy, "records_fts", "qv7k") == COUNT // 50
    finally:
        copy.close()


def test_the_worker_builds_both_indexes_after_the_first_syncs_result(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    demo.admin.import_records("demo", server_records(COUNT), grant={"alice": "rwe"})
    result, pending = first_sync_by_worker(folder, alice, pending_indexes)
    assert (result.outcome, result.record_count) == ("synced", COUNT)
    assert pending.names
    assert pending.text
    assert result.message.endswith(SEARCH_FOLLOWS)
    with OfflineCopy.open(paths_of(folder, alice), "alice-pw") as copy:
        assert not pending_indexes(copy._db)
        assert _trigram_rows(copy) == COUNT
        assert [r.name for r in copy.search("Account 00042")] == ["Rec Account 00042"]
        assert _rows(copy, "records_fts", "account") == COUNT


def test_a_kept_open_copy_gets_its_waiting_index_at_the_next_sync(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    """An upkeep that could not run (another writer held the lock) leaves the indexes
    waiting; the next sync builds them although it brings nothing new."""
    from offline_addon import AddonSettings, OfflineCopies

    demo.admin.import_records("demo", server_records(COUNT), grant={"alice": "rwe"})
    copies = OfflineCopies(AddonSettings(database_path=str(folder)))
    paths = paths_of(folder, alice)
    try:
        first = copies.create(alice)
        assert first.outcome == "synced"
        assert copies.wait_idle(30)
        with OfflineCopy.open(paths, "alice-pw") as copy:
            assert not copy.search_pending()
            # as if that upkeep had been skipped
            copy._db.execute("INSERT INTO meta(key, value) VALUES ('text_index_pending', 1)")
            copy._db.execute("INSERT INTO records_fts(records_fts) VALUES ('delete-all')")
            copy._db.commit()
        again = copies.sync_now(alice)
        assert again.outcome == "unchanged"
        assert copies.wait_idle(30)
        with OfflineCopy.open(paths, "alice-pw") as copy:
            assert not copy.search_pending()
            assert _rows(copy, "records_fts", "account") == COUNT
    finally:
        copies.shutdown()


def test_an_interrupted_first_sync_keeps_the_indexes_waiting_until_they_are_built(
    tmp_path: Path,
) -> None:
    changes = _big_page()
    copy = new_copy(tmp_path)
    copy.apply_page(page(changes[:DEFER_INDEXES_FROM], "c1", has_more=True), None, CONTACT)
    paths = copy.paths
    copy.close()  # the first sync stops here (a kill leaves the same: each page commits)
    with OfflineCopy.open(paths, COPY_PASSWORD) as again:
        assert pending_indexes(again._db).names
        assert pending_indexes(again._db).text
        assert [r.record_id for r in again.search("Gateway 0005")] == ["g00005"]
        rest = page(changes[DEFER_INDEXES_FROM:], "c2", holdings={c["id"]: 1 for c in changes})
        assert again.apply_page(rest, "c1", CONTACT, completion=Completion(None)).completed
        assert pending_indexes(again._db).text  # the copy was not empty: still waiting
        assert [r.record_id for r in again.search("Gateway 1100")] == ["g01100"]
        again.merge_search_index()  # the upkeep after a small sync builds them as well
        assert not pending_indexes(again._db)
        assert _trigram_rows(again) == COUNT
        assert [r.record_id for r in again.search("Gateway 1100")] == ["g01100"]
        assert len(again.search("qv7k")) == COUNT // 50
        _check_indexes(again)


def test_a_kill_during_the_build_leaves_the_indexes_waiting_or_built(tmp_path: Path) -> None:
    count = 20 * DEFER_INDEXES_FROM
    changes = [
        upsert(f"k{i:06d}", 1, f"Keeper {i:06d}", notes=f"w{i % 100:02d}") for i in range(count)
    ]
    made = new_copy(tmp_path / "made")
    made.apply_page(with_rows(page(changes, "c1")), None, CONTACT)
    assert pending_indexes(made._db).names
    assert pending_indexes(made._db).text
    source = made.db_path
    made.close()
    seen: set[bool] = set()
    for trial, delay in enumerate((0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)):
        folder = tmp_path / f"trial{trial}"
        upkeep_killed(source, folder, COPY_PASSWORD, delay)
        with OfflineCopy.open(CopyPaths(folder, "a" * 64), COPY_PASSWORD) as copy:
            assert copy.integrity_ok()
            pending = pending_indexes(copy._db)
            seen.add(bool(pending))
            # waiting (as before the build) or built, never between
            assert pending.names == pending.text
            assert _trigram_rows(copy) == (0 if pending else count)
            assert _rows(copy, "records_fts", "w07") == (0 if pending else count // 100)
            assert [r.record_id for r in copy.search("Keeper 012345")] == ["k012345"]
            # (while the words index waits, "0199" inside "010199" matches too)
            assert copy.count_matches("eeper 0199") >= 100
            assert copy.count_matches("w07") == count // 100
            copy.compact_search_index()
            assert not pending_indexes(copy._db)
            assert copy.count_matches("eeper 0199") == 100
            assert copy.count_matches("w07") == count // 100
            _check_indexes(copy)
    assert True in seen  # killed during the build at least once (a build of 20k: ~0.3 s)
