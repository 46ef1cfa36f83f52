"""How an offline change meets the server's record: the per-field three-way merge, pure.

A record is seen as *slots*: its name under the key :data:`RECORD_NAME` (the empty string,
which no field may be called: the server requires field names of at least one character) and
each field under its own name. A slot's value is a string, or None when the field is absent.

A :class:`PendingChange` says, for each slot the user changed offline, the value the user saw
before (``base``) and the value the user wants (``new``). Against the server's current record
(``theirs``), per slot:

- only the user changed it (``theirs == base``): the user's value is sent;
- both changed it to the same value (``theirs == new``): nothing to do, no conflict;
- both changed it to different values: the server keeps its value and the user's value becomes
  a :class:`FieldConflict`, so that the user decides (a password typed offline is therefore
  never dropped silently: it is sent, already on the server, or in the conflicts);
- slots the user did not change keep the server's value (others' changes stay).

A create never conflicts; a delete against a record that others changed is not sent but
reported; a change the server refused, or whose record is gone, is reported with the user's
values. Nothing here does I/O: the sync engine asks, sends, and stores the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

RECORD_NAME = ""
"""The slot key of the record's name (no field may have an empty name)."""
PASSWORD_FIELD = "password"  # noqa: S105 - a field name, not a password

# The server's limits on a record (docs/sync-api.yaml): a change outside them could never be
# pushed, so it is refused when it is made.
MAX_NAME_LENGTH = 1_000
MAX_FIELDS = 200
MAX_FIELD_NAME_LENGTH = 200
MAX_FIELD_VALUE_LENGTH = 100_000

ChangeKind = Literal["create", "update", "delete"]
ServerGone = Literal["deleted", "refused"]
"""What stands in for the server's record when there is none to merge with: the record was
deleted on the server, or the server refused the write (right taken away, record sealed)."""
ConflictReason = Literal["conflict", "refused", "deleted"]
MergeAction = Literal["write", "delete", "nothing", "report"]


@dataclass(frozen=True)
class RecordContent:
    """A record's name and fields (what a write sends); both are hidden from ``repr``."""

    name: str = field(repr=False)
    fields: Mapping[str, str] = field(repr=False)

    def slots(self) -> dict[str, str]:
        """The record as slots: the name under :data:`RECORD_NAME`, then the fields."""
        return {RECORD_NAME: self.name, **self.fields}

    @classmethod
    def from_slots(cls, slots: Mapping[str, str]) -> RecordContent:
        """The record whose slots these are (the name slot must be there)."""
        return cls(slots[RECORD_NAME], {k: v for k, v in slots.items() if k != RECORD_NAME})


@dataclass(frozen=True)
class ServerRecord:
    """The server's current record: its revision and content."""

    rev: int
    content: RecordContent


@dataclass(frozen=True)
class ValueChange:
    """One slot's change: the value the user saw (``base``) and the one typed (``new``);
    None means "no such field". Values are hidden from ``repr``."""

    base: str | None = field(repr=False)
    new: str | None = field(repr=False)


@dataclass(frozen=True)
class PendingChange:
    """One change made offline and not yet on the server.

    ``base_rev`` and ``base_record`` are the server's revision and record the change was made
    against (None for a create, and for an update that follows a create not yet pushed).
    ``changes`` maps slots to their :class:`ValueChange` (empty for a delete). ``change_id`` is
    made by the client, so that a resend of the same change is recognised by the server.
    """

    seq: int
    change_id: str
    record_id: str
    kind: ChangeKind
    base_rev: int | None
    base_record: RecordContent | None
    changes: Mapping[str, ValueChange]
    local_time: float
    attempts: int = 0

    @property
    def new_name(self) -> str | None:
        """The name the user gave the record, if the change sets it."""
        change = self.changes.get(RECORD_NAME)
        return None if change is None else change.new


@dataclass(frozen=True)
class FieldConflict:
    """A slot where the user's value is not on the server: ``mine`` is the user's value,
    ``theirs`` the server's (None: absent, or no record). ``slot`` None stands for the whole
    record (a delete that was not applied). Values are hidden from ``repr``."""

    slot: str | None
    mine: str | None = field(repr=False)
    theirs: str | None = field(repr=False)


@dataclass(frozen=True)
class MergeResult:
    """What to do with one pending change against the server's current state.

    - ``write``: send ``send`` conditionally: ``If-Match: "if_match"``, or for a create
      (``if_match`` None) ``If-None-Match: *``;
    - ``delete``: delete with ``If-Match: "if_match"``;
    - ``nothing``: the server already holds what the user wanted (or the record is gone and
      the user deleted it): the change is done;
    - ``report``: nothing can be sent; ``reason`` says why and ``conflicts`` hold the user's
      values so that the user can read them.

    ``conflicts`` is also filled for a ``write`` that keeps the server's value in some slots.
    ``applied`` names the slots whose user value is in ``send``.
    """

    action: MergeAction
    send: RecordContent | None = None
    if_match: int | None = None
    conflicts: tuple[FieldConflict, ...] = ()
    reason: ConflictReason | None = None
    applied: frozenset[str] = frozenset()


