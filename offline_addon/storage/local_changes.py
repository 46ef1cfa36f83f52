"""Offline edits inside the encrypted copy: the pending-changes queue and the conflict list.

Every operation is one transaction on the copy that changes the record as the user now sees
it (the ``records`` row and its search indexes) together with the queue, so a crash leaves a
change whole or absent. Nothing of it is written anywhere but the encrypted file.

The queue holds at most a chain of entries per record, in the order they were made:

- an edit joins the record's last entry while that entry was never sent (``attempts`` 0), and
  gets a fresh change id then, so that a server never takes a grown change for the resend
  of an older one; once an entry was sent, a new edit starts a new entry that *follows* it
  (``base_rev`` None), because the server may or may not hold the sent one;
- settling an entry (:meth:`LocalChanges.mark_pushed`, :meth:`LocalChanges.mark_refused`)
  gives the entry that follows it its base: the server's record after the push, or the
  refused entry's own base.

Revisions: an edited record keeps the server revision it was pulled at (``records.rev`` is
what the server last said); a record created offline has rev 0 until it is pushed. The
copy's maintained digest counts the server's revisions only, so edits and creates leave it
alone and a delete takes the record out of it, like a pulled delete would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offline_addon.errors import OfflineEditError
from offline_addon.protocol.digest import line_hash
from offline_addon.protocol.merge import (
    ChangeKind,
    ConflictReason,
    FieldConflict,
    PendingChange,
    RecordContent,
    ServerRecord,
    ValueChange,
    changes_between,
    content_after,
    content_problem,
    merge_change,
)
from offline_addon.protocol.page_plan import PagePlan
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.page_writer import update_records, write_plan
from offline_addon.storage.pending_rows import (
    PENDING_COLS,
    adjust_digest,
    all_entries,
    dump_changes,
    dump_content,
    entries_of,
    entry_from_row,
    insert_conflict,
    insert_entry,
    record_data,
    remove_record,
    show_pending,
    shown_name,
)


@dataclass(frozen=True)
class ConflictEntry:
    """One entry of the conflict list: a value of the user's that is not on the server.

    ``slot`` is the field ("" the record's name, None the whole record: a delete that was not
    applied or was refused); ``reason`` is ``conflict`` (others changed it too), ``refused``
    (the server refused the change) or ``deleted`` (the record is gone). Values and the name
    are hidden from ``repr``.
    """

    conflict_id: int
    record_id: str
    record_name: str = field(repr=False)
    slot: str | None = field(repr=False)
    mine: str | None = field(repr=False)
    theirs: str | None = field(repr=False)
    reason: ConflictReason
    change_id: str
    local_time: float


class LocalChanges:
    """The offline edits of one open copy: make them, list them, settle them after a push."""

    def __init__(self, copy: OfflineCopy, clock: Callable[[], float] = time.time) -> None:
        self._copy = copy
        self._clock = clock

    def __repr__(self) -> str:
        return f"LocalChanges({self._copy!r})"

    # -- making changes --------------------------------------------------------------------

    def edit_record(
        self, record_id: str, *, name: str | None = None, fields: Mapping[str, str] | None = None
    ) -> PendingChange | None:
        """Give a record a new name and/or fields (``fields`` is the whole new set; None keeps
        either as it is). Returns the queue entry, or None when nothing changed (also when the
        record is back to what the server holds: its entry is dropped)."""
        with self._copy.local_write() as db:
            rev, current = _read_record(db, record_id)
            wanted = RecordContent(
                current.name if name is None else name,
                dict(current.fields if fields is None else fields),
            )
            _check(wanted)
            edit = changes_between(current, wanted)
            if not edit:
                return None
            _write_record(db, record_id, wanted)
            last = _last_entry(db, record_id)
            if last is not None and last.attempts == 0:
                return self._grow(db, last, edit)
            if last is None:
                return self._append(db, record_id, "update", rev, current, edit)
            return self._append(db, record_id, "update", None, None, edit)

    def create_record(
        self, name: str, fields: Mapping[str, str], *, record_id: str | None = None
    ) -> PendingChange:
        """Create a record offline under a client-made id (a random UUID unless given), so
        that a resend of its create is never taken for a second record."""
        new_id = _new_record_id() if record_id is None else _checked_uuid(record_id)
        content = RecordContent(name, dict(fields))
        _check(content)
        with self._copy.local_write() as db:
            if db.execute("SELECT 1 FROM records WHERE id = ?", (new_id,)).fetchone():
                raise OfflineEditError("A record with this id exists in the offline copy.")
            write_plan(db, PagePlan((record_data(new_id, 0, content, 0.0),), (), ()))
            return self._append(db, new_id, "create", None, None, changes_between(None, content))

    def delete_record(self, record_id: str) -> PendingChange | None:
        """Delete a record offline. Returns the queue entry, or None when the record was
        created offline and never sent: then it is simply gone, with its entries."""
        with self._copy.local_write() as db:
            rev, current = _read_record(db, record_id)
            entries = entries_of(db, record_id)
            remove_record(db, record_id, rev)
            if entries and entries[0].kind == "create" and entries[0].attempts == 0:
                db.execute("DELETE FROM pending_changes WHERE record_id = ?", (record_id,))
                return None
            last = entries[-1] if entries else None
            if last is None:
                return self._append(db, record_id, "delete", rev, current, {})
            if last.attempts == 0 and last.kind == "update":
                # The delete replaces the edit that was never sent: it keeps the edit's base.
                db.execute("DELETE FROM pending_changes WHERE seq = ?", (last.seq,))
                return self._append(db, record_id, "delete", last.base_rev, last.base_record, {})
            return self._append(db, record_id, "delete", None, None, {})

    # -- reading ---------------------------------------------------------------------------

    def pending(self) -> list[PendingChange]:
        """Every change not yet on the server, in the order they must be pushed."""
        with self._copy.local_read() as db:
            rows = db.execute(f"SELECT {PENDING_COLS} FROM pending_changes ORDER BY seq")  # noqa: S608
            return [entry_from_row(row) for row in rows.fetchall()]

    def has_pending(self, record_id: str) -> bool:
        """Whether a record has changes that are not on the server yet."""
        with self._copy.local_read() as db:
            row = db.execute(
                "SELECT 1 FROM pending_changes WHERE record_id = ? LIMIT 1", (record_id,)
            ).fetchone()
        return row is not None

    def conflicts(self) -> list[ConflictEntry]:
        """The conflict list, oldest first."""
        with self._copy.local_read() as db:
            rows = db.execute(
                "SELECT id, record_id, record_name, slot, mine, theirs, reason, change_id,"
                " local_time FROM conflicts ORDER BY id"
            ).fetchall()
        return [ConflictEntry(*row) for row in rows]

    # -- settling after a push -------------------------------------------------------------

    def mark_attempted(self, change_id: str) -> bool:
        """Note that a change is about to be sent: later edits no longer join it. False when
        no entry has this change id (an edit joined it meanwhile and gave it a new id, or it
        was settled): then it must not be sent as it was read."""
        with self._copy.local_write() as db:
            cur = db.execute(
                "UPDATE pending_changes SET attempts = attempts + 1 WHERE change_id = ?",
                (change_id,),
            )
            return bool(cur.rowcount)

    def mark_pushed(
        self,
        change_id: str,
        record: ServerRecord | None,
        conflicts: Sequence[FieldConflict] = (),
    ) -> None:
        """The server holds the change (``record``: its record now; None after a delete):
        drop the entry, show the server's record with the later entries on top, give the
        next entry its base, and keep ``conflicts`` (the values the server kept its own for).
        Marking a change that is no longer pending does nothing (a repeat after a crash)."""
        with self._copy.local_write() as db:
            entry = _entry_by_id(db, change_id)
            if entry is None:
                return
            if entry.kind != "delete" and record is None:
                raise ValueError("a pushed create or update needs the server's record")
            self._add_conflicts(db, entry, conflicts, "conflict")
            self._settle(db, entry, None if record is None else (record.rev, record.content))

    def mark_refused(
        self,
        change_id: str,
        reason: ConflictReason,
        conflicts: Sequence[FieldConflict],
        *,
        server_record: ServerRecord | None = None,
        gone: bool = False,
    ) -> None:
        """The server did not take the change (``reason``): keep ``conflicts`` (the user's
        values), drop the entry and those that follow it on the same record (their values go
        to the conflict list too), and show the server's record again: ``server_record`` if
        known, none when the record is ``gone`` (deleted, or the user may no longer read
        it), else the one the change was made against (a create: none)."""
        with self._copy.local_write() as db:
            entry = _entry_by_id(db, change_id)
            if entry is None:
                return
            self._add_conflicts(db, entry, conflicts, reason)
            later = [e for e in entries_of(db, entry.record_id) if e.seq > entry.seq]
            for other in later:
                self._add_conflicts(db, other, merge_change(other, "refused").conflicts, reason)
            db.execute(
                "DELETE FROM pending_changes WHERE record_id = ? AND seq > ?",
                (entry.record_id, entry.seq),
            )
            if server_record is not None:
                known: tuple[int, RecordContent] | None = (server_record.rev, server_record.content)
            elif gone:
                known = None
            elif entry.base_rev is not None and entry.base_record is not None:
                known = (entry.base_rev, entry.base_record)
            else:
                known = None
            self._settle(db, entry, known)

    def add_conflict(
        self,
        record_id: str,
        record_name: str,
        conflict: FieldConflict,
        reason: ConflictReason,
        change_id: str,
    ) -> int:
        """Add one entry to the conflict list; return its id."""
        with self._copy.local_write() as db:
            return insert_conflict(
                db, record_id, record_name, conflict, reason, change_id, self._clock()
            )

    def dismiss_conflict(self, conflict_id: int) -> bool:
        """Remove an entry from the conflict list (the user has read or resolved it); False if
        there was none with this id."""
        with self._copy.local_write() as db:
            cur = db.execute("DELETE FROM conflicts WHERE id = ?", (conflict_id,))
            return bool(cur.rowcount)

    def conflict_count(self) -> int:
        """How many entries the conflict list holds."""
        with self._copy.local_read() as db:
            return int(db.execute("SELECT count(*) FROM conflicts").fetchone()[0])

    def record_name(self, change: PendingChange) -> str:
        """The name the user knows the record of ``change`` by (for reports)."""
        with self._copy.local_read() as db:
            return shown_name(db, change)

    def unsaved_names(self) -> list[str]:
        """The names of the records whose offline changes or conflict values are only in
        this copy (pending entries, then the conflict list), each once: what is lost with
        the copy if it is deleted now."""
        with self._copy.local_read() as db:
            names = [shown_name(db, entry) for entry in all_entries(db)]
            names += [str(row[0]) for row in db.execute("SELECT record_name FROM conflicts")]
        return list(dict.fromkeys(names))

    # -- inside a transaction --------------------------------------------------------------

    def _append(
        self,
        db: Any,
        record_id: str,
        kind: ChangeKind,
        base_rev: int | None,
        base_record: RecordContent | None,
        changes: Mapping[str, ValueChange],
    ) -> PendingChange:
        change_id = str(uuid.uuid4())
        now = self._clock()
        cur = db.execute(
            "INSERT INTO pending_changes (change_id, record_id, kind, base_rev, base_record,"
            " changes, local_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                change_id,
                record_id,
                kind,
                base_rev,
                dump_content(base_record),
                dump_changes(changes),
                now,
            ),
        )
        return PendingChange(
            int(cur.lastrowid),
            change_id,
            record_id,
            kind,
            base_rev,
            base_record,
            dict(changes),
            now,
        )

    def _grow(
        self, db: Any, last: PendingChange, edit: Mapping[str, ValueChange]
    ) -> PendingChange | None:
        """Join an edit to the record's unsent last entry, under a fresh change id; an entry
        whose every slot is back at its base is dropped."""
        changes = dict(last.changes)
        for slot, value in edit.items():
            base = changes[slot].base if slot in changes else value.base
            changes[slot] = ValueChange(base, value.new)
        changes = {slot: v for slot, v in changes.items() if v.base != v.new}
        if not changes and last.kind == "update":
            db.execute("DELETE FROM pending_changes WHERE seq = ?", (last.seq,))
            return None
        change_id, now = str(uuid.uuid4()), self._clock()
        db.execute(
            "UPDATE pending_changes SET change_id = ?, changes = ?, local_time = ? WHERE seq = ?",
            (change_id, dump_changes(changes), now, last.seq),
        )
        return PendingChange(
            last.seq,
            change_id,
            last.record_id,
            last.kind,
            last.base_rev,
            last.base_record,
            changes,
            now,
        )

    def _add_conflicts(
        self,
        db: Any,
        entry: PendingChange,
        conflicts: Iterable[FieldConflict],
        reason: ConflictReason,
    ) -> None:
        name = shown_name(db, entry)
        now = self._clock()
        for conflict in conflicts:
            insert_conflict(db, entry.record_id, name, conflict, reason, entry.change_id, now)

    def _settle(
        self, db: Any, entry: PendingChange, known: tuple[int, RecordContent] | None
    ) -> None:
        """Drop ``entry`` and show ``known`` (the server's rev and record; None: none) with
        the record's remaining entries on top; the next entry takes ``known`` as its base."""
        db.execute("DELETE FROM pending_changes WHERE seq = ?", (entry.seq,))
        later = entries_of(db, entry.record_id)
        if later and later[0].base_rev is None and later[0].kind != "create":
            rev, content = known if known is not None else (None, None)
            db.execute(
                "UPDATE pending_changes SET base_rev = ?, base_record = ? WHERE seq = ?",
                (rev, dump_content(content), later[0].seq),
            )
        row = db.execute(
            "SELECT rev, updated_at FROM records WHERE id = ?", (entry.record_id,)
        ).fetchone()
        updated_at = 0.0 if row is None else float(row[1])
        if row is not None:
            remove_record(db, entry.record_id, int(row[0]))
        shown = _shown_after(known, later)
        if shown is not None:
            rev, content = shown
            write_plan(
                db, PagePlan((record_data(entry.record_id, rev, content, updated_at),), (), ())
            )
            if rev > 0:
                adjust_digest(db, 1, line_hash(entry.record_id, rev))


@dataclass(frozen=True)
class CarriedChanges:
    """A copy's queue and conflict list, read to be carried into a rebuilt file (values
    hidden from ``repr``)."""

    entries: tuple[PendingChange, ...] = field(repr=False)
    conflicts: tuple[tuple[Any, ...], ...] = field(repr=False)

    def __bool__(self) -> bool:
        return bool(self.entries or self.conflicts)


def read_local_changes(copy: OfflineCopy) -> CarriedChanges:
    """The queue and the conflict list of ``copy`` (a rebuild carries them over)."""
    with copy.local_read() as db:
        entries = tuple(all_entries(db))
        conflicts = db.execute(
            "SELECT record_id, record_name, slot, mine, theirs, reason, change_id, local_time"
            " FROM conflicts ORDER BY id"
        ).fetchall()
    return CarriedChanges(entries, tuple(tuple(row) for row in conflicts))


def carry_local_changes(fresh: OfflineCopy, carried: CarriedChanges) -> None:
    """Put ``carried`` into ``fresh`` (a rebuild's new file, complete and not yet in place)
    in one transaction, and show the records with pending changes as the user sees them
    there (the first update of each based on the record the rebuild pulled)."""
    if not carried:
        return
    with fresh.local_write() as db:
        db.execute("DELETE FROM pending_changes")  # a resumed rebuild may have carried some
        db.execute("DELETE FROM conflicts")
        for entry in carried.entries:
            insert_entry(db, entry)
        db.executemany(
            "INSERT INTO conflicts (record_id, record_name, slot, mine, theirs, reason,"
            " change_id, local_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            carried.conflicts,
        )
        count, total = show_pending(db, dict.fromkeys(e.record_id for e in carried.entries))
        if count or total:
            adjust_digest(db, count, total)


def _shown_after(
    known: tuple[int, RecordContent] | None, later: Sequence[PendingChange]
) -> tuple[int, RecordContent] | None:
    """The record as the user sees it: the server's with the remaining entries on top."""
    rev, content = (0, None) if known is None else known
    for entry in later:
        if entry.kind == "delete":
            return None
        content = content_after(content, entry.changes)
    return None if content is None else (rev, content)


# --- rows ----------------------------------------------------------------------------------


def _read_record(db: Any, record_id: str) -> tuple[int, RecordContent]:
    row = db.execute("SELECT rev, name, fields FROM records WHERE id = ?", (record_id,)).fetchone()
    if row is None:
        raise OfflineEditError(
            "There is no such record in the offline copy; it may have been "
            "deleted by the last synchronisation."
        )
    return int(row[0]), RecordContent(row[1], json.loads(row[2]))


def _write_record(db: Any, record_id: str, content: RecordContent) -> None:
    # Through the page writer, which re-indexes the record (rev and time stay as they were).
    rev, updated_at = db.execute(
        "SELECT rev, updated_at FROM records WHERE id = ?", (record_id,)
    ).fetchone()
    update_records(db, [record_data(record_id, int(rev), content, float(updated_at))])


# --- queue entries -------------------------------------------------------------------------


def _last_entry(db: Any, record_id: str) -> PendingChange | None:
    entries = entries_of(db, record_id)
    return entries[-1] if entries else None


def _entry_by_id(db: Any, change_id: str) -> PendingChange | None:
    row = db.execute(
        f"SELECT {PENDING_COLS} FROM pending_changes WHERE change_id = ?",  # noqa: S608
        (change_id,),
    ).fetchone()
    return None if row is None else entry_from_row(row)


def _check(content: RecordContent) -> None:
    problem = content_problem(content)
    if problem is not None:
        raise OfflineEditError(f"{problem} Nothing was changed.")


def _new_record_id() -> str:
    return str(uuid.uuid4())


def _checked_uuid(text: str) -> str:
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        canonical = ""
    if canonical != text:
        raise OfflineEditError(
            "A record made offline needs an id in UUID form "
            "(like 123e4567-e89b-42d3-a456-426614174000)."
        )
    return text
