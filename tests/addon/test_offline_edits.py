"""The writable offline session of the Python API against the real server and real copies:
edit, create and delete offline, refusals, odd arguments, another program's lock, conflicts,
and what status and the login sync tell the user."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hookspecs import OfflineCredentials, Session, WritableOfflineSession
from offline_addon import (
    AddonSettings,
    CopyBusy,
    CopyDamaged,
    InvalidArgument,
    OfflineCopies,
    OfflineEditError,
    OfflineEditingNotAllowed,
    OfflineReader,
)
from offline_addon.api import OfflineCopySession
from offline_addon.protocol.merge import FieldConflict
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.result import SyncResult
from tests.support.accounts import log_in
from tests.support.copies import (
    allow_offline_editing,
    lock_held_in_child,
    opened_file,
    set_meta,
)
from tests.support.host import DB, RECORDS, Site
from tests.support.kill import Child
from tests.support.records import server_records

SECRET = "Qx7-offline-secret-91zz"
NEW_NAME = "Router Qx7-offline-name-44kk"


@dataclass
class Offline:
    copies: OfflineCopies
    session: Session
    credentials: OfflineCredentials
    site: Site

    @property
    def paths(self) -> Any:
        return self.copies.paths_for(self.session)

    def open(self) -> OfflineCopySession:
        return self.copies.open_offline(self.credentials)

    def allow(self) -> None:
        allow_offline_editing(self.site.server, DB, self.paths, "alice-pw")


@pytest.fixture
def offline(site: Site, tmp_path: Path) -> Iterator[Offline]:
    copies = OfflineCopies(AddonSettings(database_path=str(tmp_path / "copies")))
    session = log_in(site.url, DB, "alice", "alice-pw", client_id="edits")
    copies.create(session)
    credentials = OfflineCredentials(site.url, DB, "alice", "edits", "alice-pw")
    yield Offline(copies, session, credentials, site)
    copies.shutdown()


def test_an_offline_session_is_writable_by_contract_and_keeps_its_old_name(
    offline: Offline,
) -> None:
    opened = offline.open()
    try:
        assert OfflineReader is OfflineCopySession
        assert isinstance(opened, WritableOfflineSession)
    finally:
        opened.close()


def test_writes_are_refused_while_the_policy_does_not_allow_offline_editing(
    offline: Offline,
) -> None:
    opened = offline.open()
    try:
        assert opened.read_only_reason is not None
        assert "not allowed" in opened.read_only_reason
        record_id = offline.site.ids[1]
        with pytest.raises(OfflineEditingNotAllowed, match="administrator"):
            opened.edit(record_id, fields={"password": SECRET})
        with pytest.raises(OfflineEditingNotAllowed):
            opened.create(NEW_NAME, {"password": SECRET})
        with pytest.raises(OfflineEditingNotAllowed):
            opened.delete(record_id)
        assert opened.get_record(record_id).fields["password"] == "secret-1"  # type: ignore[union-attr]
        assert opened.pending_changes() == []
    finally:
        opened.close()


def test_an_incomplete_copy_is_read_only(offline: Offline) -> None:
    offline.allow()
    with opened_file(offline.paths, "alice-pw") as conn:
        set_meta(conn, complete=0)
    opened = offline.open()
    try:
        with pytest.raises(OfflineEditingNotAllowed, match="incomplete"):
            opened.create(NEW_NAME, {"password": SECRET})
        assert opened.pending_changes() == []
    finally:
        opened.close()


def test_edit_create_and_delete_show_at_once_and_wait_in_the_queue(
    offline: Offline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    offline.allow()
    opened = offline.open()
    try:
        assert opened.read_only_reason is None
        edited_id, deleted_id = offline.site.ids[2], offline.site.ids[3]
        current = opened.get_record(edited_id)
        assert current is not None
        shown = opened.edit(edited_id, fields={**current.fields, "password": SECRET})
        assert shown.fields["password"] == SECRET
        made = opened.create(NEW_NAME, {"password": SECRET, "url": "https://10.0.0.1"})
        opened.delete(deleted_id)
        assert [r.record_id for r in opened.search("Qx7")] == [made]
        assert opened.get_record(made).name == NEW_NAME  # type: ignore[union-attr]
        assert opened.get_record(deleted_id) is None
        assert opened.record_count == RECORDS  # one made, one deleted
        kinds = [(c.record_id, c.kind) for c in opened.pending_changes()]
        assert kinds == [(edited_id, "update"), (made, "create"), (deleted_id, "delete")]
        told = repr(opened) + repr(opened.pending_changes()) + caplog.text
        assert SECRET not in told
        assert NEW_NAME not in told
    finally:
        opened.close()
    again = offline.open()  # the changes are in the file, not in memory
    try:
        assert len(again.pending_changes()) == 3
    finally:
        again.close()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda s, ids: s.edit(None, name="x"), InvalidArgument),
        (lambda s, ids: s.edit("", name="x"), InvalidArgument),
        (lambda s, ids: s.edit("r" * 10_000, name="x"), InvalidArgument),
        (lambda s, ids: s.edit(ids[0] + "\n", name="x"), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], name=""), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], name="n" * 1001), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], name="two\nlines"), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], name="bell\x07"), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], fields={"password": None}), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], fields={"": "x"}), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], fields={"pass\x00word": "x"}), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], fields={"notes": "esc\x1b[2J"}), InvalidArgument),
        (lambda s, ids: s.edit(ids[0], fields=["password"]), InvalidArgument),
        (lambda s, ids: s.create(None, {}), InvalidArgument),
        (lambda s, ids: s.create("ok", {"notes": "v" * 100_001}), InvalidArgument),
        (lambda s, ids: s.create("ok", {f"f{i}": "v" for i in range(201)}), InvalidArgument),
        (lambda s, ids: s.delete(42), InvalidArgument),
        (lambda s, ids: s.dismiss_conflict("1"), InvalidArgument),
        (lambda s, ids: s.keep_mine(True), InvalidArgument),
        (lambda s, ids: s.keep_mine(999), InvalidArgument),
        # an id the copy does not hold (another database's, or made up)
        (lambda s, ids: s.edit("00000000-0000-4000-8000-000000000000", name="x"), OfflineEditError),
        (lambda s, ids: s.delete("00000000-0000-4000-8000-000000000000"), OfflineEditError),
    ],
)
def test_odd_arguments_are_refused_and_change_nothing(
    offline: Offline, call: Any, expected: type[Exception]
) -> None:
    offline.allow()
    opened = offline.open()
    try:
        before = opened.list_records()
        with pytest.raises(expected) as raised:
            call(opened, offline.site.ids)
        assert "nothing was changed" in str(raised.value).lower() or expected is OfflineEditError
        assert SECRET not in str(raised.value)
        assert opened.list_records() == before
        assert opened.pending_changes() == []
    finally:
        opened.close()


def test_a_write_while_another_program_syncs_the_copy_waits_or_is_refused_cleanly(
    offline: Offline,
) -> None:
    offline.allow()
    opened = OfflineCopySession(
        OfflineCopy.open(offline.paths, "alice-pw"), "alice-pw", lock_wait_s=0.3
    )
    record_id = offline.site.ids[4]
    try:
        with lock_held_in_child(offline.paths.lock, 2.0):
            with pytest.raises(CopyBusy, match="nothing was changed"):
                opened.edit(record_id, name=NEW_NAME)
            assert opened.get_record(record_id).name == "Record 004"  # type: ignore[union-attr]
        opened.edit(record_id, name=NEW_NAME)
        assert [c.record_id for c in opened.pending_changes()] == [record_id]
    finally:
        opened.close()


@pytest.mark.xfail(
    raises=CopyDamaged,
    reason=(
        "Known bug, not fixed yet: this process still holds other connections to the replaced "
        "file (the kept-open copy), so its write-ahead log, named after the path, stays; the "
        "session's new connection to the new file reads that log's pages as its own. The copy "
        "failed SQLite's integrity check after the reconnect before schema 10 as well; this "
        "test passed while no statement read a page the log overlays."
    ),
)
def test_a_write_after_another_program_rebuilt_the_file_lands_in_the_new_file(
    offline: Offline, tmp_path: Path
) -> None:
    offline.allow()
    opened = offline.open()
    try:
        # Another program replaces the copy's file (a rebuild does): the session writes to
        # the file the copy's name leads to now, not to the one it had open.
        sibling = tmp_path / "rebuilt.db"
        with opened_file(offline.paths, "alice-pw") as conn:
            conn.execute("VACUUM INTO ?", (str(sibling),))
        sibling.replace(offline.paths.db)
        made = opened.create(NEW_NAME, {"password": SECRET})
    finally:
        opened.close()
    with OfflineCopy.open(offline.paths, "alice-pw") as copy:
        assert copy.get(made) is not None
        assert [c.record_id for c in LocalChanges(copy).pending()] == [made]


def _conflict(offline: Offline, record_id: str, slot: str, mine: str | None) -> int:
    with OfflineCopy.open(offline.paths, "alice-pw") as copy:
        return LocalChanges(copy).add_conflict(
            record_id, "Record", FieldConflict(slot, mine, "theirs-value"), "conflict", "c-1"
        )


def test_keep_mine_turns_a_conflict_into_a_pending_edit_and_dismiss_drops_it(
    offline: Offline,
) -> None:
    offline.allow()
    record_id = offline.site.ids[5]
    kept = _conflict(offline, record_id, "password", SECRET)
    dropped = _conflict(offline, record_id, "username", "mine-user")
    opened = offline.open()
    try:
        assert [c.conflict_id for c in opened.conflicts()] == [kept, dropped]
        assert SECRET not in repr(opened.conflicts())
        shown = opened.keep_mine(kept)
        assert shown is not None
        assert shown.fields["password"] == SECRET
        [change] = opened.pending_changes()
        assert change.changes["password"].new == SECRET
        assert opened.dismiss_conflict(dropped)
        assert not opened.dismiss_conflict(dropped)
        assert opened.conflicts() == []
        assert opened.get_record(record_id).fields["username"] == "u5"  # type: ignore[union-attr]
    finally:
        opened.close()


def test_keep_mine_of_a_record_that_is_gone_says_what_to_do_and_keeps_the_conflict(
    offline: Offline,
) -> None:
    offline.allow()
    gone = "00000000-0000-4000-8000-00000000beef"
    number = _conflict(offline, gone, "password", SECRET)
    opened = offline.open()
    try:
        with pytest.raises(OfflineEditError, match="create the record again"):
            opened.keep_mine(number)
        assert [c.conflict_id for c in opened.conflicts()] == [number]
    finally:
        opened.close()


def test_status_counts_pending_changes_and_conflicts_online_and_offline(
    offline: Offline,
) -> None:
    offline.allow()
    _conflict(offline, offline.site.ids[6], "password", SECRET)
    opened = offline.open()
    try:
        opened.edit(offline.site.ids[7], name=NEW_NAME)
        seen = offline.copies.status(offline.credentials, edits=True)
        assert (seen.pending_changes, seen.conflicts) == (1, 1)
    finally:
        opened.close()
    # No session open: the online session's password opens the copy, when asked to.
    online = offline.copies.status(offline.session, edits=True)
    assert (online.pending_changes, online.conflicts) == (1, 1)
    cheap = offline.copies.status(offline.session)
    assert (cheap.pending_changes, cheap.conflicts) == (None, None)


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def progress(self, done: int, total: int, text: str) -> None:
        pass

    def notify(self, title: str, text: str, level: Any = "info") -> None:
        self.seen.append((title, text, level))


def test_the_sync_after_a_login_that_pushed_tells_the_user_how_many_changes_and_conflicts(
    site: Site, tmp_path: Path
) -> None:
    def pushing(*args: Any, **kwargs: Any) -> SyncResult:
        result = sync_copy(*args, **kwargs)
        return replace(result, changes_pushed=3, new_conflicts=1)

    recorder = _Recorder()
    copies = OfflineCopies(
        AddonSettings(database_path=str(tmp_path / "copies")), feedback=recorder, sync=pushing
    )
    session = log_in(site.url, DB, "alice", "alice-pw", client_id="push")
    try:
        copies.create(session)  # asked for: its caller reports the result
        assert [seen for seen in recorder.seen if seen[0] == "Offline changes"] == []
        copies.session_started(session)  # the sync after the login runs by itself
        assert copies.wait_idle(30)
    finally:
        copies.shutdown()
    assert (
        "Offline changes",
        "3 offline changes saved to the server; 1 conflict to resolve "
        "(see 'psr-client offline conflicts').",
        "warning",
    ) in recorder.seen


def test_a_write_while_a_real_sync_of_the_copy_runs_in_another_process_waits_for_it(
    offline: Offline,
) -> None:
    offline.allow()
    offline.site.server.admin.import_records(DB, server_records(300), grant={"alice": "rwe"})
    opened = OfflineCopySession(
        OfflineCopy.open(offline.paths, "alice-pw"), "alice-pw", lock_wait_s=60.0
    )
    record_id = offline.site.ids[8]
    try:
        child = Child(
            {
                "session": dataclasses.asdict(offline.session),
                "folder": str(offline.copies.folder),
                "create": False,
                "limit": 10,
            }
        )
        assert child.until("page").startswith("page"), child.err
        assert opened.search("Record 008")  # reads go on while the sync writes
        made = opened.create(NEW_NAME, {"password": SECRET})  # waits for the sync's lock
        opened.edit(record_id, fields={"password": SECRET})
        assert child.finish() == "done synced", child.err
        assert opened.get_record(made) is not None
        assert opened.record_count == RECORDS + 300 + 1
    finally:
        opened.close()
    with OfflineCopy.open(offline.paths, "alice-pw") as copy:
        assert copy.integrity_ok()
        assert copy.record_count() == RECORDS + 300 + 1
        assert [(c.record_id, c.kind) for c in LocalChanges(copy).pending()] == [
            (made, "create"),
            (record_id, "update"),
        ]
        assert copy.get(record_id).fields["password"] == SECRET  # type: ignore[union-attr]


@pytest.mark.parametrize("kill_after", [1, 7])
def test_a_kill_during_offline_writes_leaves_every_change_whole_or_absent(
    offline: Offline, kill_after: int
) -> None:
    offline.allow()
    record_id = offline.site.ids[9]
    child = Child(
        {
            "action": "session",
            "folder": str(offline.copies.folder),
            "copy_id": offline.paths.copy_id,
            "password": "alice-pw",
            "record_id": record_id,
        }
    )
    done = -1
    for _ in range(kill_after):
        line = child.line(60)
        assert line.startswith("step"), line + child.err
        done = int(line.split()[1])
    assert child.kill(), "the writes ended before they were killed"
    done = max([done, *(int(line.split()[1]) for line in child.unread)])
    opened = offline.open()  # opens, and takes the writer lock the dead child held
    try:
        password = opened.get_record(record_id).fields["password"]  # type: ignore[union-attr]
        edited = int(password.rsplit("-", 1)[1])
        made = sorted(int(r.name.split()[1]) for r in opened.search("Made"))
        assert done <= edited <= done + 1
        assert made in (list(range(edited + 1)), list(range(edited)))  # the last may be cut
        kinds = [c.kind for c in opened.pending_changes()]
        assert kinds == ["update"] + ["create"] * len(made)
        opened.edit(record_id, name="After the kill")  # the lock is free again
    finally:
        opened.close()


def test_edit_fields_keeps_what_a_sync_elsewhere_brought_since_the_record_was_read(
    offline: Offline,
) -> None:
    offline.allow()
    record_id = offline.site.ids[10]
    opened = offline.open()
    try:
        seen = opened.get_record(record_id)  # what the user looked at
        assert seen is not None
        offline.site.server.admin.update_record(
            DB, record_id, fields={**seen.fields, "username": "Qx7-changed-on-server"}
        )
        child = Child(
            {
                "session": dataclasses.asdict(offline.session),
                "folder": str(offline.copies.folder),
                "create": False,
                "limit": 10,
            }
        )
        assert child.finish() == "done synced", child.err
        shown = opened.edit_fields(record_id, {"password": SECRET, "url": None})
        assert shown.fields == {"username": "Qx7-changed-on-server", "password": SECRET}
        [change] = opened.pending_changes()
        assert set(change.changes) == {"password"}
        with pytest.raises(InvalidArgument):
            opened.edit_fields(record_id, {"password": 7})  # type: ignore[dict-item]
    finally:
        opened.close()
