"""The engine against the real reference server on a loopback port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hookspecs import Session
from offline_addon.errors import (
    ClockWentBack,
    CopyExpired,
    CopyNotFound,
    OfflineNotAllowed,
    WrongPassword,
)
from offline_addon.storage.offline_copy import Contact, OfflineCopy
from offline_addon.storage.offline_open import open_offline
from offline_addon.storage.paths import CopyPaths
from offline_addon.storage.sidecar import list_copies
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.transport import SyncClient
from reference_server.testing import RunningServer
from tests.support.accounts import log_in
from tests.support.copies import forget_etag, held_digest, opened_file, paths_of, set_meta
from tests.support.records import server_records

LIMIT = 40


def held(paths: CopyPaths, password: str) -> dict[str, tuple[int, str, dict[str, str]]]:
    with OfflineCopy.open(paths, password) as copy:
        assert copy.integrity_ok()
        return {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}


def assert_converged(server: RunningServer, paths: CopyPaths, user: str = "alice") -> None:
    assert held(paths, f"{user}-pw") == server.admin.exportable_view("demo", user)


def first_sync(paths: CopyPaths, session: Session) -> None:
    result = sync_copy(paths, session, create=True, page_limit=LIMIT)
    assert result.outcome == "synced"


@pytest.fixture
def stocked(demo: RunningServer) -> list[str]:
    """150 records alice may export, 20 she may only read, 10 of bob's."""
    a = demo.admin
    ids = a.import_records("demo", server_records(150), grant={"alice": "rwe", "bob": "r"})
    a.import_records("demo", server_records(20, "ReadOnly"), grant={"alice": "r"})
    a.import_records("demo", server_records(10, "Bobs"), grant={"bob": "rwe"})
    return ids


