"""The rows of the offline edits inside a copy's transaction: the pending-changes queue, the
conflict list, and how a pull or a rebuild shows a record that has changes not yet pushed.

Shared by :mod:`~offline_addon.storage.local_changes` (making and settling changes) and
:class:`~offline_addon.storage.offline_copy.OfflineCopy` (applying a pulled page), so that
a pull never overwrites what the user typed offline: every function here runs inside the
caller's transaction (``db``) and commits nothing itself.

Pull rules (issue 15): a pulled upsert of a record with pending changes moves the first
pending update's base on to the pulled version (so that the push merges against it; the
per-slot base values the user saw stay) and shows the pulled record with the pending
changes on top; a pulled delete (or revocation, seal) settles the record's pending entries
into the conflict list (reason ``deleted``, or ``refused`` when the record was taken away).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from offline_addon.protocol.answers import Change, RecordData
from offline_addon.protocol.digest import line_hash, make_digest
from offline_addon.protocol.merge import (
    ChangeKind,
    ConflictReason,
    FieldConflict,
    PendingChange,
    RecordContent,
    ServerGone,
    ValueChange,
    content_after,
    merge_change,
)
from offline_addon.protocol.page_plan import PagePlan
from offline_addon.storage.migrations import DIGEST_COUNT_KEY, DIGEST_SUM_KEY
from offline_addon.storage.page_writer import write_plan

PENDING_COLS = (
    "seq, change_id, record_id, kind, base_rev, base_record, changes, local_time, attempts"
)
DigestDelta = tuple[int, int]
"""A change of the copy's maintained digest: (count, sum of line hashes)."""


# --- the queue ------------------------------------------------------------------------------


def any_pending(db: Any) -> bool:
    """Whether the queue holds anything (one indexed probe: a pull with no offline edits
    pays nothing more)."""
    return db.execute("SELECT 1 FROM pending_changes LIMIT 1").fetchone() is not None


def pending_ids(db: Any, record_ids: Iterable[str]) -> set[str]:
    """Which of ``record_ids`` have pending changes."""
    rows = db.execute(
        "SELECT DISTINCT p.record_id FROM json_each(?) AS j"
        " JOIN pending_changes AS p ON p.record_id = j.value",
        (json.dumps(list(record_ids)),),
    ).fetchall()
    return {str(row[0]) for row in rows}


def all_entries(db: Any) -> list[PendingChange]:
    """Every pending entry, in queue order."""
    rows = db.execute(f"SELECT {PENDING_COLS} FROM pending_changes ORDER BY seq")  # noqa: S608
    return [entry_from_row(row) for row in rows.fetchall()]


def entries_of(db: Any, record_id: str) -> list[PendingChange]:
    """A record's pending entries, in queue order."""
    rows = db.execute(
        f"SELECT {PENDING_COLS} FROM pending_changes WHERE record_id = ? ORDER BY seq",  # noqa: S608
        (record_id,),
    ).fetchall()
    return [entry_from_row(row) for row in rows]


def entry_from_row(row: Sequence[Any]) -> PendingChange:
    """A :class:`PendingChange` from a ``pending_changes`` row (columns :data:`PENDING_COLS`)."""
    seq, change_id, record_id, kind, base_rev, base_record, changes, local_time, attempts = row
    return PendingChange(
        int(seq),
        str(change_id),
        str(record_id),
        cast(ChangeKind, kind),
        None if base_rev is None else int(base_rev),
        load_content(base_record),
        {slot: ValueChange(base, new) for slot, (base, new) in json.loads(changes).items()},
        float(local_time),
        int(attempts),
    )


def insert_entry(db: Any, entry: PendingChange) -> None:
    """Put ``entry`` into the queue as it is (its ``seq`` and change id kept: a rebuild
    carrying the queue into a new file)."""
    db.execute(
        f"INSERT INTO pending_changes ({PENDING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            entry.seq,
            entry.change_id,
            entry.record_id,
            entry.kind,
            entry.base_rev,
            dump_content(entry.base_record),
            dump_changes(entry.changes),
            entry.local_time,
            entry.attempts,
        ),
    )


