"""Offline edits in the encrypted copy: each one transaction with the record as the user sees
it, a pending-changes queue and a conflict list, nothing outside the file, crash-safe."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from offline_addon.errors import OfflineEditError
from offline_addon.protocol.answers import index_text
from offline_addon.protocol.merge import (
    PASSWORD_FIELD,
    RECORD_NAME,
    FieldConflict,
    RecordContent,
    ServerRecord,
    ValueChange,
)
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.migrations import SCHEMA_VERSION, migrate, schema_version
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from tests.support.copies import CONTACT, IDENTITY, new_copy, opened_file
from tests.support.kill import Child
from tests.support.records import page, upsert

PASSWORD = "copy-pw-Lr4%edits"
OFFLINE_PW = "pw-Mv6!offline-edit"
SERVER_PW = "pw-Qk3#server-side"
NEW_ID = "5b0e4a4e-3f8e-4c47-9d55-1f8c0f1a2b3c"


class Clock:
    """A fake local clock that moves on by one second per reading."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def copy(tmp_path: Path) -> OfflineCopy:
    copy = new_copy(tmp_path, PASSWORD)
    copy.apply_page(
        page(
            [
                upsert(
                    "r1",
                    3,
                    "Core router",
                    username="admin",
                    password="pw-Base1#old",
                    url="https://router.lan",
                ),
                upsert("r2", 7, "Lab switch", username="ops", password="pw-Base2#old"),
            ]
        ),
        None,
        CONTACT,
    )
    return copy


@pytest.fixture
def local(copy: OfflineCopy) -> LocalChanges:
    return LocalChanges(copy, clock=Clock())


def _fields(copy: OfflineCopy, record_id: str) -> dict[str, str]:
    record = copy.get(record_id)
    assert record is not None
    return dict(record.fields)


def _ids(copy: OfflineCopy, query: str) -> set[str]:
    return {r.record_id for r in copy.search(query)}


# --- making changes ------------------------------------------------------------------------


def test_an_edit_shows_at_once_and_queues_its_base_and_new_values(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    fields = {**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW, "notes": "reset at site"}
    change = local.edit_record("r1", fields=fields)
    assert change is not None
    assert _fields(copy, "r1") == fields
    record = copy.get("r1")
    assert record is not None
    assert record.rev == 3  # the server's revision until the change is pushed
    assert _ids(copy, "site") == {"r1"}
    assert local.pending() == [change]
    assert change.kind == "update"
    assert change.base_rev == 3
    assert change.base_record == RecordContent(
        "Core router",
        {"username": "admin", "password": "pw-Base1#old", "url": "https://router.lan"},
    )
    assert change.changes == {
        PASSWORD_FIELD: ValueChange("pw-Base1#old", OFFLINE_PW),
        "notes": ValueChange(None, "reset at site"),
    }
    assert change.local_time == 5001.0
    uuid.UUID(change.change_id)


def test_a_new_name_is_found_by_name_and_the_old_one_no_longer(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    local.edit_record("r2", name="Basement switch")
    assert _ids(copy, "basement") == {"r2"}
    assert _ids(copy, "ement sw") == {"r2"}  # the substring (trigram) index too
    assert _ids(copy, "Lab switch") == set()
    change = local.pending()[0]
    assert change.changes == {RECORD_NAME: ValueChange("Lab switch", "Basement switch")}


def test_the_typed_password_is_not_searchable(copy: OfflineCopy, local: LocalChanges) -> None:
    local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: "zebracorn-77"})
    assert _ids(copy, "zebracorn") == set()
    assert "zebracorn" not in index_text(_fields(copy, "r1"))


def test_edits_join_an_unsent_change_under_a_fresh_id_and_keep_the_first_base(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    first = local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: "pw-one"})
    second = local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW})
    assert first is not None
    assert second is not None
    assert second.seq == first.seq
    assert second.change_id != first.change_id
    assert local.pending() == [second]
    assert second.changes == {PASSWORD_FIELD: ValueChange("pw-Base1#old", OFFLINE_PW)}


