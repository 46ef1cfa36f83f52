"""Damaged copies against the public API and the hooks: a flipped byte in each kind of page, a
truncated file, a missing or foreign sidecar. Offline, the damage is told in one sentence (never
as a wrong password, never as a raw SQLCipher error); the next online sync repairs the copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hookspecs import OfflineCredentials, Session
from offline_addon import AddonSettings, CopyDamaged, OfflineCopies, WrongPassword, errors
from offline_addon.plugin import OfflineAddon
from offline_addon.storage.cipher import PAGE_SIZE
from tests.support.accounts import CLIENT_ID
from tests.support.checks import read_copy
from tests.support.copies import opened_file
from tests.support.worlds import World

DAMAGED = "The offline copy is damaged; it will be rebuilt at the next online login."


@pytest.fixture
def copies(world: World) -> Any:
    api = OfflineCopies(AddonSettings(database_path=str(world.folder)))
    yield api
    assert api.shutdown(10)


def _credentials(world: World, password: str | None = None) -> OfflineCredentials:
    return OfflineCredentials(
        world.url, world.database, world.username, CLIENT_ID, password or world.password
    )


def _made(world: World, copies: OfflineCopies) -> Session:
    session = world.login()
    assert copies.create(session).outcome == "synced"
    copies.session_ended(session)
    assert copies.wait_idle(10)
    return session


def _root_page(world: World, table: str) -> int:
    with opened_file(world.paths(), world.password) as db:
        row = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return int(row[0])


def _flip(path: Path, page: int, offset: int = 1500) -> None:
    """Flip one bit in ``page`` (1-based) at ``offset`` within it."""
    with path.open("r+b") as f:
        f.seek((page - 1) * PAGE_SIZE + offset)
        byte = f.read(1)
        f.seek((page - 1) * PAGE_SIZE + offset)
        f.write(bytes([byte[0] ^ 0x10]))


def _pages(path: Path) -> int:
    return path.stat().st_size // PAGE_SIZE


def _told(action: Any) -> str | None:
    """What the user is told when ``action`` meets damage (None: it worked); any error that
    is not the add-on's fails the test."""
    try:
        action()
    except errors.StorageError as exc:
        return str(exc)
    return None


def _assert_repaired_by_the_next_sync(
    world: World, copies: OfflineCopies, session: Session
) -> None:
    result = copies.sync_now(session)
    assert result.outcome == "repaired", result.message
    assert "damaged" in result.message
    state = read_copy(world.paths(), world.password)  # integrity_check ok inside
    assert state.records == world.expected()
    reader = copies.open_offline(_credentials(world))
    try:
        assert len(reader.list_records()) == len(world.expected())
    finally:
        reader.close()


def test_a_damaged_first_page_is_told_as_damage_not_as_a_wrong_password(
    world: World, copies: OfflineCopies
) -> None:
    session = _made(world, copies)
    _flip(world.paths().db, 1, offset=2000)
    with pytest.raises(CopyDamaged) as info:
        copies.open_offline(_credentials(world))
    assert str(info.value) == DAMAGED
    addon = OfflineAddon()
    addon.copies = copies
    answer = addon.offline_login(_credentials(world))
    assert answer is not None
    assert answer.message == DAMAGED
    with pytest.raises(WrongPassword):  # a wrong password still reads as one
        copies.open_offline(_credentials(world, "pw-Tz9!not-the-password"))
    _assert_repaired_by_the_next_sync(world, copies, session)


@pytest.mark.parametrize("where", ["records-root", "index-root", "middle", "last"])
def test_a_flipped_byte_anywhere_is_never_a_raw_error_and_is_repaired_by_the_next_sync(
    world: World, copies: OfflineCopies, where: str
) -> None:
    session = _made(world, copies)
    db = world.paths().db
    page = {
        "records-root": lambda: _root_page(world, "records"),
        "index-root": lambda: _root_page(world, "records_fts_data"),
        "middle": lambda: _pages(db) // 2,
        "last": lambda: _pages(db),
    }[where]()
    _flip(db, page)
    told = [_told(lambda: copies.open_offline(_credentials(world)).close())]
    if told == [None]:  # it opened: the damage shows, if at all, when a read meets it
        reader = copies.open_offline(_credentials(world))
        try:
            told += [
                _told(read)
                for read in (
                    reader.list_records,
                    lambda: reader.search("Proof Account"),
                    lambda: reader.search("note"),
                    lambda: reader.get_record("x"),
                )
            ]
        finally:
            reader.close()
    assert {text for text in told if text is not None} <= {DAMAGED}
    # Nothing new on the server: the sync still finds the damage and rebuilds.
    _assert_repaired_by_the_next_sync(world, copies, session)


