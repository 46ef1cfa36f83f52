"""A small sync leaves its records' full-text entries to the upkeep after its result (issue
13: their words were about a quarter of a 100-change sync). Until then the records wait in
``records_fts_todo`` and searches match them through a temporary index of their current
text: the same results as a copy indexed as it went, never by a password, never by a word
a record no longer has. A kill leaves them waiting or indexed; a skipped upkeep is made up
at the next sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hookspecs import Session
from offline_addon import AddonSettings, OfflineCopies
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.page_writer import WORDS_LATER_UP_TO, pending_indexes
from offline_addon.storage.paths import CopyPaths
from reference_server.testing import RunningServer
from tests.support.copies import CONTACT, COPY_PASSWORD, new_copy, opened_file, paths_of
from tests.support.kill import upkeep_killed
from tests.support.records import delete, page, server_records, upsert

HIDDEN = "Qj8Vz-words-of-a-password"
"""A word that only passwords hold: no search may find a record by it."""
QUERIES = (
    "Depot",
    "Depot 0042",
    "muller",
    "Müller",
    "stale-word",
    "fresh-word",
    "freshly",
    "fre",
    "Renamed",
    "Ren 00",
    "epo",
    "ab",
    HIDDEN,
    "brand new",
)


def _record(i: int, rev: int = 1, notes: str = "stale-word kept", name: str = "") -> Any:
    return upsert(
        f"d{i:05d}", rev, name or f"Depot {i:04d}", notes=notes, password=f"{HIDDEN} {i} x"
    )


def _stock(count: int) -> list[dict[str, Any]]:
    return [_record(i) for i in range(count)]


def _answers(copy: OfflineCopy) -> list[tuple[list[str], int]]:
    return [
        ([r.record_id for r in copy.search(q, limit=10_000)], copy.count_matches(q))
        for q in QUERIES
    ]


def _waiting(copy: OfflineCopy) -> int:
    return int(copy._db.execute("SELECT count(*) FROM records_fts_todo").fetchone()[0])


def _fts_rows(copy: OfflineCopy, match: str) -> int:
    row = copy._db.execute(
        "SELECT count(*) FROM records_fts WHERE records_fts MATCH ?", (match,)
    ).fetchone()
    return int(row[0])


def _check_index(copy: OfflineCopy) -> None:
    copy._db.execute("INSERT INTO records_fts(records_fts, rank) VALUES ('integrity-check', 0)")


def _changes() -> list[dict[str, Any]]:
    """A small sync's page: new words, a rename, an accented word, deletes, new records, a
    password holding a word of the notes before."""
    return [
        *(_record(i, 2, notes="fresh-word freshly Müller") for i in range(0, 40)),
        *(_record(i, 2, name=f"Renamed {i:04d}") for i in range(40, 50)),
        upsert("d00060", 2, "Depot 0060", notes="nothing", password="stale-word"),
        delete("d00061"),
        delete("d00062"),
        *(upsert(f"n{i:03d}", 1, f"Brand new {i}", notes="fresh-word") for i in range(20)),
    ]


def _pair(tmp_path: Path, count: int = 300) -> tuple[OfflineCopy, OfflineCopy]:
    """The same records in two copies, indexed; the first ``reference`` indexes as it goes."""
    reference = new_copy(tmp_path / "reference")
    copy = new_copy(tmp_path / "copy")
    for each in (reference, copy):
        assert each.apply_page(page(_stock(count), "c1"), None, CONTACT).applied
        each.compact_search_index()  # (a first page of 1000 or more leaves it to be built)
    assert not pending_indexes(copy._db)
    return reference, copy


def test_a_small_pages_words_wait_for_the_upkeep_and_searches_find_the_same(
    tmp_path: Path,
) -> None:
    reference, copy = _pair(tmp_path)
    try:
        second = page(_changes(), "c2")
        assert reference.apply_page(second, "c1", CONTACT).applied
        assert copy.apply_page(second, "c1", CONTACT, words_later=True).applied
        assert pending_indexes(reference._db) == (False, False, False)
        assert pending_indexes(copy._db).words
        assert not copy.search_pending()  # the index is built: nothing for the host to say
        assert copy.index_work_waits()
        assert _waiting(copy) == 40 + 10 + 1 + 20
        assert _fts_rows(copy, "fresh") == 0  # the index itself has not seen them yet
        exact = _answers(reference)
        assert _answers(copy) == exact
        # the old words are gone, the new ones found, accents folded as the index folds them
        assert "d00005" not in [r.record_id for r in copy.search("stale-word")]
        assert len(copy.search("muller")) == 40
        assert len(copy.search("fresh-word")) == 60
        assert copy.search(HIDDEN) == []
        assert [r.record_id for r in copy.search("stale-word") if r.record_id == "d00060"] == []
        # another page while they wait: one of them changes again, one goes, one comes
        third = page(
            [_record(3, 3, notes="third"), delete("d00004"), upsert("z1", 1, "Depot zz")], "c3"
        )
        assert reference.apply_page(third, "c2", CONTACT).applied
        assert copy.apply_page(third, "c2", CONTACT, words_later=True).applied
        assert _answers(copy) == _answers(reference)
        copy.merge_search_index()  # the upkeep after the sync's result
        assert not pending_indexes(copy._db)
        assert _waiting(copy) == 0
        assert _fts_rows(copy, "fresh") == 58  # of the 60, one changed again and one went
        assert _answers(copy) == _answers(reference)
        _check_index(copy)
    finally:
        copy.close()
        reference.close()


def test_a_record_that_took_the_row_of_a_deleted_one_is_found_by_its_own_words(
    tmp_path: Path,
) -> None:
    reference, copy = _pair(tmp_path, 10)
    try:
        last = copy._db.execute("SELECT max(rowid) FROM records").fetchone()[0]
        for each, later in ((reference, False), (copy, True)):
            second = page([delete("d00009"), upsert("r1", 1, "Depot reborn", notes="newcomer")])
            assert each.apply_page(second, "c1", CONTACT, words_later=later).applied
        row = copy._db.execute("SELECT rowid FROM records WHERE id = 'r1'").fetchone()
        assert row[0] == last  # the row id of the deleted record, taken again
        assert [r.record_id for r in copy.search("newcomer")] == ["r1"]
        assert copy.search("stale-word") == reference.search("stale-word")
        assert len(copy.search("stale-word")) == 9
        copy.merge_search_index()
        assert [r.record_id for r in copy.search("newcomer")] == ["r1"]
        assert _answers(copy) == _answers(reference)
        _check_index(copy)
    finally:
        copy.close()
        reference.close()


def test_a_page_that_would_leave_too_many_waiting_is_indexed_at_once(tmp_path: Path) -> None:
    reference, copy = _pair(tmp_path, WORDS_LATER_UP_TO + 100)
    try:
        small = page([_record(i, 2, notes="fresh-word") for i in range(50)], "c2")
        for each, later in ((reference, False), (copy, True)):
            assert each.apply_page(small, "c1", CONTACT, words_later=later).applied
        assert _waiting(copy) == 50
        big = page(
            [_record(i, 3, notes="freshly") for i in range(100, 100 + WORDS_LATER_UP_TO)], "c3"
        )
        for each, later in ((reference, False), (copy, True)):
            assert each.apply_page(big, "c2", CONTACT, words_later=later).applied
        assert _waiting(copy) == 50  # the big page went into the index at once
        assert _fts_rows(copy, "freshly") == WORDS_LATER_UP_TO
        assert _answers(copy) == _answers(reference)
    finally:
        copy.close()
        reference.close()


def test_edits_and_syncs_without_the_option_index_their_words_at_once(tmp_path: Path) -> None:
    reference, copy = _pair(tmp_path, 20)
    try:
        assert copy.apply_page(page([_record(1, 2, notes="fresh-word")], "c2"), "c1", CONTACT)
        assert _waiting(copy) == 0
        assert _fts_rows(copy, "fresh") == 1
    finally:
        copy.close()
        reference.close()


def test_a_kill_while_the_waiting_words_are_indexed_leaves_them_waiting_or_indexed(
    tmp_path: Path,
) -> None:
    count = 20_000
    stock = [
        upsert(f"k{i:06d}", 1, f"Keeper {i:06d}", notes=f"w{i % 100:02d}") for i in range(count)
    ]
    changed = [
        upsert(f"k{i:06d}", 2, f"Keeper {i:06d}", notes=f"moved{i // 20 % 10}")
        for i in range(0, count, count // WORDS_LATER_UP_TO)
    ]
    reference = new_copy(tmp_path / "reference")
    made = new_copy(tmp_path / "made")
    for each, later in ((reference, False), (made, True)):
        for n in range(0, count, 2500):
            chunk = page(stock[n : n + 2500], f"s{n}", has_more=True)
            assert each.apply_page(chunk, None if n == 0 else f"s{n - 2500}", CONTACT).applied
        each.compact_search_index()  # the first sync's upkeep: its indexes built
        assert each.apply_page(page(changed, "c2"), f"s{count - 2500}", CONTACT, words_later=later)
    assert _waiting(made) == len(changed) == WORDS_LATER_UP_TO
    queries = ("moved3", "w07", "Keeper 012345", "moved", "w0")
    exact = [reference.count_matches(q) for q in queries]
    assert [made.count_matches(q) for q in queries] == exact
    source = made.db_path
    made.close()
    reference.close()
    seen: set[bool] = set()
    for trial, delay in enumerate((0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 0.6, 1.5)):
        folder = tmp_path / f"trial{trial}"
        upkeep_killed(source, folder, COPY_PASSWORD, delay)  # (it indexes waiting words first)
        with OfflineCopy.open(CopyPaths(folder, "a" * 64), COPY_PASSWORD) as copy:
            assert copy.integrity_ok()
            waiting = _waiting(copy)
            seen.add(waiting == 0)
            assert waiting in (0, WORDS_LATER_UP_TO)  # all or none, never some
            assert _fts_rows(copy, "moved3") == (0 if waiting else WORDS_LATER_UP_TO // 10)
            assert [copy.count_matches(q) for q in queries] == exact
            copy.merge_search_index()
            assert _waiting(copy) == 0
            assert [copy.count_matches(q) for q in queries] == exact
            _check_index(copy)
    assert seen == {True, False}  # killed before and after the indexing at least once


def _wait(copies: OfflineCopies) -> None:
    assert copies.wait_idle(30)


def test_the_worker_indexes_a_syncs_words_after_its_result_and_makes_up_a_skipped_upkeep(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    ids = demo.admin.import_records("demo", server_records(50), grant={"alice": "rwe"})
    copies = OfflineCopies(AddonSettings(database_path=str(folder)))
    paths = paths_of(folder, alice)
    try:
        assert copies.create(alice).outcome == "synced"
        _wait(copies)
        for record_id in ids[:5]:
            demo.admin.update_record("demo", record_id, fields={"notes": "Rec note Kv3-relocated"})
        result = copies.sync_now(alice)
        assert (result.outcome, result.changed) == ("synced", 5)
        _wait(copies)
        with OfflineCopy.open(paths, "alice-pw") as copy:
            assert _waiting(copy) == 0
            assert _fts_rows(copy, "relocated") == 5
            assert len(copy.search("Kv3-relocated")) == 5
            # as if the upkeep after that sync had been skipped (another writer held the lock)
            rowids = [r[0] for r in copy._db.execute("SELECT rowid FROM records LIMIT 7")]
            copy._db.executemany("DELETE FROM records_fts WHERE rowid = ?", [(r,) for r in rowids])
            copy._db.executemany(
                "INSERT INTO records_fts_todo(rowid) VALUES (?)", [(r,) for r in rowids]
            )
            copy._db.commit()
            assert copy.count_matches("Rec note") == 50  # found meanwhile
        again = copies.sync_now(alice)
        assert again.outcome == "unchanged"
        _wait(copies)
        with OfflineCopy.open(paths, "alice-pw") as copy:
            assert _waiting(copy) == 0
            assert _fts_rows(copy, "note") == 50
            _check_index(copy)
    finally:
        copies.shutdown()


def test_a_search_sees_the_waiting_records_of_one_moment_while_another_program_commits(
    tmp_path: Path,
) -> None:
    """Another program's sync commits between a search's statements (here: after the search
    indexed the waiting records apart, before it asks the index): the search still reads one
    state of the copy, so a record whose waiting began meanwhile is not dropped from both
    halves."""
    reference, copy = _pair(tmp_path, 20)
    reference.close()
    try:
        assert copy.apply_page(
            page([_record(1, 2, notes="kept fresh-word")], "c2"), "c1", CONTACT, words_later=True
        )
        target = copy._db.execute("SELECT rowid FROM records WHERE id = 'd00007'").fetchone()[0]
        other = opened_file(copy.paths, COPY_PASSWORD)
        with other as conn:

            def commit_meanwhile(statement: str) -> None:
                if statement.startswith("WITH hit(r)"):
                    copy._db.set_trace_callback(None)
                    # a page changing d00007's password only: its words stay, it now waits
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(
                        "UPDATE records SET rev = 2, fields = json_set(fields, '$.password',"
                        " 'other') WHERE rowid = ?",
                        (target,),
                    )
                    conn.execute("INSERT INTO records_fts_todo(rowid) VALUES (?)", (target,))
                    conn.execute("COMMIT")

            copy._db.set_trace_callback(commit_meanwhile)
            found = [r.record_id for r in copy.search("stale-word", limit=100)]
        assert "d00007" in found
        assert len(found) == 19  # all but d00001, whose notes no longer say it
        assert _waiting(copy) == 2
        assert len(copy.search("stale-word", limit=100)) == 19
    finally:
        copy.close()