def content_after(base: RecordContent | None, changes: Mapping[str, ValueChange]) -> RecordContent:
    """``base`` (nothing for a create) with the user's new values applied: the record as the
    user sees it."""
    slots: dict[str, str] = {} if base is None else base.slots()
    for slot, change in changes.items():
        _set_slot(slots, slot, change.new)
    return RecordContent.from_slots(slots)


def changes_between(before: RecordContent | None, after: RecordContent) -> dict[str, ValueChange]:
    """The slots that differ between ``before`` (nothing for a create) and ``after``."""
    old: dict[str, str] = {} if before is None else before.slots()
    new = after.slots()
    return {
        slot: ValueChange(old.get(slot), new.get(slot))
        for slot in dict.fromkeys([*old, *new])
        if old.get(slot) != new.get(slot)
    }


def content_problem(content: RecordContent) -> str | None:
    """Why the server would refuse this record, in words (never quoting a value); None when
    it is acceptable."""
    if not content.name or len(content.name) > MAX_NAME_LENGTH:
        return f"A record needs a name of 1 to {MAX_NAME_LENGTH} characters."
    if len(content.fields) > MAX_FIELDS:
        return f"A record may have at most {MAX_FIELDS} fields."
    for key, value in content.fields.items():
        if not key or len(key) > MAX_FIELD_NAME_LENGTH:
            return f"Field names must have 1 to {MAX_FIELD_NAME_LENGTH} characters."
        if len(value) > MAX_FIELD_VALUE_LENGTH:
            return f"A field value may have at most {MAX_FIELD_VALUE_LENGTH} characters."
    if not all(_encodable(text) for text in (content.name, *content.slots())) or not all(
        _encodable(v) for v in content.fields.values()
    ):
        return "The record holds text that is not valid Unicode."
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def merge_change(change: PendingChange, theirs: ServerRecord | ServerGone | None) -> MergeResult:
    """Decide what to do with ``change`` given the server's current record.

    ``theirs`` None means "not asked yet": the server is assumed to still hold the change's
    base (for a create: that the id is free), which is the first attempt of every push; the
    conditional write then fails with the current record if that is not so, and the change is
    merged again with it.
    """
    if theirs == "refused":
        return _report(change, "refused")
    if change.kind == "delete":
        return _merge_delete(change, theirs)
    if theirs == "deleted":
        return _report(change, "deleted")
    if isinstance(theirs, ServerRecord):
        return _merge_slots(change, theirs)
    if change.kind == "create":
        # A create never conflicts: nothing was there to change.
        mine = content_after(None, change.changes)
        return MergeResult("write", mine, None, applied=frozenset(change.changes))
    if change.base_rev is None or change.base_record is None:
        raise ValueError("an update without a known base must be merged with the server's record")
    return _merge_slots(change, ServerRecord(change.base_rev, change.base_record))


def _merge_slots(change: PendingChange, theirs: ServerRecord) -> MergeResult:
    """The per-slot three-way merge of an update (or of a create whose id the server holds
    already: an earlier attempt reached it, so it is merged as an update from nothing)."""
    slots = theirs.content.slots()
    applied: list[str] = []
    conflicts: list[FieldConflict] = []
    for slot, value in change.changes.items():
        current = slots.get(slot)
        if current == value.new:
            continue  # the same change on both sides, or already pushed
        if current == value.base:
            _set_slot(slots, slot, value.new)
            applied.append(slot)
        else:
            conflicts.append(FieldConflict(slot, value.new, current))
    if not applied:
        return MergeResult(
            "nothing", conflicts=tuple(conflicts), reason="conflict" if conflicts else None
        )
    return MergeResult(
        "write",
        RecordContent.from_slots(slots),
        theirs.rev,
        tuple(conflicts),
        "conflict" if conflicts else None,
        frozenset(applied),
    )


def _merge_delete(change: PendingChange, theirs: ServerRecord | ServerGone | None) -> MergeResult:
    if theirs is None:
        return MergeResult("delete", if_match=change.base_rev)
    if not isinstance(theirs, ServerRecord):
        return MergeResult("nothing")  # deleted already: what the user wanted
    if theirs.rev == change.base_rev or theirs.content == change.base_record:
        return MergeResult("delete", if_match=theirs.rev)
    # Others changed the record since the user deleted it: their change wins, and the user
    # hears that the delete was not applied.
    return MergeResult(
        "report", conflicts=(FieldConflict(None, None, theirs.content.name),), reason="conflict"
    )


def _report(change: PendingChange, reason: ConflictReason) -> MergeResult:
    """Nothing can be sent: the user's values go to the conflict list (a delete: one entry
    for the whole record)."""
    if change.kind == "delete":
        return MergeResult("report", conflicts=(FieldConflict(None, None, None),), reason=reason)
    conflicts = tuple(
        FieldConflict(slot, value.new, None) for slot, value in change.changes.items()
    )
    return MergeResult("report", conflicts=conflicts, reason=reason)


def _set_slot(slots: dict[str, str], slot: str, value: str | None) -> None:
    if value is None:
        if slot == RECORD_NAME:
            raise ValueError("a record always has a name")
        slots.pop(slot, None)
    else:
        slots[slot] = value