def test_an_edit_back_to_the_servers_values_leaves_nothing_pending(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    before = _fields(copy, "r1")
    local.edit_record("r1", fields={**before, PASSWORD_FIELD: OFFLINE_PW})
    assert local.edit_record("r1", fields=before) is None
    assert local.pending() == []
    assert local.edit_record("r1", fields=before) is None  # no change at all


def test_an_edit_after_a_sent_change_follows_it_and_gets_its_base_when_it_is_pushed(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    sent = local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW})
    assert sent is not None
    local.mark_attempted(sent.change_id)
    follow = local.edit_record("r1", name="Core router (old)")
    assert follow is not None
    assert (follow.base_rev, follow.base_record) == (None, None)
    assert [c.change_id for c in local.pending()] == [sent.change_id, follow.change_id]
    # Meanwhile someone else added a field: the server's record after the push has it.
    server = RecordContent("Core router", {**_fields(copy, "r1"), "vlan": "12"})
    server = RecordContent("Core router", {**server.fields, "name-tag": "x"})
    local.mark_pushed(sent.change_id, ServerRecord(5, server))
    [rebased] = local.pending()
    assert rebased.change_id == follow.change_id
    assert (rebased.base_rev, rebased.base_record) == (5, server)
    record = copy.get("r1")
    assert record is not None
    assert (record.rev, record.name, dict(record.fields)) == (
        5,
        "Core router (old)",
        dict(server.fields),
    )
    assert copy.digest() == copy.recompute_digest()


