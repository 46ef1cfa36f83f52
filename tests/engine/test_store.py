"""The encrypted copy on its own: keys, schema, search (its files are owner-only and hold no
plaintext: tests/proof/test_security.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3

from offline_addon.errors import StorageError, WrongPassword
from offline_addon.protocol.digest import digest_of
from offline_addon.storage.cipher import quote_password
from offline_addon.storage.files import delete_copy
from offline_addon.storage.migrations import SCHEMA_VERSION, migrate
from offline_addon.storage.offline_copy import DAMAGED, OfflineCopy, mark_damaged, open_for_sync
from offline_addon.storage.paths import CopyPaths, damage_mark
from offline_addon.storage.sidecar import list_copies, read_sidecar, write_sidecar
from tests.support.copies import CONTACT, IDENTITY, checkpoint, new_copy, opened_file, set_meta
from tests.support.records import delete, page, upsert
from tests.support.sqlcipher4 import HmacMismatch, decrypt_file, read_records

PASSWORD = 'pa\'ss "wörd" ;--'


def _filled(folder: Path, password: str = PASSWORD) -> OfflineCopy:
    copy = new_copy(folder, password)
    copy.apply_page(
        page(
            [
                upsert("r1", 1, "Mail account", username="alice@mail", password="TopSecret1"),
                upsert(
                    "r2",
                    3,
                    "Bank",
                    username="alice",
                    url="https://bank.example",
                    password="TopSecret2",
                ),
            ]
        ),
        None,
        CONTACT,
    )
    return copy


def test_copy_opens_with_its_password_and_holds_records(tmp_path: Path) -> None:
    _filled(tmp_path).close()
    with OfflineCopy.open(CopyPaths(tmp_path, "a" * 64), PASSWORD) as copy:
        assert copy.record_count() == 2
        record = copy.get("r1")
        assert record is not None
        assert record.fields["password"] == "TopSecret1"
        assert copy.cursor == "c1"
        assert copy.meta.identity == IDENTITY
        assert copy.meta.validity_seconds == CONTACT.validity_seconds


def test_wrong_password_is_refused_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.close()
    paths = CopyPaths(tmp_path, "a" * 64)
    checkpoint(paths, PASSWORD)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(WrongPassword, match="password"):
        OfflineCopy.open(paths, "not the password")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_file_opens_in_an_independent_sqlcipher4_reader(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.close()
    checkpoint(copy.paths, PASSWORD)
    records = read_records(copy.paths.db, PASSWORD, tmp_path)
    assert set(records) == {"r1", "r2"}
    assert records["r2"][:2] == (3, "Bank")
    assert json.loads(records["r1"][2])["password"] == "TopSecret1"


def test_independent_reader_rejects_a_wrong_password(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.close()
    with pytest.raises(HmacMismatch):
        decrypt_file(copy.paths.db, "wrong", tmp_path / "plain.db")


def test_sqlcipher_cli_opens_the_copy_when_it_is_version_4(tmp_path: Path) -> None:
    cli = shutil.which("sqlcipher")
    if cli is None:
        pytest.skip("no sqlcipher command line tool installed")
    version = subprocess.run(
        [cli, ":memory:"],
        input="PRAGMA cipher_version;\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    if not version.startswith("4."):
        pytest.skip(f"sqlcipher CLI is {version or 'unknown'}, which cannot read SQLCipher 4 files")
    copy = _filled(tmp_path)
    copy.close()
    script = f"PRAGMA key = {quote_password(PASSWORD)};\nSELECT count(*) FROM records;\n"
    out = subprocess.run(
        [cli, str(copy.paths.db)],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    assert out.strip().splitlines()[-1] == "2"


def test_search_finds_name_substring_and_field_words_but_not_passwords(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    assert [r.record_id for r in copy.search("ail acc")] == ["r1"]
    assert [r.record_id for r in copy.search("bank.exa")] == ["r2"]
    assert [r.record_id for r in copy.search("alice")] == ["r2", "r1"]
    assert copy.search("TopSecret1") == []
    assert copy.search('" OR NEAR(* %_') == []
    assert len(copy.search("")) == 2
    copy.close()


def test_deleting_a_record_removes_its_full_text_entries(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    outcome = copy.apply_page(page([delete("r2", "revoked")], "c2"), "c1", CONTACT)
    assert outcome.removed == 1
    assert copy.search("bank") == []
    copy.close()
    with opened_file(copy.paths, PASSWORD) as db:
        _assert_bank_unindexed(db)


def _assert_bank_unindexed(db: Any) -> None:
    assert (
        db.execute("SELECT count(*) FROM records_fts WHERE records_fts MATCH 'bank'").fetchone()[0]
        == 0
    )
    assert db.execute("SELECT count(*) FROM records_fts").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM records_name_trigrams").fetchone()[0] == 1
    assert (
        db.execute(
            "SELECT count(*) FROM records_name_trigrams WHERE records_name_trigrams MATCH 'ank'"
        ).fetchone()[0]
        == 0
    )


def test_updating_a_record_reindexes_it(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.apply_page(page([upsert("r2", 4, "Savings", username="carol")], "c2"), "c1", CONTACT)
    assert copy.search("bank") == []
    assert copy.search("ank") == []
    assert copy.search("Carol")[0].record_id == "r2"
    assert [r.record_id for r in copy.search("AVIN")] == ["r2"]
    copy.close()


def test_search_substrings_of_every_length_match_like_the_server(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    names = ["Alpha", "alPHAbet", "Beta 100%", "gamma_ray", "Omega"]
    copy.apply_page(page([upsert(f"r{i}", 1, n) for i, n in enumerate(names)]), None, CONTACT)
    for query in ("a", "Al", "PHA", "pha", "ega", "100%", "a_r", "%", "_", "mega ", "xyz"):
        expected = sorted((n for n in names if query.strip().lower() in n.lower()), key=str.lower)
        found = [r.name for r in copy.search(query)]
        # Word prefixes add hits (e.g. "ega" is no word start, "Al" starts "Alpha"); every
        # name substring must be among them, in name order.
        assert [n for n in found if query.strip().lower() in n.lower()] == expected, query
    assert [r.name for r in copy.search("100%")] == ["Beta 100%"]
    assert [r.name for r in copy.search("a_r")] == ["gamma_ray"]
    copy.close()


def test_search_returns_the_first_hits_by_name_up_to_the_limit(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    copy.apply_page(
        page([upsert(f"r{i:02d}", 1, f"Host {99 - i:02d}") for i in range(40)]), None, CONTACT
    )
    assert [r.name for r in copy.search("host", limit=3)] == ["Host 60", "Host 61", "Host 62"]
    assert [r.name for r in copy.search("ost 6", limit=2)] == ["Host 60", "Host 61"]
    assert [r.name for r in copy.search("", limit=1)] == ["Host 60"]
    assert len(copy.search("host")) == 40
    assert copy.search("host", limit=0) == []
    copy.close()


def test_count_matches_counts_every_hit_beyond_the_limit(tmp_path: Path) -> None:
    copy = new_copy(tmp_path)
    copy.apply_page(
        page([upsert(f"r{i:02d}", 1, f"Host {i:02d}", notes=f"rack{i % 3}") for i in range(40)]),
        None,
        CONTACT,
    )
    for query in ("host", "ost 1", "rack1", "h", "", "nothing-like-this"):
        assert copy.count_matches(query) == len(copy.search(query, limit=1000)), query
    assert copy.count_matches("host") == 40
    assert len(copy.search("host", limit=5)) == 5
    copy.close()


def test_search_cut_at_the_limit_keeps_name_then_id_order_among_equal_names(
    tmp_path: Path,
) -> None:
    copy = new_copy(tmp_path)
    names = {"r5": "web", "r3": "WEB", "r9": "web", "r1": "Web", "r0": "a web", "r7": "webz"}
    copy.apply_page(page([upsert(i, 1, n) for i, n in names.items()]), None, CONTACT)
    assert [r.record_id for r in copy.search("web", limit=3)] == ["r0", "r1", "r3"]
    assert [r.record_id for r in copy.search("we", limit=5)] == ["r0", "r1", "r3", "r5", "r9"]
    assert [r.record_id for r in copy.search("web", limit=50)] == [
        "r0",
        "r1",
        "r3",
        "r5",
        "r9",
        "r7",
    ]
    copy.close()


def test_digest_follows_every_page_and_equals_the_digest_from_scratch(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    assert copy.digest() == digest_of([("r1", 1), ("r2", 3)])
    copy.apply_page(
        page([upsert("r1", 2), delete("r2"), delete("never-held"), upsert("r3", 7)], "c2"),
        "c1",
        CONTACT,
    )
    assert copy.digest() == digest_of([("r1", 2), ("r3", 7)]) == copy.recompute_digest()
    before = copy.digest()
    assert not copy.apply_page(page([delete("r1")], "c9"), "c0", CONTACT).applied
    copy.apply_page(page([upsert("r1", 2), upsert("r3", 6)], "c3"), "c2", CONTACT)
    assert copy.digest() == before
    copy.close()


def test_page_from_a_stale_cursor_changes_nothing(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    stale = page([delete("r1"), upsert("r9", 1)], "c0")
    assert not copy.apply_page(stale, None, CONTACT).applied
    assert copy.cursor == "c1"
    assert copy.record_count() == 2
    copy.close()


def test_redelivered_page_changes_nothing(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    again = page([upsert("r1", 1, "Renamed"), upsert("r2", 3, "Renamed")], "c2")
    outcome = copy.apply_page(again, "c1", CONTACT)
    assert (outcome.added, outcome.changed, outcome.removed) == (0, 0, 0)
    assert {r.name for r in copy.list_records()} == {"Mail account", "Bank"}
    copy.close()


def test_version_1_copy_is_migrated_and_becomes_searchable(tmp_path: Path) -> None:
    paths = CopyPaths(tmp_path, "b" * 64)
    conn = sqlcipher3.connect(str(paths.db), isolation_level=None)
    conn.execute(f"PRAGMA key = {quote_password(PASSWORD)}")
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO records VALUES ('old', 2, 'Legacy router', ?, 1.0)",
        (json.dumps({"username": "admin", "password": "p"}),),
    )
    conn.close()
    with OfflineCopy.open(paths, PASSWORD) as copy:
        assert copy.meta.schema_version == SCHEMA_VERSION
        assert [r.record_id for r in copy.search("router")] == ["old"]
        assert [r.record_id for r in copy.search("admin")] == ["old"]
        assert [r.record_id for r in copy.search("GACY ROU")] == ["old"]
        assert copy.digest() == digest_of([("old", 2)])


def test_version_2_copy_gets_its_digest_and_name_index_from_its_records(tmp_path: Path) -> None:
    paths = CopyPaths(tmp_path, "c" * 64)
    conn = sqlcipher3.connect(str(paths.db), isolation_level=None)
    conn.execute(f"PRAGMA key = {quote_password(PASSWORD)}")
    assert migrate(conn, target=2) == 2
    rows = [
        (f"id{i}", i % 5 + 1, f"Server {i:03d}", json.dumps({"url": f"h{i}"}), 1.0)
        for i in range(300)
    ]
    conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
    conn.close()
    with OfflineCopy.open(paths, PASSWORD) as copy:
        assert copy.digest() == digest_of((r[0], r[1]) for r in rows)
        assert [r.record_id for r in copy.search("ver 12")] == [f"id{i}" for i in range(120, 130)]


def test_copy_from_a_newer_addon_is_refused_clearly(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.close()
    with opened_file(copy.paths, PASSWORD) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer version"):
        OfflineCopy.open(copy.paths, PASSWORD)


def test_rekey_changes_the_password(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    copy.rekey("new-pw")
    copy.close()
    with pytest.raises(WrongPassword):
        OfflineCopy.open(copy.paths, PASSWORD)
    with OfflineCopy.open(copy.paths, "new-pw") as reopened:
        assert reopened.record_count() == 2


def test_sidecar_lists_copies_without_password_and_delete_removes_all(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    write_sidecar(copy.paths, copy.sidecar_info())
    copy.close()
    (tmp_path / "junk.json").write_text("{not json")
    [info] = list_copies(tmp_path)
    assert info.username == "alice"
    assert info.record_count == 2
    assert info.size_bytes > 0
    assert read_sidecar(copy.paths) == info
    assert delete_copy(copy.paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.json"]


def test_creating_over_an_existing_copy_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path).close()
    with pytest.raises(StorageError, match="already exists"):
        new_copy(tmp_path)


def test_compacting_the_search_index_keeps_every_hit(tmp_path: Path) -> None:
    copy = _filled(tmp_path)
    before = {q: copy.search(q) for q in ("bank", "ail acc", "alice", "ba")}
    copy.compact_search_index()
    assert {q: copy.search(q) for q in before} == before
    assert copy.integrity_ok()
    copy.close()


@pytest.mark.parametrize(
    ("last_full_check_age_s", "marked", "full"),
    [(3600.0, False, False), (8 * 86400.0, False, True), (3600.0, True, True)],
)
def test_a_sync_open_checks_every_page_and_the_structure_weekly_or_after_a_damage_mark(
    tmp_path: Path, last_full_check_age_s: float, marked: bool, full: bool
) -> None:
    _filled(tmp_path).close()
    paths = CopyPaths(tmp_path, "a" * 64)
    now = 2_000_000_000.0
    with opened_file(paths, PASSWORD) as db:
        set_meta(db, last_integrity_check=now - last_full_check_age_s)
    if marked:
        mark_damaged(paths.db)
    opening = open_for_sync(paths, PASSWORD, now)
    assert opening.copy is not None
    assert opening.problem is None
    opening.copy.close()
    with opened_file(paths, PASSWORD) as db:
        stored = db.execute("SELECT value FROM meta WHERE key = 'last_integrity_check'").fetchone()
    assert (float(stored[0]) == now) is full
    assert not damage_mark(paths.db).exists()  # a full check that passed clears it


def test_a_sync_open_finds_a_flipped_byte_between_full_checks(tmp_path: Path) -> None:
    _filled(tmp_path).close()
    paths = CopyPaths(tmp_path, "a" * 64)
    now = 2_000_000_000.0
    with opened_file(paths, PASSWORD) as db:
        set_meta(db, last_integrity_check=now - 60.0)  # the full check is not due
    checkpoint(paths, PASSWORD)
    data = bytearray(paths.db.read_bytes())
    data[-100] ^= 0x01  # a byte in the last page, far from what an open reads
    paths.db.write_bytes(bytes(data))
    assert open_for_sync(paths, PASSWORD, now).problem == DAMAGED