def test_first_sync_holds_exactly_the_exportable_records(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    seen: list[tuple[int, int]] = []
    result = sync_copy(
        paths, alice, create=True, page_limit=LIMIT, progress=lambda d, t: seen.append((d, t))
    )
    assert (result.outcome, result.added, result.record_count) == ("synced", 150, 150)
    assert result.server_time is not None
    assert "150 added" in result.message
    assert seen[-1] == (150, 150)
    assert len(seen) == 4
    assert all(t == seen[0][1] for _, t in seen)
    assert_converged(demo, paths)
    [info] = list_copies(folder)
    assert (info.database, info.username, info.record_count) == ("demo", "alice", 150)
    assert info.valid_until is not None
    assert info.valid_until > time.time() + 6 * 86400


def test_sync_without_a_copy_and_without_create_raises_copy_not_found(
    alice: Session, folder: Path
) -> None:
    with pytest.raises(CopyNotFound, match="offline create"):
        sync_copy(paths_of(folder, alice), alice, create=False)
    assert not folder.exists() or not any(folder.iterdir())


def test_update_delete_revoke_seal_and_grant_propagate(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    a = demo.admin
    a.update_record("demo", stocked[0], name="Renamed", fields={"username": "new"})
    a.delete_record("demo", stocked[1])
    a.set_rights("demo", "alice", stocked[2], export=False)
    a.seal_record("demo", stocked[3])
    extra = a.import_records("demo", server_records(3, "Granted"), grant={"bob": "rwe"})
    for record_id in extra:
        a.set_rights("demo", "alice", record_id, read=True, export=True)
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert (result.outcome, result.added, result.changed, result.removed) == ("synced", 3, 1, 3)
    assert_converged(demo, paths)
    assert held(paths, "alice-pw")[stocked[0]][1] == "Renamed"
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.search("Granted Account 0000")
        assert not copy.search(server_records(2)[1]["name"])  # type: ignore[arg-type]
    a.unseal_record("demo", stocked[3])
    a.set_rights("demo", "alice", stocked[2], export=True)
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.added == 2
    assert_converged(demo, paths)


def test_sync_with_nothing_new_is_unchanged_and_renews_the_contact(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        before = copy.meta
    result = sync_copy(paths, alice, create=False, clock=lambda: time.time() + 50)
    assert result.outcome == "unchanged"
    assert "up to date" in result.message
    with OfflineCopy.open(paths, "alice-pw") as copy:
        after = copy.meta
    assert after.cursor == before.cursor
    assert after.last_contact_local_time is not None
    assert before.last_contact_local_time is not None
    assert after.last_contact_local_time > before.last_contact_local_time + 40


def test_redelivered_page_changes_nothing_and_cursor_stays(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    with OfflineCopy.open(paths, "alice-pw") as copy:
        old_cursor = copy.cursor
    demo.admin.update_record("demo", stocked[5], name="Changed once")
    sync_copy(paths, alice, create=False, page_limit=LIMIT)
    with SyncClient(alice.server_url, alice.token, alice.client_id) as client:
        old_page = client.changes("demo", old_cursor, LIMIT)
    assert len(old_page.changes) == 1
    with OfflineCopy.open(paths, "alice-pw") as copy:
        cursor = copy.cursor
        assert not copy.apply_page(old_page, old_cursor, _contact()).applied
        outcome = copy.apply_page(old_page, cursor, _contact())
        assert (outcome.added, outcome.changed, outcome.removed) == (0, 0, 0)
    assert_converged(demo, paths)


def _contact() -> Contact:
    return Contact(time.time(), time.time(), 3600)


def test_410_leads_to_a_full_sync_into_a_fresh_file(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    demo.admin.bump_epoch()
    demo.admin.delete_record("demo", stocked[7])
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.outcome == "repaired"
    assert "rebuilt" in result.message
    assert result.record_count == 149
    assert_converged(demo, paths)
    assert not paths.partial.exists()
    assert sync_copy(paths, alice, create=False).outcome == "unchanged"


def test_digest_mismatch_is_repaired(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    with opened_file(paths, "alice-pw") as db:
        db.execute("DELETE FROM records WHERE id = ?", (stocked[9],))
        forget_etag(db)
    demo.admin.update_record("demo", stocked[10], name="Nudge")
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.outcome == "repaired"
    assert_converged(demo, paths)


def test_a_copy_holding_another_revision_is_repaired_on_the_very_next_sync(
    demo: RunningServer,
    alice: Session,
    folder: Path,
    stocked: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Same count, consistent bookkeeping, but one record at a revision the server never sent:
    # only the sum can tell, and it is compared on every sync (no "only sometimes").
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    with opened_file(paths, "alice-pw") as db:
        db.execute("UPDATE records SET rev = rev + 5 WHERE id = ?", (stocked[3],))
        digest = held_digest(db)
        set_meta(db, digest_count=digest.count, digest_sum=digest.sum)
        forget_etag(db)
    demo.admin.update_record("demo", stocked[10], name="Nudge")
    with caplog.at_level("WARNING", logger="offline_addon.sync.engine"):
        result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.outcome == "repaired"
    assert "the records differ from the server's digest" in caplog.text
    assert_converged(demo, paths)


def test_lost_bookkeeping_is_repaired_and_logged_as_such(
    demo: RunningServer,
    alice: Session,
    folder: Path,
    stocked: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    with opened_file(paths, "alice-pw") as db:
        set_meta(db, digest_sum="f" * 64)
        forget_etag(db)
    demo.admin.update_record("demo", stocked[10], name="Nudge")
    with caplog.at_level("WARNING", logger="offline_addon.sync.engine"):
        result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.outcome == "repaired"
    assert "the records match the server's digest" in caplog.text
    assert "bookkeeping differs from the records" in caplog.text
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.digest() == copy.recompute_digest()
    assert_converged(demo, paths)


def test_the_maintained_digest_stays_equal_to_the_records_through_incremental_syncs(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    a = demo.admin
    a.update_record("demo", stocked[0], name="Changed")
    a.delete_record("demo", stocked[1])
    a.set_rights("demo", "alice", stocked[2], export=False)
    a.seal_record("demo", stocked[3])
    assert sync_copy(paths, alice, create=False, page_limit=LIMIT).outcome == "synced"
    a.unseal_record("demo", stocked[3])
    a.set_rights("demo", "alice", stocked[2], export=True)
    assert sync_copy(paths, alice, create=False, page_limit=3).outcome == "synced"
    with OfflineCopy.open(paths, "alice-pw") as copy:
        assert copy.digest() == copy.recompute_digest()
        assert copy.digest().count == 149
    assert_converged(demo, paths)


def test_database_switched_off_deletes_the_copy(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    demo.admin.set_database_offline("demo", False)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "wiped"
    assert "switched off" in result.message
    assert "deleted" in result.message
    assert list(folder.iterdir()) == []


def test_user_losing_the_offline_right_deletes_the_copy(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    demo.admin.set_user_offline("alice", enabled=False)
    result = sync_copy(paths, alice, create=False)
    assert result.outcome == "wiped"
    assert "offline right" in result.message
    assert list(folder.iterdir()) == []


def test_head_refused_with_403_names_the_reason(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    demo.admin.set_database_offline("demo", False)
    with (
        SyncClient(alice.server_url, alice.token, alice.client_id) as client,
        pytest.raises(OfflineNotAllowed) as info,
    ):
        client.head("demo")
    assert info.value.reason == "offline_disabled"


def test_copy_locked_with_an_old_password_is_rebuilt(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    first_sync(paths, alice)
    demo.admin.set_password("alice", "changed-pw")
    fresh = log_in(demo.url, "demo", "alice", "changed-pw")
    result = sync_copy(paths, fresh, create=False, page_limit=LIMIT)
    assert result.outcome == "repaired"
    with pytest.raises(WrongPassword):
        OfflineCopy.open(paths, "alice-pw")
    assert len(held(paths, "changed-pw")) == 150


def test_open_offline_checks_password_validity_and_clock(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    with pytest.raises(CopyNotFound):
        open_offline(paths, "alice-pw", time.time())
    first_sync(paths, alice)
    now = time.time()
    with open_offline(paths, "alice-pw", now) as copy:
        assert copy.record_count() == 150
    with pytest.raises(WrongPassword):
        open_offline(paths, "nope", now)
    with pytest.raises(CopyExpired, match="log in online"):
        open_offline(paths, "alice-pw", now + 7 * 86400 + 120)
    with pytest.raises(ClockWentBack, match="clock"):
        open_offline(paths, "alice-pw", now - 3600)


def test_expired_copy_still_syncs_and_becomes_usable_again(
    demo: RunningServer, alice: Session, folder: Path, stocked: list[str]
) -> None:
    paths = paths_of(folder, alice)
    later = time.time() + 8 * 86400
    sync_copy(paths, alice, create=True, clock=lambda: later - 8 * 86400)
    with pytest.raises(CopyExpired):
        open_offline(paths, "alice-pw", later)
    sync_copy(paths, alice, create=False, clock=lambda: later)
    open_offline(paths, "alice-pw", later).close()