def test_a_create_is_shown_at_rev_0_under_a_client_made_id_and_left_out_of_the_digest(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    before = copy.digest()
    change = local.create_record("Door controller", {PASSWORD_FIELD: OFFLINE_PW, "ip": "10.0.0.7"})
    uuid.UUID(change.change_id)
    assert str(uuid.UUID(change.record_id)) == change.record_id
    record = copy.get(change.record_id)
    assert record is not None
    assert (record.rev, record.name) == (0, "Door controller")
    assert _ids(copy, "door") == {change.record_id}
    assert change.kind == "create"
    assert change.base_rev is None
    assert change.changes[PASSWORD_FIELD] == ValueChange(None, OFFLINE_PW)
    assert copy.digest() == before == copy.recompute_digest()


def test_a_create_takes_only_a_new_uuid_as_its_id(copy: OfflineCopy, local: LocalChanges) -> None:
    local.create_record("A", {}, record_id=NEW_ID)
    with pytest.raises(OfflineEditError, match="exists"):
        local.create_record("B", {}, record_id=NEW_ID)
    for bad in ("r9", NEW_ID.upper(), "../x"):
        with pytest.raises(OfflineEditError, match="UUID"):
            local.create_record("B", {}, record_id=bad)
    assert len(local.pending()) == 1


def test_deleting_a_record_created_offline_and_never_sent_leaves_no_trace(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    change = local.create_record("Temp", {PASSWORD_FIELD: OFFLINE_PW})
    local.edit_record(change.record_id, name="Temp 2")
    assert local.delete_record(change.record_id) is None
    assert copy.get(change.record_id) is None
    assert local.pending() == []
    assert _ids(copy, "temp") == set()


def test_a_delete_removes_the_record_and_queues_its_base(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    change = local.delete_record("r2")
    assert change is not None
    assert copy.get("r2") is None
    assert _ids(copy, "switch") == set()
    assert (change.kind, change.base_rev, change.changes) == ("delete", 7, {})
    assert change.base_record == RecordContent(
        "Lab switch", {"username": "ops", "password": "pw-Base2#old"}
    )
    assert copy.digest() == copy.recompute_digest()
    assert copy.digest().count == 1


def test_a_delete_replaces_an_unsent_edit_and_keeps_its_base(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    local.edit_record("r2", name="Renamed")
    change = local.delete_record("r2")
    assert change is not None
    assert local.pending() == [change]
    assert change.base_record is not None
    assert change.base_record.name == "Lab switch"


def test_edits_of_unknown_records_and_unacceptable_values_change_nothing(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    with pytest.raises(OfflineEditError, match="no such record"):
        local.edit_record("r404", name="x")
    with pytest.raises(OfflineEditError, match="no such record"):
        local.delete_record("r404")
    for bad in [
        {"name": ""},
        {"name": "n" * 1001},
        {"fields": {"": OFFLINE_PW}},
        {"fields": {"k": "v" * 100_001}},
        {"fields": {str(i): "" for i in range(201)}},
        {"fields": {"k": "\ud800" + OFFLINE_PW}},
    ]:
        with pytest.raises(OfflineEditError, match="Nothing was changed") as caught:
            local.edit_record("r1", **bad)  # type: ignore[arg-type]
        assert OFFLINE_PW not in str(caught.value)
    assert local.pending() == []
    assert _fields(copy, "r1")[PASSWORD_FIELD] == "pw-Base1#old"


# --- settling ------------------------------------------------------------------------------


def test_a_pushed_update_shows_the_servers_record_and_keeps_its_conflicts(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    change = local.edit_record(
        "r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW, "username": "root"}
    )
    assert change is not None
    server = RecordContent("Core router", {"username": "root", "password": SERVER_PW})
    conflict = FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW)
    local.mark_pushed(change.change_id, ServerRecord(4, server), [conflict])
    assert local.pending() == []
    record = copy.get("r1")
    assert record is not None
    assert (record.rev, dict(record.fields)) == (4, dict(server.fields))
    assert copy.digest() == copy.recompute_digest()
    [entry] = local.conflicts()
    assert (
        entry.record_id,
        entry.record_name,
        entry.slot,
        entry.mine,
        entry.theirs,
        entry.reason,
        entry.change_id,
    ) == ("r1", "Core router", PASSWORD_FIELD, OFFLINE_PW, SERVER_PW, "conflict", change.change_id)
    local.mark_pushed(change.change_id, ServerRecord(4, server), [conflict])  # a repeat
    assert len(local.conflicts()) == 1


def test_a_pushed_create_takes_the_servers_revision_into_the_digest(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    change = local.create_record("Door", {PASSWORD_FIELD: OFFLINE_PW})
    local.mark_pushed(
        change.change_id, ServerRecord(1, RecordContent("Door", {PASSWORD_FIELD: OFFLINE_PW}))
    )
    record = copy.get(change.record_id)
    assert record is not None
    assert record.rev == 1
    assert copy.digest() == copy.recompute_digest()
    assert copy.digest().count == 3
    assert _ids(copy, "door") == {change.record_id}


def test_a_pushed_delete_only_leaves_the_queue(copy: OfflineCopy, local: LocalChanges) -> None:
    change = local.delete_record("r2")
    assert change is not None
    with pytest.raises(ValueError, match="needs the server's record"):
        local.mark_pushed(local.create_record("X", {}).change_id, None)
    local.mark_pushed(change.change_id, None)
    assert [c.kind for c in local.pending()] == ["create"]
    assert copy.get("r2") is None
    assert copy.digest() == copy.recompute_digest()


def test_a_refused_update_keeps_the_values_readable_and_shows_the_servers_record_again(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    sent = local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW})
    assert sent is not None
    local.mark_attempted(sent.change_id)
    local.edit_record("r1", name="Core router B")
    local.mark_refused(sent.change_id, "refused", [FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None)])
    assert local.pending() == []  # the follow-up edit was made on top: refused with it
    assert {(c.slot, c.mine, c.reason) for c in local.conflicts()} == {
        (PASSWORD_FIELD, OFFLINE_PW, "refused"),
        (RECORD_NAME, "Core router B", "refused"),
    }
    assert {c.record_name for c in local.conflicts()} == {"Core router B"}
    record = copy.get("r1")
    assert record is not None
    assert (record.rev, record.name, record.fields[PASSWORD_FIELD]) == (
        3,
        "Core router",
        "pw-Base1#old",
    )


def test_a_refused_delete_brings_the_record_back_and_a_refused_create_removes_it(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    delete = local.delete_record("r2")
    create = local.create_record("Door", {PASSWORD_FIELD: OFFLINE_PW})
    assert delete is not None
    local.mark_refused(delete.change_id, "refused", [FieldConflict(None, None, None)])
    assert _ids(copy, "switch") == {"r2"}
    local.mark_refused(
        create.change_id, "refused", [FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None)]
    )
    assert copy.get(create.record_id) is None
    assert local.pending() == []
    assert copy.digest() == copy.recompute_digest()
    assert [(c.record_name, c.slot) for c in local.conflicts()] == [
        ("Lab switch", None),
        ("Door", PASSWORD_FIELD),
    ]


def test_a_refusal_can_show_the_servers_newer_record(
    copy: OfflineCopy, local: LocalChanges
) -> None:
    change = local.delete_record("r2")
    assert change is not None
    newer = RecordContent("Lab switch", {"password": SERVER_PW})
    local.mark_refused(
        change.change_id,
        "conflict",
        [FieldConflict(None, None, "Lab switch")],
        server_record=ServerRecord(9, newer),
    )
    record = copy.get("r2")
    assert record is not None
    assert (record.rev, dict(record.fields)) == (9, {"password": SERVER_PW})
    assert copy.digest() == copy.recompute_digest()


def test_conflicts_are_listed_until_dismissed(local: LocalChanges) -> None:
    first = local.add_conflict(
        "r1", "Core router", FieldConflict("pin", "1", "2"), "conflict", "c-1"
    )
    second = local.add_conflict(
        "r9", "Gone", FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None), "deleted", "c-2"
    )
    assert [c.conflict_id for c in local.conflicts()] == [first, second]
    assert local.dismiss_conflict(first) is True
    assert local.dismiss_conflict(first) is False
    assert [c.record_name for c in local.conflicts()] == ["Gone"]


def test_no_value_or_name_appears_in_a_repr(copy: OfflineCopy, local: LocalChanges) -> None:
    change = local.edit_record("r1", fields={PASSWORD_FIELD: OFFLINE_PW})
    local.add_conflict(
        "r1", "Core router", FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW), "conflict", "c-1"
    )
    text = repr(change) + repr(local.conflicts()) + repr(local) + repr(local.pending())
    for secret in (OFFLINE_PW, SERVER_PW, "Core router", "pw-Base1#old"):
        assert secret not in text


# --- the file ------------------------------------------------------------------------------


def test_nothing_of_a_change_is_written_outside_the_encrypted_file(
    tmp_path: Path, copy: OfflineCopy, local: LocalChanges
) -> None:
    local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: OFFLINE_PW})
    local.create_record("Door controller", {PASSWORD_FIELD: OFFLINE_PW})
    local.add_conflict(
        "r1", "Core router", FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW), "conflict", "c-1"
    )
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in (OFFLINE_PW, SERVER_PW, "Door controller"):
            assert secret.encode() not in data, path
            assert secret.encode("utf-16-le") not in data, path


