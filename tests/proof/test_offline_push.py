"""Push before pull against the real server: offline edits, creates and deletes reach the
server as conditional writes, each exactly once, merged field by field when others changed
the record, refusals reported by record name, nothing the user typed lost (issue 15)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from offline_addon.errors import ServerUnreachable
from offline_addon.protocol.merge import PASSWORD_FIELD
from offline_addon.sync.transport import RequestsTransport
from reference_server.testing import RunningServer
from tests.support.checks import copy_meta, read_copy, sync
from tests.support.edits import (
    SECRET,
    LosingTransport,
    client_of,
    editing_world,
    offline,
    records_named,
    server_record,
)
from tests.support.worlds import World


@pytest.fixture
def world(server: RunningServer, tmp_path: Path) -> World:
    """A small database that allows offline editing, synced once (the copy exists)."""
    world = editing_world(server, tmp_path / "OfflineDB")
    sync(world, world.login(), create=True)
    return world


def _fields(world: World, record_id: str) -> dict[str, str]:
    record = server_record(world, record_id)
    assert record is not None
    return dict(record[2])


def test_an_offline_edit_reaches_the_server_and_the_result_says_so(world: World) -> None:
    rid = world.ids[0]
    with offline(world) as local:
        local.edit_record(rid, fields={**_fields(world, rid), PASSWORD_FIELD: SECRET})
    result = sync(world, world.login())
    assert _fields(world, rid)[PASSWORD_FIELD] == SECRET
    assert (result.changes_pushed, result.new_conflicts) == (1, 0)
    assert "1 offline change saved to the server." in result.message
    with offline(world) as local:
        assert local.pending() == []
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_an_offline_create_whose_answer_was_lost_is_created_once(world: World) -> None:
    new_id = str(uuid.uuid4())
    name = "Created offline Zr8"
    with offline(world) as local:
        local.create_record(name, {PASSWORD_FIELD: SECRET}, record_id=new_id)
    session = world.login()
    losing = LosingTransport(lose=1)
    with pytest.raises(ServerUnreachable):
        sync(world, session, client=client_of(session, losing))
    assert losing.lost == ["PUT 201"]  # the server did create it
    with offline(world) as local:
        [entry] = local.pending()
        assert entry.attempts == 1
    result = sync(world, session)
    assert result.changes_pushed == 1
    assert records_named(world, name) == 1
    assert server_record(world, new_id) == (1, name, {PASSWORD_FIELD: SECRET})
    assert read_copy(world.paths(), world.password).records == world.expected()


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_resent_update_or_delete_after_a_lost_answer_is_applied_once(
    world: World, method: str
) -> None:
    rid = world.ids[1]
    with offline(world) as local:
        if method == "PUT":
            local.edit_record(rid, name="Renamed offline Kp2")
        else:
            local.delete_record(rid)
    session = world.login()
    with pytest.raises(ServerUnreachable):
        sync(world, session, client=client_of(session, LosingTransport(lose=1)))
    result = sync(world, session)
    assert (result.changes_pushed, result.new_conflicts) == (1, 0)
    record = server_record(world, rid)
    if method == "PUT":
        assert record is not None
        assert record[:2] == (2, "Renamed offline Kp2")
    else:
        assert record is None
    entries = world.admin.audit_entries(user=world.username, db=world.database)
    writes = [e for e in entries if e.record_id == rid and e.kind in ("update", "delete")]
    assert len(writes) == 1, [e.kind for e in writes]
    assert writes[0].offline  # X-Offline-Change reached the audit trail


def test_fields_changed_on_both_sides_merge_and_the_same_field_is_a_conflict(
    world: World,
) -> None:
    rid = world.ids[0]
    base = _fields(world, rid)
    with offline(world) as local:
        local.edit_record(rid, fields={**base, PASSWORD_FIELD: SECRET, "url": "https://mine.lan"})
    theirs = "Server-side-pw-Hh4!"
    world.admin.update_record(
        world.database, rid, fields={**base, PASSWORD_FIELD: theirs, "notes": "theirs note"}
    )
    result = sync(world, world.login())
    now = _fields(world, rid)
    assert now[PASSWORD_FIELD] == theirs  # both changed it: the server keeps its value
    assert now["url"] == "https://mine.lan"  # only the user changed it
    assert now["notes"] == "theirs note"  # only others changed it
    assert (result.changes_pushed, result.new_conflicts) == (1, 1)
    assert result.message.endswith("1 offline change saved to the server; 1 conflict to resolve.")
    with offline(world) as local:
        [conflict] = local.conflicts()
        assert local.pending() == []
    assert (conflict.slot, conflict.mine, conflict.theirs, conflict.reason) == (
        PASSWORD_FIELD,
        SECRET,
        theirs,
        "conflict",
    )
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_a_later_edit_of_a_field_others_changed_goes_to_the_conflict_list(world: World) -> None:
    """The second entry of a record (made after the first was sent and its answer lost) gets
    the server's record as its base from the first one's push; a field others changed since
    the copy was pulled conflicts against that base, with no round trip to the server."""
    rid = world.ids[0]
    base = _fields(world, rid)
    with offline(world) as local:
        local.edit_record(rid, fields={**base, PASSWORD_FIELD: SECRET})
    theirs = "Server-side-note-Jm3"
    world.admin.update_record(world.database, rid, fields={**base, "notes": theirs})
    session = world.login()
    with pytest.raises(ServerUnreachable):
        sync(world, session, client=client_of(session, LosingTransport(lose=1)))
    mine = f"{SECRET}-note"
    with offline(world) as local:  # the copy still shows the notes it was pulled with
        local.edit_record(rid, fields={**base, PASSWORD_FIELD: SECRET, "notes": mine})
        assert len(local.pending()) == 2  # the first was sent: the edit follows it
    result = sync(world, session)
    assert (_fields(world, rid)[PASSWORD_FIELD], _fields(world, rid)["notes"]) == (SECRET, theirs)
    assert (result.changes_pushed, result.new_conflicts) == (1, 1)
    with offline(world) as local:
        assert local.pending() == []
        [conflict] = local.conflicts()
    assert (conflict.slot, conflict.mine, conflict.theirs) == ("notes", mine, theirs)
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_an_offline_delete_of_a_record_others_changed_is_not_applied(world: World) -> None:
    rid = world.ids[2]
    with offline(world) as local:
        local.delete_record(rid)
    world.admin.update_record(world.database, rid, name="Changed by others Tt5")
    result = sync(world, world.login())
    assert server_record(world, rid) is not None
    assert result.new_conflicts == 1
    assert result.changes_pushed == 0
    with offline(world) as local:
        [conflict] = local.conflicts()
    assert (conflict.slot, conflict.reason) == (None, "conflict")
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_a_change_the_server_refuses_is_reported_by_name_and_kept(world: World) -> None:
    rid = world.ids[3]
    name = _name(world, rid)
    with offline(world) as local:
        local.edit_record(rid, fields={**_fields(world, rid), PASSWORD_FIELD: SECRET})
    world.admin.set_rights(world.database, world.username, rid, write=False)
    result = sync(world, world.login())
    assert _fields(world, rid)[PASSWORD_FIELD] != SECRET
    assert f"'{name}'" in result.message
    assert SECRET not in result.message
    with offline(world) as local:
        [conflict] = local.conflicts()
        assert local.pending() == []
    assert (conflict.record_name, conflict.mine, conflict.reason) == (name, SECRET, "refused")
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_an_edit_of_a_record_deleted_on_the_server_goes_to_the_conflict_list(
    world: World,
) -> None:
    rid = world.ids[0]
    with offline(world) as local:
        local.edit_record(rid, fields={**_fields(world, rid), PASSWORD_FIELD: SECRET})
    world.admin.delete_record(world.database, rid)
    sync(world, world.login())
    with offline(world) as local:
        [conflict] = local.conflicts()
    assert (conflict.mine, conflict.reason) == (SECRET, "deleted")
    assert rid not in read_copy(world.paths(), world.password).records
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_a_revoked_offline_right_pushes_first_then_deletes_the_copy(world: World) -> None:
    saved, refused = world.ids[0], world.ids[1]
    with offline(world) as local:
        local.edit_record(saved, fields={**_fields(world, saved), PASSWORD_FIELD: SECRET})
        local.edit_record(refused, name="Never saved Wq1")
    world.admin.set_rights(world.database, world.username, refused, write=False)
    world.admin.set_user_offline(world.username, False)
    result = sync(world, world.login())
    assert result.outcome == "wiped"
    assert not world.paths().db.exists()
    assert _fields(world, saved)[PASSWORD_FIELD] == SECRET
    assert result.changes_pushed == 1
    assert "Never saved Wq1" in result.message
    assert "deleted with the copy" in result.message


def test_offline_editing_is_stored_at_each_contact(world: World) -> None:
    assert copy_meta(world.paths(), world.password).offline_editing
    session = world.login()
    assert sync(world, session).outcome == "unchanged"  # a 304 keeps it
    assert copy_meta(world.paths(), world.password).offline_editing
    world.admin.set_database_editing(world.database, False)
    sync(world, session)
    assert not copy_meta(world.paths(), world.password).offline_editing


def test_a_rebuild_keeps_the_conflict_list(world: World) -> None:
    rid = world.ids[0]
    with offline(world) as local:
        local.edit_record(rid, fields={**_fields(world, rid), PASSWORD_FIELD: SECRET})
    world.admin.update_record(world.database, rid, fields={PASSWORD_FIELD: "other-Yy6"})
    sync(world, world.login())
    world.admin.bump_epoch()  # a server restored from backup: 410, a full rebuild
    result = sync(world, world.login())
    assert result.outcome == "repaired"
    with offline(world) as local:
        [conflict] = local.conflicts()
    assert conflict.mine == SECRET


def test_a_pushed_create_and_a_later_edit_of_it_reach_the_server_in_order(world: World) -> None:
    new_id = str(uuid.uuid4())
    with offline(world) as local:
        local.create_record("Made offline Bb3", {"url": "https://one.lan"}, record_id=new_id)
    session = world.login()
    with pytest.raises(ServerUnreachable):
        sync(world, session, client=client_of(session, LosingTransport(lose=1)))
    with offline(world) as local:  # the create was sent: this edit follows it
        local.edit_record(new_id, name="Made offline Bb3 renamed", fields={"url": "https://two"})
        assert len(local.pending()) == 2
    result = sync(world, session, client=client_of(session, RequestsTransport()))
    assert result.changes_pushed == 2
    assert server_record(world, new_id) == (2, "Made offline Bb3 renamed", {"url": "https://two"})
    assert records_named(world, "Made offline Bb3") == 0
    assert read_copy(world.paths(), world.password).records == world.expected()


def _name(world: World, record_id: str) -> str:
    record = server_record(world, record_id)
    assert record is not None
    return record[1]
