"""A search's words are split as the index splits them: the index keeps no word positions
(migration 7), so each word asked for must be one token of it (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_addon.storage import migrations
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from tests.support.copies import CONTACT, new_copy, opened_file
from tests.support.records import page, upsert

INDEX_WITHOUT_POSITIONS = migrations.MIGRATIONS.index(migrations._v7_index_without_positions) + 1
"""The number of the migration that dropped the index's word positions."""

PASSWORD = "search-terms-pw-Zq81"
# U+19B0 (NEW TAI LUE VOWEL SIGN VOWEL SHORTENER) is a letter to Python's \w, and SQLite's
# tokenizer splits words at it (one of 21 such characters below U+30000).
NEWER_LETTER = "\u19b0"


@pytest.fixture
def copy(tmp_path: Path) -> OfflineCopy:
    copy = new_copy(tmp_path, PASSWORD)
    copy.apply_page(
        page(
            [
                upsert("r1", 1, "Switch", notes="rack_04 uplink"),
                upsert("r2", 1, "Müller GmbH", notes="Ansprechpartner Jürgen"),
                upsert("r3", 1, "Lab", notes=f"kappa{NEWER_LETTER}zulu"),
                upsert("r4", 1, "Printer", notes="floor 4 near the lift"),
            ]
        ),
        None,
        CONTACT,
    )
    return copy


def _found(copy: OfflineCopy, query: str) -> list[str]:
    return [r.record_id for r in copy.search(query)]


def test_words_joined_by_an_underscore_find_the_record(copy: OfflineCopy) -> None:
    assert _found(copy, "rack_04") == ["r1"]
    assert _found(copy, "rack_0") == ["r1"]
    assert _found(copy, "ra_04") == []
    assert copy.count_matches("rack_04 upl") == 1


def test_letters_sqlite_does_not_know_split_the_word_as_in_the_index(
    copy: OfflineCopy,
) -> None:
    assert _found(copy, f"kappa{NEWER_LETTER}zulu") == ["r3"]
    assert _found(copy, f"kappa{NEWER_LETTER}zu") == ["r3"]
    # As the phrase it would be: the parts before the last are whole words.
    assert _found(copy, f"kap{NEWER_LETTER}zu") == []


def test_words_are_folded_as_in_the_index(copy: OfflineCopy) -> None:
    assert _found(copy, "muller") == ["r2"]
    assert _found(copy, "MÜL") == ["r2"]
    assert _found(copy, "jurgen ansprech") == ["r2"]


@pytest.mark.parametrize(
    "query",
    ['"', 'NEAR("floor" "lift")', "floor*", "notes:floor", "floor AND", "(floor", "^floor", "-"],
)
def test_search_syntax_typed_by_the_user_is_taken_as_words(copy: OfflineCopy, query: str) -> None:
    found = _found(copy, query)
    assert found in ([], ["r4"])
    assert copy.count_matches(query) == len(found)


def test_the_query_leaves_nothing_behind_in_the_connection(copy: OfflineCopy) -> None:
    _found(copy, "uplink")
    with copy.local_read() as db:
        assert db.execute("SELECT count(*) FROM temp.query_text").fetchone()[0] == 0


def test_a_copy_with_positions_in_its_index_is_rebuilt_without_them_and_finds_the_same(
    tmp_path: Path, copy: OfflineCopy
) -> None:
    before = {q: _found(copy, q) for q in ("uplink", "muller", "floor 4", "Lab")}
    copy.close()
    paths = CopyPaths(tmp_path, "a" * 64)
    with opened_file(paths, PASSWORD) as db:  # as version 6 left it: positions kept
        db.execute("DROP TABLE records_fts")
        db.execute(
            "CREATE VIRTUAL TABLE records_fts USING fts5(name, body, content='',"
            " contentless_delete=1, tokenize='unicode61 remove_diacritics 2')"
        )
        db.execute(
            "INSERT INTO records_fts(rowid, name, body) SELECT rowid, name,"
            " (SELECT group_concat(value, ' ') FROM json_each(records.fields)"
            " WHERE lower(key) <> 'password') FROM records"
        )
        db.execute("DROP TABLE access_log")  # (made by later migrations)
        db.execute("DROP TABLE records_fts_todo")
        db.execute(f"PRAGMA user_version = {INDEX_WITHOUT_POSITIONS - 1}")
    with OfflineCopy.open(paths, PASSWORD) as reopened:
        with reopened.local_read() as db:
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'records_fts'").fetchone()
        assert "detail=none" in sql[0]
        assert {q: _found(reopened, q) for q in before} == before
