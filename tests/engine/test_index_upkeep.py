"""The copy's search indexes kept by its writers, and pages written in batches (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import sqlcipher3

from offline_addon.storage import offline_copy
from offline_addon.storage.cipher import quote_password
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.migrations import SCHEMA_VERSION, migrate
from offline_addon.storage.offline_copy import Completion, OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.storage.sidecar import read_sidecar, refresh_sidecar, write_sidecar
from tests.support.copies import CONTACT, new_copy
from tests.support.records import page, upsert

PASSWORD = "pw"


def _ids(copy: OfflineCopy, query: str) -> list[str]:
    return [r.record_id for r in copy.search(query, limit=10_000)]


def _index_rows(copy: OfflineCopy) -> int:
    return int(copy._db.execute("SELECT count(*) FROM records_fts_data").fetchone()[0])


def _stocked(folder: Path, count: int) -> OfflineCopy:
    copy = new_copy(folder, PASSWORD)
    copy.apply_page(
        page(
            [upsert(f"r{i:03d}", 1, f"Host {i:03d}", notes=f"old{i % 7}") for i in range(count)],
            "c1",
        ),
        None,
        CONTACT,
    )
    copy.compact_search_index()
    return copy


def test_a_page_of_updates_adds_one_index_segment_not_one_per_record(tmp_path: Path) -> None:
    copy = _stocked(tmp_path, 300)
    before = _index_rows(copy)
    # In an order unlike the rowids', as a feed sends them.
    changed = [
        upsert(f"r{i:03d}", 2, f"Host {i:03d}", notes="fresh")
        for i in sorted(range(0, 300, 3), key=lambda i: (i * 37) % 101)
    ]
    assert copy.apply_page(page(changed, "c2"), "c1", CONTACT).changed == 100
    # A segment per record (the row-by-row triggers) is 100 rows and more.
    assert _index_rows(copy) - before < 10
    copy.close()


def test_updated_and_renamed_records_are_found_by_their_new_words_only(tmp_path: Path) -> None:
    copy = _stocked(tmp_path, 30)
    copy.apply_page(
        page(
            [
                upsert("r001", 2, "Router north", notes="fresh"),
                upsert("r002", 2, "Host 002", notes="fresh"),
            ],
            "c2",
        ),
        "c1",
        CONTACT,
    )
    assert _ids(copy, "fresh") == ["r002", "r001"]  # by name: "Host 002" < "Router north"
    assert _ids(copy, "outer nor") == ["r001"]
    assert _ids(copy, "Host 001") == []
    assert "r001" not in _ids(copy, "old1")
    assert "r008" in _ids(copy, "old1")
    assert copy.count_matches("Host") == 29
    copy.close()


def test_an_offline_edit_re_indexes_the_record(tmp_path: Path) -> None:
    copy = _stocked(tmp_path, 10)
    LocalChanges(copy).edit_record("r003", name="Printer", fields={"notes": "toner"})
    assert _ids(copy, "toner") == ["r003"]
    assert _ids(copy, "rint") == ["r003"]
    assert _ids(copy, "Host 003") == []
    assert "r003" not in _ids(copy, "old3")
    copy.close()


def test_migration_6_drops_the_update_triggers_and_leaves_merging_to_the_copy(
    tmp_path: Path,
) -> None:
    paths = CopyPaths(tmp_path, "c" * 64)
    conn = sqlcipher3.connect(str(paths.db), isolation_level=None)
    conn.execute(f"PRAGMA key = {quote_password(PASSWORD)}")
    assert migrate(conn, target=5) == 5
    conn.execute(
        "INSERT INTO records VALUES ('old', 2, 'Legacy router', ?, 1.0)",
        (json.dumps({"notes": "closet"}),),
    )
    conn.execute("INSERT INTO records_fts(rowid, name, body) VALUES (1, 'Legacy router', 'closet')")
    conn.execute("INSERT INTO records_name_trigrams(rowid, name) VALUES (1, 'Legacy router')")
    conn.close()
    with OfflineCopy.open(paths, PASSWORD) as copy:
        db = copy._db
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        triggers = {r[0] for r in rows}
        assert triggers == {"records_fts_delete", "records_name_trigrams_delete"}
        for table in ("records_fts", "records_name_trigrams"):
            config = dict(db.execute(f"SELECT k, v FROM {table}_config").fetchall())  # noqa: S608
            assert config["automerge"] == 0
        assert copy.meta.schema_version == SCHEMA_VERSION
        copy.apply_page(
            page([upsert("old", 3, "Legacy switch", notes="rack")], "c1"), None, CONTACT
        )
        assert _ids(copy, "rack") == ["old"]
        assert _ids(copy, "closet") == []
        assert _ids(copy, "acy swi") == ["old"]
        assert _ids(copy, "router") == []


def _sizes(monkeypatch: pytest.MonkeyPatch, *, min_page: int, batch: int) -> None:
    monkeypatch.setattr(offline_copy, "BATCH_MIN_PAGE", min_page)
    monkeypatch.setattr(offline_copy, "BATCH_CHANGES", batch)


def _pages(count: int, size: int) -> list[tuple[str | None, object]]:
    out: list[tuple[str | None, object]] = []
    for n in range(count):
        last = n == count - 1
        changes = [upsert(f"p{n}-{i}", 1) for i in range(size)]
        holdings = {f"p{m}-{i}": 1 for m in range(count) for i in range(size)} if last else None
        out.append(
            (
                None if n == 0 else f"c{n}",
                page(changes, f"c{n + 1}", has_more=not last, holdings=holdings),
            )
        )
    return out


def _committed_cursor(copy: OfflineCopy) -> str | None:
    with OfflineCopy.open(copy.paths, PASSWORD) as other:  # a second connection
        return other.cursor


def test_batched_pages_commit_together_when_the_batch_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sizes(monkeypatch, min_page=2, batch=6)
    copy = new_copy(tmp_path, PASSWORD)
    pages = _pages(4, 3)
    seen = []
    with copy.batched_writes():
        for cursor, one in pages:
            outcome = copy.apply_page(one, cursor, CONTACT)  # type: ignore[arg-type]
            seen.append((outcome.committed, _committed_cursor(copy)))
    assert seen == [(False, None), (True, "c2"), (False, "c2"), (True, "c4")]
    assert copy.record_count() == 12
    copy.close()


def test_an_error_inside_a_batch_rolls_back_its_pages_and_keeps_the_committed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sizes(monkeypatch, min_page=2, batch=6)
    copy = new_copy(tmp_path, PASSWORD)
    pages = _pages(4, 3)

    def broken_after_three() -> None:
        with copy.batched_writes():
            for cursor, one in pages[:3]:
                copy.apply_page(one, cursor, CONTACT)  # type: ignore[arg-type]
            raise RuntimeError("the next page broke")

    with pytest.raises(RuntimeError):
        broken_after_three()
    assert (copy.cursor, copy.record_count()) == ("c2", 6)
    copy.close()


def test_commit_batch_keeps_what_was_applied_unless_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sizes(monkeypatch, min_page=2, batch=100)
    copy = new_copy(tmp_path, PASSWORD)
    pages = _pages(4, 3)
    with copy.batched_writes():
        copy.apply_page(pages[0][1], None, CONTACT)  # type: ignore[arg-type]
        copy.commit_batch(lambda: True)  # cancelled: rolled back
        assert copy.cursor is None
        copy.apply_page(pages[0][1], None, CONTACT)  # type: ignore[arg-type]
        copy.commit_batch(lambda: False)
    assert (_committed_cursor(copy), copy.record_count()) == ("c1", 3)
    copy.close()


def test_small_pages_commit_one_by_one_inside_a_batch(tmp_path: Path) -> None:
    copy = new_copy(tmp_path, PASSWORD)
    with copy.batched_writes():
        for cursor, one in _pages(3, 3):
            assert copy.apply_page(one, cursor, CONTACT).committed  # type: ignore[arg-type]
    copy.close()


def test_the_last_page_stores_the_completion_only_when_the_digest_matches(
    tmp_path: Path,
) -> None:
    copy = new_copy(tmp_path, PASSWORD)
    good = page([upsert("a", 1), upsert("b", 2)], "c1", holdings={"a": 1, "b": 2})
    outcome = copy.apply_page(good, None, CONTACT, completion=Completion("etag-1", 7))
    assert outcome.completed
    meta = copy.meta
    assert (meta.complete, meta.etag, meta.password_generation) == (True, "etag-1", 7)
    other = new_copy(tmp_path / "other", PASSWORD)
    wrong = page([upsert("a", 1)], "c1", holdings={"a": 2})
    outcome = other.apply_page(wrong, None, CONTACT, completion=Completion("etag-1", 7))
    assert not outcome.completed
    assert (other.meta.complete, other.meta.etag, other.cursor) == (False, None, "c1")
    copy.close()
    other.close()


def test_the_sidecar_is_rewritten_only_when_it_would_say_something_else(
    tmp_path: Path,
) -> None:
    copy = _stocked(tmp_path, 3)
    info = copy.sidecar_info()
    write_sidecar(copy.paths, info)
    assert info.last_sync is not None
    assert info.valid_until is not None
    later = info.__class__(
        **{**info.__dict__, "last_sync": info.last_sync + 30, "valid_until": info.valid_until + 30}
    )
    assert not refresh_sidecar(copy.paths, later)
    assert read_sidecar(copy.paths).last_sync == info.last_sync
    much_later = later.__class__(
        **{**later.__dict__, "last_sync": info.last_sync + 61, "valid_until": info.valid_until + 61}
    )
    assert refresh_sidecar(copy.paths, much_later)
    other_count = much_later.__class__(**{**much_later.__dict__, "record_count": 4})
    assert refresh_sidecar(copy.paths, other_count)
    assert read_sidecar(copy.paths).record_count == 4
    earlier = other_count.__class__(**{**other_count.__dict__, "last_sync": info.last_sync - 5})
    assert refresh_sidecar(copy.paths, earlier)  # a clock set back is told at once
    copy.close()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: {**d, "record_count": str(d["record_count"])},  # a value of another type
        lambda d: {**d, "record_count": float(d["record_count"])},  # 3.0: not an integer
        lambda d: {**d, "last_sync": None},
        lambda d: {**d, "last_sync": str(d["last_sync"])},
        lambda d: {k: v for k, v in d.items() if k != "database"},  # a key missing
        lambda d: {**d, "extra": 1},
        lambda d: [d],
    ],
)
def test_a_sidecar_that_says_something_else_in_any_way_is_rewritten(
    tmp_path: Path, damage: Callable[[dict[str, object]], object]
) -> None:
    copy = _stocked(tmp_path, 3)
    info = copy.sidecar_info()
    write_sidecar(copy.paths, info)
    held = json.loads(copy.paths.sidecar.read_bytes())
    copy.paths.sidecar.write_text(json.dumps(damage(held)))
    assert refresh_sidecar(copy.paths, info)
    assert read_sidecar(copy.paths) == replace(info, size_bytes=read_sidecar(copy.paths).size_bytes)
    assert not refresh_sidecar(copy.paths, info)
    copy.close()