@pytest.mark.parametrize("cut", [PAGE_SIZE, 1000], ids=["whole-page", "mid-page"])
def test_a_truncated_copy_is_damaged_and_repaired(
    world: World, copies: OfflineCopies, cut: int
) -> None:
    session = _made(world, copies)
    db = world.paths().db
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size - cut)
    with pytest.raises(CopyDamaged):
        copies.open_offline(_credentials(world))
    _assert_repaired_by_the_next_sync(world, copies, session)


def test_an_empty_copy_file_is_damaged_not_a_fresh_copy(
    world: World, copies: OfflineCopies
) -> None:
    session = _made(world, copies)
    world.paths().db.write_bytes(b"")
    with pytest.raises(CopyDamaged):
        copies.open_offline(_credentials(world))
    _assert_repaired_by_the_next_sync(world, copies, session)


def test_damage_met_while_a_page_is_written_is_rebuilt_by_that_sync(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's write meets a damaged page (SQLITE_CORRUPT): the same sync rebuilds."""
    import sqlcipher3

    from offline_addon.storage.offline_copy import OfflineCopy, open_for_sync
    from offline_addon.sync.engine import sync_copy

    session = world.login()
    sync_copy(world.paths(), session, create=True)
    world.admin.update_record(world.database, world.ids[0], fields={"notes": "changed"})
    opening = open_for_sync(world.paths(), world.password)
    assert opening.copy is not None
    real_apply = OfflineCopy.apply_page

    def damaged_once(copy: OfflineCopy, *args: Any, **kwargs: Any) -> Any:
        if copy is opening.copy:
            with copy._transaction() as db:  # the error a damaged b-tree page gives
                db.execute("SELECT 1").fetchone()
                raise_corrupt = sqlcipher3.DatabaseError("database disk image is malformed")
            from offline_addon.storage import cipher

            raise cipher.storage_error("write", raise_corrupt)
        return real_apply(copy, *args, **kwargs)

    monkeypatch.setattr(OfflineCopy, "apply_page", damaged_once)
    try:
        result = sync_copy(world.paths(), session, create=False, opening=opening)
    finally:
        opening.copy.close()
    assert result.outcome == "repaired"
    assert "damaged" in result.message
    assert read_copy(world.paths(), world.password).records == world.expected()


@pytest.mark.parametrize("sidecar", ["missing", "foreign", "garbage"])
def test_a_copy_without_its_own_sidecar_is_still_listed_and_the_sync_rewrites_it(
    world: World, copies: OfflineCopies, sidecar: str, tmp_path: Path
) -> None:
    session = _made(world, copies)
    paths = world.paths()
    if sidecar == "missing":
        paths.sidecar.unlink()
    elif sidecar == "foreign":
        other = paths.sidecar.read_text().replace(paths.copy_id, "f" * 64)
        paths.sidecar.write_text(other)
    else:
        paths.sidecar.write_bytes(b"\x00{not json")
    [listed] = copies.list()
    assert listed.copy_id == paths.copy_id
    assert listed.size_bytes > 0
    reader = copies.open_offline(_credentials(world))  # the copy itself is intact
    reader.close()
    assert copies.sync_now(session).outcome in ("synced", "unchanged")
    [listed] = copies.list()
    assert (listed.database, listed.username) == (world.database, world.username)
    assert listed.record_count == len(world.expected())


def test_a_copy_without_a_sidecar_moves_with_the_folder(
    world: World, copies: OfflineCopies, tmp_path: Path
) -> None:
    _made(world, copies)
    world.paths().sidecar.unlink()
    target = tmp_path / "moved"
    copies.apply_settings({"database_path": str(target)})
    assert (target / world.paths().db.name).exists()
    shutil.rmtree(target)