def test_changes_survive_a_reopen_and_a_version_4_copy_gains_the_tables(
    tmp_path: Path, copy: OfflineCopy, local: LocalChanges
) -> None:
    local.edit_record("r1", name="Renamed")
    copy.close()
    paths = CopyPaths(tmp_path, "a" * 64)
    with OfflineCopy.open(paths, PASSWORD) as reopened:
        assert [c.new_name for c in LocalChanges(reopened).pending()] == ["Renamed"]
    old_paths = CopyPaths(tmp_path / "old", "b" * 64)
    OfflineCopy.create(old_paths, PASSWORD, IDENTITY).close()
    with opened_file(old_paths, PASSWORD) as db:
        db.execute("DROP TABLE pending_changes")
        db.execute("DROP TABLE conflicts")
        db.execute("DROP TABLE access_log")  # (made by later migrations)
        db.execute("DROP TABLE records_fts_todo")
        db.execute("PRAGMA user_version = 4")
    with OfflineCopy.open(old_paths, PASSWORD) as upgraded:
        assert LocalChanges(upgraded).pending() == []
    with opened_file(old_paths, PASSWORD) as db:
        assert schema_version(db) == SCHEMA_VERSION
        assert migrate(db) == SCHEMA_VERSION


# --- crash safety --------------------------------------------------------------------------

KILL_POINTS = [2, 9, 23]


@pytest.mark.parametrize("kill_after", KILL_POINTS)
def test_a_kill_at_any_moment_of_local_edits_leaves_every_change_whole_or_absent(
    tmp_path: Path, copy: OfflineCopy, kill_after: int
) -> None:
    """A child makes edits, creates, deletes and settles pushes, printing each number once
    committed; SIGKILL after ``kill_after`` of them, then the copy must open, be intact, and
    hold every printed step and at most the one in flight."""
    copy.close()
    child = Child({"action": "edit", "folder": str(tmp_path), "password": PASSWORD})
    done = -1
    for _ in range(kill_after):
        line = child.line(60)
        assert line.startswith("step"), line
        done = int(line.split()[1])
    assert child.kill(), "the edits ended before they were killed"
    # Every step the child printed before it died was committed before it was printed.
    done = max([done, *(int(line.split()[1]) for line in child.unread)])
    assert child.returncode == -signal.SIGKILL
    with OfflineCopy.open(CopyPaths(tmp_path, "a" * 64), PASSWORD) as reopened:
        assert reopened.integrity_ok()
        assert reopened.digest() == reopened.recompute_digest()
        steps = _check_steps(reopened, LocalChanges(reopened))
    assert done <= steps <= done + 1


def _check_steps(copy: OfflineCopy, local: LocalChanges) -> int:
    """The last step of the edit child whose edit the copy holds; every step before it must be
    there whole, and the one after it must not have begun."""
    pending = {c.record_id: c for c in local.pending()}
    password = _fields(copy, "r1")[PASSWORD_FIELD]
    last = int(password.rsplit("-", 1)[1])
    assert pending["r1"].changes == {PASSWORD_FIELD: ValueChange("pw-Base1#old", password)}
    for step in range(last + 1):
        record_id = str(uuid.UUID(int=step + 1))
        record = copy.get(record_id)
        state = (
            "absent"
            if record is None
            else "pending"
            if record.rev == 0 and pending[record_id].kind == "create"
            else "pushed"
            if record.rev == 1 and record_id not in pending
            else "broken"
        )
        done = {0: {"pending"}, 1: {"pushed"}, 2: {"absent"}}[step % 3]
        # The last step may have been killed after its edit, in any of its transactions.
        assert state in (done if step < last else done | {"absent", "pending"}), (step, state)
        if state == "absent":
            assert record_id not in pending
    assert copy.get(str(uuid.UUID(int=last + 2))) is None
    assert set(pending) <= {"r1", *(str(uuid.UUID(int=i + 1)) for i in range(last + 1))}
    return last
