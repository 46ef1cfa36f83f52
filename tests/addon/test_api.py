"""The public Python API against the real server: list, create, sync, status, open offline,
re-key and delete, with only the documented names."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import offline_addon
from hookspecs import OfflineCredentials, Session
from offline_addon import (
    AddonSettings,
    CopyNotFound,
    OfflineCopies,
    WrongPassword,
)
from tests.support.accounts import log_in
from tests.support.host import DB, RECORDS, Site

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "developer.md"


def documented_names() -> set[str]:
    """The names the developer guide's "Public names" list gives, one ``- `Name``` each."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("### Public names", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `(\w+)`", section, flags=re.M))


def test_all_equals_the_documented_names() -> None:
    assert set(offline_addon.__all__) == documented_names()
    for name in offline_addon.__all__:
        assert getattr(offline_addon, name) is not None


def test_script_lists_creates_syncs_opens_rekeys_and_deletes(site: Site, tmp_path: Path) -> None:
    copies = OfflineCopies(AddonSettings(database_path=str(tmp_path / "copies")))
    try:
        session = log_in(site.url, DB, "alice", "alice-pw", client_id="script")
        assert copies.list() == []
        with pytest.raises(CopyNotFound):
            copies.sync_now(session)
        created = copies.create(session)
        assert created.record_count == RECORDS
        [info] = copies.list()
        assert (info.database, info.username, info.record_count) == (DB, "alice", RECORDS)
        site.server.admin.update_record(DB, site.ids[0], name="Renamed")
        assert copies.sync_now(session).changed == 1
        overview = copies.status(session)
        assert overview.status.state == "idle"
        assert overview.status.syncs == 2
        assert overview.validity_left_s is not None
        assert overview.validity_left_s > 6 * 86400
        credentials = OfflineCredentials(site.url, DB, "alice", "script", "alice-pw")
        reader = copies.open_offline(credentials)
        try:
            assert reader.get_record(site.ids[0]).name == "Renamed"  # type: ignore[union-attr]
            assert len(reader.search("Record 01")) == 10
            assert reader.valid_until > time.time()
        finally:
            reader.close()
        renewed = Session(
            session.server_url, DB, session.user_id, "alice", "script", session.token, "new-pw"
        )
        assert copies.rekey(renewed, "alice-pw")
        with pytest.raises(WrongPassword):
            copies.open_offline(credentials)
        assert copies.delete(session)
        assert copies.list() == []
    finally:
        assert copies.shutdown(10)


def test_the_copy_is_unlocked_once_per_login_not_once_per_sync(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offline_addon.storage.offline_copy import OfflineCopy

    opened: list[Path] = []
    closed: list[Path] = []
    real_open, real_close = OfflineCopy.open, OfflineCopy.close

    def counting_open(*args: object, **kwargs: object) -> OfflineCopy:
        copy = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(copy.paths.db)
        return copy

    def counting_close(self: OfflineCopy) -> None:
        closed.append(self.paths.db)
        real_close(self)

    monkeypatch.setattr(OfflineCopy, "open", staticmethod(counting_open))
    monkeypatch.setattr(OfflineCopy, "close", counting_close)
    copies = OfflineCopies(AddonSettings(database_path=str(tmp_path / "copies")))
    try:
        session = log_in(site.url, DB, "alice", "alice-pw", client_id="script")
        copies.create(session)
        opened.clear()
        copies.session_started(session)  # the sync after login unlocks the copy
        assert copies.wait_idle(30)
        for _ in range(3):
            site.server.admin.update_record(DB, site.ids[1], fields={"notes": str(time.time())})
            assert copies.sync_now(session).changed == 1
        assert len(opened) == 1
        closed.clear()
        copies.session_ended(session)
        assert copies.wait_idle(30)
        assert closed == opened
    finally:
        assert copies.shutdown(10)


class Told:
    """Feedback that keeps the notifications."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def progress(self, done: int, total: int, text: str) -> None:
        pass

    def notify(self, title: str, text: str, level: str = "info") -> None:
        self.notes.append((title, text))


def test_a_copy_another_program_is_writing_is_refused_and_retried(
    site: Site, tmp_path: Path
) -> None:
    import functools

    from offline_addon import CopyBusy
    from offline_addon.storage.copy_lock import CopyLock
    from offline_addon.sync.engine import sync_copy

    told = Told()
    copies = OfflineCopies(
        AddonSettings(database_path=str(tmp_path / "copies")),
        feedback=told,
        sync=functools.partial(sync_copy, lock_wait_s=0.2),
    )
    try:
        session = log_in(site.url, DB, "alice", "alice-pw", client_id="script")
        copies.create(session)
        copies.session_started(session)
        assert copies.wait_idle(30)
        with CopyLock(copies.paths_for(session).lock):  # "another program" writes the copy
            for _ in range(2):
                with pytest.raises(CopyBusy) as busy:
                    copies.sync_now(session)
            overview = copies.status(session)
        assert "another program on this computer" in str(busy.value).lower()
        failed = [text for title, text in told.notes if title.endswith("failed")]
        assert failed == []  # a sync asked for is reported by its caller, not notified too
        assert overview.next_sync_in_s is not None  # retryable: a retry is planned
        assert copies.sync_now(session).outcome in ("synced", "unchanged")
    finally:
        assert copies.shutdown(10)
