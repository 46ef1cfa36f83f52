"""The three-way merge of an offline change with the server's record, as plain data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline_addon.protocol.merge import (
    PASSWORD_FIELD,
    RECORD_NAME,
    ChangeKind,
    FieldConflict,
    MergeResult,
    PendingChange,
    RecordContent,
    ServerRecord,
    ValueChange,
    changes_between,
    content_after,
    merge_change,
)

OFFLINE_PW = "pw-Mv6!offline-edit"
SERVER_PW = "pw-Qk3#server-side"
BASE = RecordContent("Router", {"username": "admin", "password": "pw-Base1#old", "url": "r.lan"})


def _change(
    after: RecordContent | None,
    *,
    kind: ChangeKind = "update",
    base: RecordContent | None = BASE,
    base_rev: int | None = 4,
) -> PendingChange:
    changes = {} if after is None else changes_between(base, after)
    return PendingChange(1, "change-1", "rec-1", kind, base_rev, base, changes, 1000.0)


def _with(content: RecordContent, **fields: str | None) -> RecordContent:
    new = dict(content.fields)
    for key, value in fields.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return RecordContent(content.name, new)


# --- updates -------------------------------------------------------------------------------


def test_an_update_against_an_unmoved_record_sends_the_users_record_on_its_base() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    result = merge_change(_change(mine), None)
    assert result == MergeResult("write", mine, 4, applied=frozenset({PASSWORD_FIELD}))


def test_fields_only_the_user_changed_are_applied_onto_the_servers_current_record() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    theirs = ServerRecord(6, _with(BASE, url="router.lan", notes="moved"))
    result = merge_change(_change(mine), theirs)
    assert result.action == "write"
    assert result.if_match == 6
    assert result.send == _with(theirs.content, password=OFFLINE_PW)
    assert result.conflicts == ()


def test_a_field_both_changed_differently_keeps_the_servers_value_and_reports_the_users() -> None:
    mine = _with(BASE, password=OFFLINE_PW, username="root")
    theirs = ServerRecord(5, _with(BASE, password=SERVER_PW))
    result = merge_change(_change(mine), theirs)
    assert result.action == "write"
    assert result.send == _with(theirs.content, username="root")
    assert result.conflicts == (FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW),)
    assert result.reason == "conflict"
    assert result.applied == frozenset({"username"})


def test_when_every_change_conflicts_nothing_is_sent_and_the_values_are_reported() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    theirs = ServerRecord(5, _with(BASE, password=SERVER_PW))
    result = merge_change(_change(mine), theirs)
    assert result == MergeResult(
        "nothing",
        conflicts=(FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW),),
        reason="conflict",
    )


def test_the_same_change_on_both_sides_is_no_conflict_and_needs_no_write() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    result = merge_change(_change(mine), ServerRecord(5, mine))
    assert result == MergeResult("nothing")


def test_a_field_removed_offline_is_removed_unless_others_changed_it() -> None:
    mine = _with(BASE, url=None)
    assert merge_change(_change(mine), ServerRecord(5, _with(BASE, notes="n"))).send == (
        _with(BASE, notes="n", url=None)
    )
    result = merge_change(_change(mine), ServerRecord(5, _with(BASE, url="other.lan")))
    assert result.conflicts == (FieldConflict("url", None, "other.lan"),)


def test_a_field_added_offline_and_on_the_server_with_other_values_conflicts() -> None:
    mine = _with(BASE, pin="1111")
    result = merge_change(_change(mine), ServerRecord(5, _with(BASE, pin="2222")))
    assert result.conflicts == (FieldConflict("pin", "1111", "2222"),)


def test_a_field_removed_on_the_server_and_changed_offline_conflicts() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    result = merge_change(_change(mine), ServerRecord(5, _with(BASE, password=None)))
    assert result.conflicts == (FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None),)


def test_the_name_is_merged_like_a_field() -> None:
    mine = RecordContent("Router (lab)", BASE.fields)
    theirs = ServerRecord(5, _with(BASE, notes="n"))
    assert merge_change(_change(mine), theirs).send == RecordContent(
        "Router (lab)", theirs.content.fields
    )
    renamed = ServerRecord(5, RecordContent("Router (office)", BASE.fields))
    assert merge_change(_change(mine), renamed).conflicts == (
        FieldConflict(RECORD_NAME, "Router (lab)", "Router (office)"),
    )


def test_an_update_whose_record_was_deleted_or_refused_reports_the_users_values() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    for gone in ("deleted", "refused"):
        result = merge_change(_change(mine), gone)
        assert result == MergeResult(
            "report", conflicts=(FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None),), reason=gone
        )


def test_an_update_without_a_known_base_needs_the_servers_record() -> None:
    change = _change(_with(BASE, password=OFFLINE_PW), base_rev=None)
    with pytest.raises(ValueError, match="merged with the server's record"):
        merge_change(change, None)
    assert merge_change(change, ServerRecord(1, BASE)).action == "write"


# --- creates -------------------------------------------------------------------------------


def test_a_create_never_conflicts_and_sends_the_whole_record_with_if_none_match() -> None:
    mine = RecordContent("Switch", {"password": OFFLINE_PW})
    result = merge_change(_change(mine, kind="create", base=None, base_rev=None), None)
    assert result == MergeResult(
        "write", mine, None, applied=frozenset({RECORD_NAME, PASSWORD_FIELD})
    )


def test_a_create_the_server_holds_already_is_merged_as_an_update_from_nothing() -> None:
    mine = RecordContent("Switch", {"password": OFFLINE_PW, "url": "sw.lan"})
    change = _change(mine, kind="create", base=None, base_rev=None)
    assert merge_change(change, ServerRecord(1, mine)) == MergeResult("nothing")
    edited = ServerRecord(2, RecordContent("Switch", {"password": SERVER_PW}))
    result = merge_change(change, edited)
    assert result.send == RecordContent("Switch", {"password": SERVER_PW, "url": "sw.lan"})
    assert result.if_match == 2
    assert result.conflicts == (FieldConflict(PASSWORD_FIELD, OFFLINE_PW, SERVER_PW),)


def test_a_refused_create_keeps_every_typed_value_readable() -> None:
    mine = RecordContent("Switch", {"password": OFFLINE_PW})
    result = merge_change(_change(mine, kind="create", base=None, base_rev=None), "refused")
    assert result.action == "report"
    assert set(result.conflicts) == {
        FieldConflict(RECORD_NAME, "Switch", None),
        FieldConflict(PASSWORD_FIELD, OFFLINE_PW, None),
    }


# --- deletes -------------------------------------------------------------------------------


def test_a_delete_of_an_unchanged_record_is_sent_on_its_revision() -> None:
    change = _change(None, kind="delete")
    assert merge_change(change, None) == MergeResult("delete", if_match=4)
    assert merge_change(change, ServerRecord(4, BASE)) == MergeResult("delete", if_match=4)
    # The revision moved but the content is the base's (a rewrite of the same values).
    assert merge_change(change, ServerRecord(5, BASE)) == MergeResult("delete", if_match=5)


def test_a_delete_of_a_record_others_changed_is_not_applied_and_is_reported() -> None:
    result = merge_change(
        _change(None, kind="delete"), ServerRecord(5, _with(BASE, password=SERVER_PW))
    )
    assert result == MergeResult(
        "report", conflicts=(FieldConflict(None, None, "Router"),), reason="conflict"
    )


def test_a_delete_of_a_deleted_record_is_done_and_a_refused_one_reported() -> None:
    change = _change(None, kind="delete")
    assert merge_change(change, "deleted") == MergeResult("nothing")
    assert merge_change(change, "refused") == MergeResult(
        "report", conflicts=(FieldConflict(None, None, None),), reason="refused"
    )


# --- values --------------------------------------------------------------------------------


def test_changes_and_content_after_are_inverse() -> None:
    mine = RecordContent("Router 2", {"username": "admin", "pin": "1"})
    changes = changes_between(BASE, mine)
    assert set(changes) == {RECORD_NAME, "password", "url", "pin"}
    assert content_after(BASE, changes) == mine
    assert changes_between(BASE, BASE) == {}


def test_no_value_appears_in_a_repr() -> None:
    mine = _with(BASE, password=OFFLINE_PW)
    change = _change(mine)
    result = merge_change(change, ServerRecord(5, _with(BASE, password=SERVER_PW)))
    text = repr(change) + repr(result) + repr(mine)
    assert OFFLINE_PW not in text
    assert SERVER_PW not in text
    assert "admin" not in text


def test_a_record_cannot_lose_its_name() -> None:
    with pytest.raises(ValueError, match="always has a name"):
        content_after(BASE, {RECORD_NAME: ValueChange("Router", None)})


# --- properties ----------------------------------------------------------------------------

KEYS = st.sampled_from(["password", "username", "url", "notes", "pin"])
VALUES = st.sampled_from(["a", "b", "c", OFFLINE_PW])
CONTENT = st.builds(
    RecordContent, st.sampled_from(["N1", "N2", "N3"]), st.dictionaries(KEYS, VALUES, max_size=5)
)


def _slot(content: RecordContent, slot: str) -> str | None:
    return content.slots().get(slot)


def _outcome_of(change: PendingChange, theirs: ServerRecord, result: MergeResult) -> None:
    """The merge invariants, for one update against one server record."""
    sent = result.send if result.action == "write" else theirs.content
    assert sent is not None
    conflicts = {c.slot: c for c in result.conflicts}
    for slot in {*theirs.content.slots(), *change.changes, *sent.slots()}:
        value = change.changes.get(slot)
        if value is None:
            # A slot the user did not change keeps the server's value.
            assert _slot(sent, slot) == _slot(theirs.content, slot)
        elif _slot(theirs.content, slot) in (value.base, value.new):
            # Only the user changed it, or both the same way: the user's value is sent.
            assert _slot(sent, slot) == value.new
            assert slot not in conflicts
        else:
            # Both changed it differently: the server keeps its value; the user's is reported.
            assert _slot(sent, slot) == _slot(theirs.content, slot)
            assert conflicts[slot] == FieldConflict(slot, value.new, _slot(theirs.content, slot))
    assert set(conflicts) <= set(change.changes)
    if result.action == "write":
        assert result.if_match == theirs.rev
        assert result.applied == {
            s for s in change.changes if _slot(theirs.content, s) != _slot(sent, s)
        }
    else:
        assert result.action == "nothing"


@settings(max_examples=400, deadline=None)
@given(base=CONTENT, mine=CONTENT, theirs=CONTENT, rev=st.integers(1, 9))
def test_every_user_change_is_sent_already_there_or_a_conflict(
    base: RecordContent, mine: RecordContent, theirs: RecordContent, rev: int
) -> None:
    change = _change(mine, base=base)
    server = ServerRecord(rev, theirs)
    result = merge_change(change, server)
    _outcome_of(change, server, result)
    # The password typed offline is never dropped silently.
    typed = change.changes.get(PASSWORD_FIELD)
    if typed is not None:
        sent = result.send or theirs
        on_server = _slot(sent, PASSWORD_FIELD) == typed.new
        reported = FieldConflict(PASSWORD_FIELD, typed.new, _slot(theirs, PASSWORD_FIELD)) in (
            result.conflicts
        )
        assert on_server != reported
    # Merging again with what was sent leaves nothing to send: the merge converges.
    if result.send is not None:
        again = merge_change(change, ServerRecord(rev + 1, result.send))
        assert again.action == "nothing"
        assert again.conflicts == result.conflicts


@settings(max_examples=200, deadline=None)
@given(base=CONTENT, mine=CONTENT)
def test_against_its_own_base_a_change_sends_exactly_the_users_record(
    base: RecordContent, mine: RecordContent
) -> None:
    change = _change(mine, base=base)
    result = merge_change(change, None)
    if change.changes:
        assert result == MergeResult("write", mine, 4, applied=frozenset(change.changes))
    else:
        assert result == MergeResult("nothing")


@settings(max_examples=200, deadline=None)
@given(mine=CONTENT, theirs=st.none() | CONTENT, gone=st.sampled_from(["deleted", "refused"]))
def test_a_create_never_conflicts_and_a_refusal_keeps_every_value(
    mine: RecordContent, theirs: RecordContent | None, gone: str
) -> None:
    change = _change(mine, kind="create", base=None, base_rev=None)
    created = merge_change(change, None)
    assert created.send == mine
    assert created.conflicts == ()
    refused = merge_change(change, "refused" if gone == "refused" else "deleted")
    assert {(c.slot, c.mine) for c in refused.conflicts} == set(mine.slots().items())
    if theirs is not None:
        _outcome_of(change, ServerRecord(2, theirs), merge_change(change, ServerRecord(2, theirs)))


@settings(max_examples=200, deadline=None)
@given(base=CONTENT, theirs=CONTENT, rev=st.integers(1, 9))
def test_a_delete_is_sent_only_against_the_unchanged_record(
    base: RecordContent, theirs: RecordContent, rev: int
) -> None:
    change = _change(None, kind="delete", base=base)
    result = merge_change(change, ServerRecord(rev, theirs))
    unchanged = rev == 4 or theirs == base
    assert result.action == ("delete" if unchanged else "report")
    if not unchanged:
        assert result.conflicts == (FieldConflict(None, None, theirs.name),)
