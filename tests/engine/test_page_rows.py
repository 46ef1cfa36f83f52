"""Pages laid out on the prefetch thread (PageRows) and written a statement per page and table
(issue 13): the same copy as pages the writer lays out itself, whatever the page holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offline_addon.protocol.answers import ChangePage
from offline_addon.protocol.digest import digest_of
from offline_addon.protocol.page_rows import LEAN_FROM, RowChanges, with_rows
from offline_addon.storage import page_writer
from offline_addon.storage.migrations import CRISIS_MERGE, SEARCH_INDEXES
from offline_addon.storage.offline_copy import Completion, OfflineCopy
from offline_addon.storage.page_writer import MAX_VARIABLES
from tests.support.copies import CONTACT, new_copy
from tests.support.records import delete, page, upsert

# More records than one statement of the widest table (records: 5 values and the rowid) takes,
# so that a page is written in two statements whose rowids must follow on.
_BIG = MAX_VARIABLES // 5 + 700
_WORD = "qzvextrelb"  # a note word that occurs nowhere by chance


def _first_page() -> list[dict[str, Any]]:
    return [
        upsert(
            f"id-{i:05d}",
            1 + i % 3,
            f"Kontö {i:05d} naïve",
            username=f"user{i}",
            password=f"pw-{i}",
            notes=f"{_WORD}{i:05d} ß straße",
        )
        for i in range(_BIG)
    ]


def _second_page() -> list[dict[str, Any]]:
    return [
        upsert("id-00003", 9, "Renamed gateway", notes="moved"),  # an update, renamed
        delete("id-00004"),
        upsert("new-a", 1, "Fresh entry", notes="fresh"),
        upsert("new-a", 2, "Fresh entry twice", notes="fresher"),  # the same id again
        delete("id-99999"),  # not held
    ]


def _holdings() -> dict[str, int]:
    held = {f"id-{i:05d}": 1 + i % 3 for i in range(_BIG)}
    held["id-00003"] = 9
    del held["id-00004"]
    held["new-a"] = 2
    return held


def _write(copy: OfflineCopy, pages: list[ChangePage]) -> None:
    cursor = None
    for n, one in enumerate(pages):
        last = n == len(pages) - 1
        outcome = copy.apply_page(
            one, cursor, CONTACT, completion=Completion(None, None) if last else None
        )
        assert outcome.applied
        cursor = one.next_cursor


def _rows(copy: OfflineCopy) -> list[tuple[Any, ...]]:
    return copy._db.execute(
        "SELECT rowid, id, rev, name, fields, updated_at FROM records ORDER BY rowid"
    ).fetchall()


def _found(copy: OfflineCopy, query: str) -> list[str]:
    return [r.record_id for r in copy.search(query, limit=100_000)]


def _pages(prepared: bool) -> list[ChangePage]:
    pages = [
        page(_first_page(), "c1", has_more=True),
        page(_second_page(), "c2", holdings=_holdings()),
    ]
    return [with_rows(p) for p in pages] if prepared else pages


def test_a_page_of_new_records_is_laid_out_and_others_are_not() -> None:
    first, second = _pages(prepared=True)
    assert first.rows is not None
    assert len(first.rows) == _BIG
    assert first.rows.line_sum == sum(
        int(digest_of([(c.id, c.rev or 0)]).sum, 16) for c in first.changes
    )
    assert second.rows is None  # deletes and a repeated id: the writer plans it
    assert with_rows(page([upsert("a"), upsert("a", 2)])).rows is None
    assert with_rows(page([])).rows is None
    assert "pw-1" not in repr(first.rows)
    assert "pw-1" not in repr(first)


def test_prepared_and_unprepared_pages_write_the_same_copy(tmp_path: Path) -> None:
    copies = {}
    for prepared in (True, False):
        copy = new_copy(tmp_path / str(prepared))
        _write(copy, _pages(prepared))
        copies[prepared] = copy
    laid, planned = copies[True], copies[False]
    try:
        assert _rows(laid) == _rows(planned)
        assert laid.digest() == planned.digest() == laid.recompute_digest()
        assert laid.digest() == digest_of(_holdings().items())
        assert laid.meta.complete
        assert planned.meta.complete
        for query in (
            f"{_WORD}00001",
            f"{_WORD}0599",
            "strasse",
            "Kontö 0512",
            "nto 0777",
            "naive",
            "moved",
            "fresher",
            "Renamed",
            "ß",
        ):
            assert _found(laid, query) == _found(planned, query), query
        # Rows from the second statement of the big page are in both indexes, by their rowid.
        last = f"id-{_BIG - 1:05d}"
        assert _found(laid, f"{_WORD}{_BIG - 1:05d}") == [last]
        assert _found(laid, f"ntö {_BIG - 1:05d}") == [last]
        assert _found(laid, "fresher") == ["new-a"]
        assert _found(laid, "Fresh entry twice")
        assert _found(laid, "pw-1") == []  # the password is not indexed
        for table in SEARCH_INDEXES:
            laid._db.execute(
                f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)"  # noqa: S608
            )
    finally:
        laid.close()
        planned.close()


@pytest.mark.parametrize("table", SEARCH_INDEXES)
def test_a_copy_merges_index_segments_at_64_per_level_not_16(tmp_path: Path, table: str) -> None:
    copy = new_copy(tmp_path)
    try:
        value = copy._db.execute(
            f"SELECT v FROM {table}_config WHERE k = 'crisismerge'"  # noqa: S608
        ).fetchone()
        assert value == (CRISIS_MERGE,)
    finally:
        copy.close()


def test_a_laid_out_page_naming_a_held_record_updates_it(tmp_path: Path) -> None:
    # All upserts of distinct ids, so laid out, but one is held: the plan, not the layout.
    copy = new_copy(tmp_path)
    try:
        _write(copy, [with_rows(page([upsert("h1", 1, "Held one"), upsert("h2")], "c1"))])
        again = with_rows(
            page(
                [upsert("h1", 2, "Held one renamed", notes="later"), upsert("h3")],
                "c2",
                holdings={"h1": 2, "h2": 1, "h3": 1},
            )
        )
        assert again.rows is not None
        outcome = copy.apply_page(again, "c1", CONTACT, completion=Completion(None))
        assert (outcome.added, outcome.changed) == (1, 1)
        assert [(r[1], r[2]) for r in _rows(copy)] == [("h1", 2), ("h2", 1), ("h3", 1)]
        assert _found(copy, "later") == ["h1"]
        assert _found(copy, "one renamed") == ["h1"]
        assert copy.meta.complete
    finally:
        copy.close()


def test_a_large_page_keeps_its_rows_only_and_gives_back_the_same_changes() -> None:
    validated = page(_first_page(), "c1", has_more=True)
    lean = with_rows(validated)
    small = with_rows(page(_first_page()[: LEAN_FROM - 1]))
    assert isinstance(lean.changes, RowChanges)  # no validated record is held beside the rows
    assert not isinstance(small.changes, RowChanges)
    assert len(lean.changes) == len(validated.changes) == _BIG
    assert list(lean.changes) == list(validated.changes)
    assert lean.changes[-1] == validated.changes[-1]
    assert lean.changes[3:6] == tuple(validated.changes[3:6])
    assert lean.ids() == validated.ids() == [c.id for c in validated.changes]
    with pytest.raises(IndexError):
        lean.changes[_BIG]
    assert "pw-1" not in repr(lean.changes)
    assert "pw-1" not in repr(lean)


def test_a_large_page_naming_held_records_updates_them(tmp_path: Path) -> None:
    # Distinct upserts, so a lean page, but most of its records are held: the writer plans
    # it from changes made again from the rows.
    copy = new_copy(tmp_path)
    count, word = LEAN_FROM + 200, "wexlunqor"
    try:
        first = [upsert(f"id-{i:05d}", 1, f"Entry {i:05d}", notes=f"old {i}") for i in range(count)]
        _write(copy, [with_rows(page(first, "c1"))])
        again = [
            upsert(f"id-{i:05d}", 2, f"Entry {i:05d}", notes=f"{word}{i:05d}")
            for i in range(100, count + 100)
        ]
        lean = with_rows(
            page(
                again,
                "c2",
                holdings={f"id-{i:05d}": 1 if i < 100 else 2 for i in range(count + 100)},
            )
        )
        assert isinstance(lean.changes, RowChanges)
        outcome = copy.apply_page(lean, "c1", CONTACT, completion=Completion(None))
        assert (outcome.added, outcome.changed) == (100, count - 100)
        assert copy.meta.complete
        copy.compact_search_index()  # builds what the first page left waiting
        assert _found(copy, f"{word}00100") == ["id-00100"]
        assert _found(copy, f"{word}{count + 99:05d}") == [f"id-{count + 99:05d}"]
        assert len(_found(copy, word)) == count
        assert _found(copy, "old 00005") == ["id-00005"]
        assert _found(copy, "old 00500") == []
    finally:
        copy.close()


def test_indexes_built_in_chunks_hold_every_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_writer, "BUILD_CHUNK", 1000)
    copy = new_copy(tmp_path)
    try:
        gone = ["id-00999", "id-01000", "id-05000"]  # rowids at and across chunk borders
        held = {f"id-{i:05d}": 1 + i % 3 for i in range(_BIG)}
        for i in gone:
            del held[i]
        first = with_rows(page(_first_page(), "c1", has_more=True))
        _write(copy, [first, page([delete(i) for i in gone], "c2", holdings=held)])
        assert copy.search_pending()
        copy.compact_search_index()
        assert not copy.search_pending()
        for i in (0, 998, 1001, 1999, 2000, 4999, 5001, _BIG - 1):
            assert _found(copy, f"{_WORD}{i:05d}") == [f"id-{i:05d}"], i
            assert _found(copy, f"ntö {i:05d}") == [f"id-{i:05d}"], i
        for i in gone:
            assert _found(copy, f"{_WORD}{i[3:]}") == []
        (indexed,) = copy._db.execute("SELECT count(*) FROM records_fts").fetchone()
        assert indexed == _BIG - len(gone)
        for table in SEARCH_INDEXES:
            copy._db.execute(
                f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)"  # noqa: S608
            )
    finally:
        copy.close()