def set_base(db: Any, seq: int, rev: int | None, content: RecordContent | None) -> None:
    """Give the entry ``seq`` the server revision and record it is now based on."""
    db.execute(
        "UPDATE pending_changes SET base_rev = ?, base_record = ? WHERE seq = ?",
        (rev, dump_content(content), seq),
    )


# --- the conflict list ----------------------------------------------------------------------


def insert_conflict(
    db: Any,
    record_id: str,
    record_name: str,
    conflict: FieldConflict,
    reason: ConflictReason,
    change_id: str,
    now: float,
) -> int:
    """Add one entry to the conflict list; return its id."""
    cur = db.execute(
        "INSERT INTO conflicts (record_id, record_name, slot, mine, theirs, reason, change_id,"
        " local_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record_id,
            record_name,
            conflict.slot,
            conflict.mine,
            conflict.theirs,
            reason,
            change_id,
            now,
        ),
    )
    return int(cur.lastrowid)


def shown_name(db: Any, entry: PendingChange) -> str:
    """The record's name as the user knows it, for the conflict list and reports."""
    row = db.execute("SELECT name FROM records WHERE id = ?", (entry.record_id,)).fetchone()
    if row is not None:
        return str(row[0])
    if entry.new_name is not None:
        return entry.new_name
    return entry.base_record.name if entry.base_record is not None else entry.record_id


# --- what a pull does to records with pending changes ----------------------------------------


def settle_pulled_deletes(
    db: Any, deletes: Mapping[str, str], names: Mapping[str, str], now: float
) -> None:
    """The feed deleted records that have pending changes (``deletes``: id -> the feed's
    reason): their entries go to the conflict list with the user's values (``deleted``, or
    ``refused`` for a revocation or seal) and leave the queue. A pending delete of a deleted
    record is what the user wanted: no conflict. ``names``: the records' names before the
    page removed them."""
    for record_id, feed_reason in deletes.items():
        reason: ServerGone = "deleted" if feed_reason == "deleted" else "refused"
        for entry in entries_of(db, record_id):
            if entry.kind == "delete" and reason == "deleted":
                continue
            name = names.get(record_id) or shown_name(db, entry)
            for conflict in merge_change(entry, reason).conflicts:
                insert_conflict(db, record_id, name, conflict, reason, entry.change_id, now)
        db.execute("DELETE FROM pending_changes WHERE record_id = ?", (record_id,))


