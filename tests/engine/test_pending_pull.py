"""A pull never overwrites a pending offline change, and a rebuild carries the queue and the
conflict list into the new file (issue 15): storage-level, on real SQLCipher copies."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from offline_addon.protocol.merge import PASSWORD_FIELD, RecordContent, merge_change
from offline_addon.storage.local_changes import (
    LocalChanges,
    carry_local_changes,
    read_local_changes,
)
from offline_addon.storage.offline_copy import Completion, OfflineCopy
from offline_addon.storage.paths import CopyPaths
from tests.support.copies import CONTACT, IDENTITY, new_copy
from tests.support.edits import SECRET
from tests.support.records import page, upsert

PASSWORD = "copy-pw-Zt8%pull"


@pytest.fixture
def copy(tmp_path: Path) -> OfflineCopy:
    copy = new_copy(tmp_path, PASSWORD)
    copy.apply_page(
        page(
            [
                upsert("r1", 3, "Core router", username="admin", password="pw-Base1#old"),
                upsert("r2", 7, "Lab switch", username="ops", password="pw-Base2#old"),
            ],
            "c1",
        ),
        None,
        CONTACT,
    )
    return copy


def _fields(copy: OfflineCopy, record_id: str) -> dict[str, str]:
    record = copy.get(record_id)
    assert record is not None
    return dict(record.fields)


def test_a_pulled_upsert_keeps_the_users_value_and_moves_the_base_on(copy: OfflineCopy) -> None:
    local = LocalChanges(copy)
    mine = {**_fields(copy, "r1"), PASSWORD_FIELD: SECRET, "notes": "reset at site"}
    local.edit_record("r1", fields=mine)
    pulled = upsert("r1", 4, "Core router", username="root", password="pw-Theirs#new")
    holdings = {"r1": 4, "r2": 7}
    outcome = copy.apply_page(
        page([pulled], "c2", holdings=holdings),
        "c1",
        CONTACT,
        completion=Completion('"e"'),
    )
    assert outcome.completed  # the digest counts the server's rev 4
    record = copy.get("r1")
    assert record is not None
    assert record.rev == 4
    assert record.fields == {"username": "root", PASSWORD_FIELD: SECRET, "notes": "reset at site"}
    [entry] = local.pending()
    assert entry.base_rev == 4  # the push merges against the pulled version
    merge = merge_change(entry, None)
    assert merge.action == "write"
    assert merge.if_match == 4
    assert merge.send is not None
    assert merge.send.fields == {
        "username": "root",
        PASSWORD_FIELD: "pw-Theirs#new",
        "notes": "reset at site",
    }
    assert [c.slot for c in merge.conflicts] == [PASSWORD_FIELD]  # both changed it


@pytest.mark.parametrize(
    ("feed_reason", "reason"), [("deleted", "deleted"), ("revoked", "refused")]
)
def test_a_pulled_delete_moves_the_users_values_to_the_conflict_list(
    copy: OfflineCopy, feed_reason: str, reason: str
) -> None:
    local = LocalChanges(copy)
    local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: SECRET})
    change = {"op": "delete", "id": "r1", "reason": feed_reason}
    outcome = copy.apply_page(
        page([change], "c2", holdings={"r2": 7}), "c1", CONTACT, completion=Completion('"e"')
    )
    assert outcome.completed
    assert copy.get("r1") is None
    assert local.pending() == []
    [conflict] = local.conflicts()
    assert (conflict.record_name, conflict.mine, conflict.reason) == (
        "Core router",
        SECRET,
        reason,
    )


def test_records_made_offline_do_not_break_the_digest_check(copy: OfflineCopy) -> None:
    local = LocalChanges(copy)
    local.create_record("Made offline", {PASSWORD_FIELD: SECRET}, record_id=str(uuid.uuid4()))
    pulled = upsert("r2", 8, "Lab switch", username="ops")
    outcome = copy.apply_page(
        page([pulled], "c2", holdings={"r1": 3, "r2": 8}),
        "c1",
        CONTACT,
        completion=Completion('"e"'),
    )
    assert outcome.completed
    assert copy.record_count() == 3
    assert copy.server_record_count() == 2


def test_a_pending_delete_keeps_the_record_out_of_the_copy(copy: OfflineCopy) -> None:
    local = LocalChanges(copy)
    local.delete_record("r1")
    copy.apply_page(page([upsert("r1", 4, "Core router")], "c2", holdings={}), "c1", CONTACT)
    assert copy.get("r1") is None
    assert [e.kind for e in local.pending()] == ["delete"]


def test_a_rebuild_carries_the_queue_and_the_conflicts(copy: OfflineCopy, tmp_path: Path) -> None:
    local = LocalChanges(copy)
    local.edit_record("r1", fields={**_fields(copy, "r1"), PASSWORD_FIELD: SECRET})
    made = local.create_record(
        "Made offline", {"url": "https://x.lan"}, record_id=str(uuid.uuid4())
    )
    local.add_conflict(
        "r2", "Lab switch", merge_change(local.pending()[0], "refused").conflicts[0], "refused", "x"
    )
    fresh = OfflineCopy.create(CopyPaths(tmp_path / "fresh", "b" * 64), PASSWORD, IDENTITY)
    fresh.apply_page(
        page(
            [
                upsert("r1", 5, "Core router", username="root", password="pw-Theirs#new"),
                upsert("r2", 7, "Lab switch", username="ops", password="pw-Base2#old"),
            ],
            "d1",
            holdings={"r1": 5, "r2": 7},
        ),
        None,
        CONTACT,
    )
    carried = read_local_changes(copy)
    carry_local_changes(fresh, carried)
    again = LocalChanges(fresh)
    assert [e.change_id for e in again.pending()] == [e.change_id for e in local.pending()]
    assert [c.mine for c in again.conflicts()] == [SECRET]
    assert _fields(fresh, "r1") == {"username": "root", PASSWORD_FIELD: SECRET}
    assert again.pending()[0].base_rev == 5
    made_row = fresh.get(made.record_id)
    assert made_row is not None
    assert (made_row.rev, made_row.name) == (0, "Made offline")
    assert fresh.digest() == fresh.recompute_digest()
    assert made_row.fields == RecordContent("Made offline", {"url": "https://x.lan"}).fields
    fresh.close()


def test_an_entry_an_edit_joined_after_it_was_read_is_not_sent_as_read(
    copy: OfflineCopy,
) -> None:
    local = LocalChanges(copy)
    read = local.edit_record("r1", name="First name")
    assert read is not None
    local.edit_record("r1", name="Second name")  # joins the unsent entry: a new change id
    assert not local.mark_attempted(read.change_id)
    [now] = local.pending()
    assert local.mark_attempted(now.change_id)