def names_of(db: Any, record_ids: Iterable[str]) -> dict[str, str]:
    """The names the copy shows for ``record_ids`` (those it holds)."""
    rows = db.execute(
        "SELECT r.id, r.name FROM json_each(?) AS j JOIN records AS r ON r.id = j.value",
        (json.dumps(list(record_ids)),),
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def pulled_deletes(changes: Iterable[Change], pending: set[str]) -> dict[str, str]:
    """The records of ``pending`` whose last change in a page is a delete, with its reason."""
    last: dict[str, Change] = {}
    for change in changes:
        if change.id in pending:
            last[change.id] = change
    return {rid: str(c.reason) for rid, c in last.items() if c.op == "delete"}


def show_pending(db: Any, record_ids: Iterable[str]) -> DigestDelta:
    """Show each of ``record_ids`` as the user sees it: the server's record as the copy now
    holds it (just pulled) with the record's pending entries on top. The first pending
    update is based on that server record from now on (the push merges against it). Returns
    the change of the maintained digest (a pending delete takes the pulled record out again,
    as the offline delete did)."""
    count = total = 0
    for record_id in record_ids:
        entries = entries_of(db, record_id)
        if not entries:
            continue
        row = db.execute(
            "SELECT rev, name, fields, updated_at FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        server: tuple[int, RecordContent, float] | None = None
        if row is not None:
            server = (int(row[0]), RecordContent(row[1], json.loads(row[2])), float(row[3]))
        _rebase_first(db, entries[0], server)
        dc, ds = _show(db, record_id, server, entries)
        count, total = count + dc, total + ds
    return count, total


def _rebase_first(
    db: Any, first: PendingChange, server: tuple[int, RecordContent, float] | None
) -> None:
    # Only an update: a delete stays on its base, so that a delete of a record others
    # changed is reported, never applied (DESIGN, "Merge"); a create has no base.
    if server is None or first.kind != "update" or first.base_rev is None:
        return
    rev, content, _ = server
    if rev > 0 and rev != first.base_rev:
        set_base(db, first.seq, rev, content)


def _show(
    db: Any,
    record_id: str,
    server: tuple[int, RecordContent, float] | None,
    entries: Sequence[PendingChange],
) -> DigestDelta:
    rev, content, updated_at = (0, None, 0.0) if server is None else server
    view: RecordContent | None = content
    for entry in entries:
        if entry.kind == "delete":
            view = None
            break
        if view is None and entry.kind != "create":
            return 0, 0  # not on the server (any more): the push finds out why
        view = content_after(view, entry.changes)
    if view is None:
        if server is None:
            return 0, 0
        write_plan(db, PagePlan((), (), (record_id,)))
        return (-1, -line_hash(record_id, rev)) if rev > 0 else (0, 0)
    data = record_data(record_id, rev, view, updated_at)
    if server is None:
        write_plan(db, PagePlan((data,), (), ()))
    else:
        write_plan(db, PagePlan((), (data,), ()))
    return 0, 0


# --- records and the digest -----------------------------------------------------------------


def remove_record(db: Any, record_id: str, rev: int) -> None:
    """Delete a record and take it out of the maintained digest (rev 0: never in it)."""
    write_plan(db, PagePlan((), (), (record_id,)))
    if rev > 0:
        adjust_digest(db, -1, -line_hash(record_id, rev))


def adjust_digest(db: Any, count_delta: int, sum_delta: int) -> None:
    """Move the copy's maintained digest (of server revisions: records made offline, at
    rev 0, are not in it)."""
    rows = dict(
        db.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (DIGEST_COUNT_KEY, DIGEST_SUM_KEY)
        ).fetchall()
    )
    count = int(rows.get(DIGEST_COUNT_KEY) or 0) + count_delta
    digest = make_digest(count, int(str(rows.get(DIGEST_SUM_KEY) or "0"), 16) + sum_delta)
    db.executemany(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
        [(DIGEST_COUNT_KEY, digest.count), (DIGEST_SUM_KEY, digest.sum)],
    )


def offline_made_count(db: Any) -> int:
    """How many records the copy holds that were made offline and are not on the server yet
    (rev 0: every one has a pending create), for the record-count check of a digest."""
    row = db.execute(
        "SELECT count(*) FROM records WHERE rev = 0 AND id IN"
        " (SELECT record_id FROM pending_changes WHERE kind = 'create')"
    ).fetchone()
    return int(row[0])


def record_data(record_id: str, rev: int, content: RecordContent, updated_at: float) -> RecordData:
    """A record row to write through the page writer."""
    return RecordData(
        record_id, rev, content.name, dict(content.fields), updated_at, dump_fields(content.fields)
    )


# --- JSON forms -----------------------------------------------------------------------------


def dump_changes(changes: Mapping[str, ValueChange]) -> str:
    return json.dumps(
        {slot: [v.base, v.new] for slot, v in changes.items()},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def dump_content(content: RecordContent | None) -> str | None:
    if content is None:
        return None
    return json.dumps(
        {"name": content.name, "fields": dict(content.fields)},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def load_content(text: str | None) -> RecordContent | None:
    if text is None:
        return None
    data = json.loads(text)
    return RecordContent(str(data["name"]), dict(data["fields"]))


def dump_fields(fields: Mapping[str, str]) -> str:
    return json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"))
