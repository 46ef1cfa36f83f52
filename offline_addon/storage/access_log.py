"""The offline access log: what the user did with the copy offline, inside the encrypted file.

Every offline login, record shown and field revealed or copied is one row of the copy's
``access_log`` table (migration 8): a client-made id, the kind, the record id, the field's
*name* and the local time; never a value, never a search term. The sync pushes the rows to the
server before it pulls (``sync/accountability``) and deletes them once the server answered
``200``; the server records each id once, so a resend after a lost answer is harmless.

Each append is its own small transaction, made beside a reader that must not wait long: a
sync (in this or another program) may hold the file's write lock for a few pages. An append
waits :data:`APPEND_WAIT_S` for it; when that is not enough the event is held in memory and
written with the next one, or when the session closes (waiting up to :data:`CLOSE_WAIT_S`).
The user's read never fails because of the log. The log does not take the copy's writer lock
(``CopyLock``): a sync holds that for its whole run, and the rows it appends are its own
table's, which no sync rewrites (a rebuild carries them into the new file).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from offline_addon.errors import OfflineAddonError
from offline_addon.protocol.accountability import AccessEvent, AccessKind
from offline_addon.storage.offline_copy import OfflineCopy

log = logging.getLogger(__name__)

APPEND_WAIT_S = 0.25
"""How long an append waits for a sync that writes the file right now (a page's commit takes
milliseconds; a batch of pages may take a second or two, then the event waits in memory)."""
CLOSE_WAIT_S = 5.0
"""How long closing an offline session waits to write the events still held."""
MAX_HELD = 10_000
"""The most events held in memory while the file cannot be written (a disk that stays full):
beyond it the oldest are dropped, with a warning that says how many."""

_INSERT = (
    "INSERT OR IGNORE INTO access_log(event_id, kind, record_id, field, local_time)"
    " VALUES (?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the copy holds it: ``seq`` is its place in the log (oldest first)."""

    seq: int
    event: AccessEvent


class AccessLog:
    """Appends one offline session's events to its copy (thread-safe). ``password`` (never
    shown) lets it follow the copy to a new file when another program replaced it (a
    rebuild), so that no event goes into the file that was replaced."""

    def __init__(
        self,
        copy: OfflineCopy,
        clock: Callable[[], float] = time.time,
        *,
        password: str | None = None,
        wait_s: float = APPEND_WAIT_S,
    ) -> None:
        self._copy = copy
        self._clock = clock
        self._password = password
        self._wait_s = wait_s
        self._held: list[AccessEvent] = []
        self._dropped = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AccessLog(copy={self._copy!r}, held={len(self._held)})"

    @property
    def held(self) -> int:
        """How many events wait in memory for the file."""
        return len(self._held)

    def note(
        self, kind: AccessKind, record_id: str | None = None, field: str | None = None
    ) -> None:
        """Append one event (never raises: a failure keeps it in memory for the next try)."""
        moment = float(self._clock())
        if not math.isfinite(moment):
            moment = time.time()
        event = AccessEvent(str(uuid.uuid4()), kind, record_id, field, moment)
        with self._lock:
            self._held.append(event)
            if len(self._held) > MAX_HELD:
                self._dropped += len(self._held) - MAX_HELD
                del self._held[: len(self._held) - MAX_HELD]
            self._write_held(self._wait_s)

    def flush(self, wait_s: float = CLOSE_WAIT_S) -> bool:
        """Write the events held in memory, waiting up to ``wait_s`` for another writer;
        returns whether none is left. Events that still cannot be written are lost: a warning
        says how many (the session is closing)."""
        with self._lock:
            written = not self._held or self._write_held(wait_s)
            if self._dropped or not written:
                log.warning(
                    "offline access log: %d entries could not be saved in the copy",
                    self._dropped + len(self._held),
                )
                self._dropped = 0
            return written

    def _write_held(self, wait_s: float) -> bool:
        if not self._copy.is_open:
            return False
        try:
            if self._password is not None and self._copy.db_path.exists():
                # The file its name leads to now (a deleted copy is not followed: its
                # session goes on reading what it has).
                self._copy.refresh(self._password)
            with self._copy.short_write(wait_s) as db:
                db.executemany(_INSERT, [_row(event) for event in self._held])
        except OfflineAddonError as exc:
            log.info(
                "offline access log: %d entries wait to be saved (%s)",
                len(self._held),
                type(exc).__name__,
            )
            return False
        self._held.clear()
        return True


def _row(event: AccessEvent) -> tuple[Any, ...]:
    return (event.event_id, event.kind, event.record_id, event.field, event.local_time)


def oldest_events(copy: OfflineCopy, limit: int) -> list[StoredEvent]:
    """The ``limit`` oldest events of the copy's log, as stored (an odd row is returned as it
    is: :func:`~offline_addon.protocol.accountability.event_problem` tells)."""
    with copy.local_read() as db:
        rows = db.execute(
            "SELECT seq, event_id, kind, record_id, field, local_time FROM access_log"
            " ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
    return [StoredEvent(int(row[0]), AccessEvent(*row[1:])) for row in rows]


def forget_events(copy: OfflineCopy, seqs: Sequence[int]) -> None:
    """Delete these events from the log, in one transaction."""
    if not seqs:
        return
    with copy.local_write() as db:
        db.executemany("DELETE FROM access_log WHERE seq = ?", [(seq,) for seq in seqs])


def count_events(copy: OfflineCopy) -> int:
    """How many events the log holds (none sent and answered yet)."""
    with copy.local_read() as db:
        return int(db.execute("SELECT count(*) FROM access_log").fetchone()[0])


def carry_access_log(old: OfflineCopy, fresh: OfflineCopy) -> int:
    """Copy the log of ``old`` into ``fresh`` (a rebuild replaces the file), oldest first;
    returns how many events were carried. An old file too damaged to read loses them
    (logged); a failure of the new one raises (the rebuild stops, the old file stays)."""
    try:
        with old.local_read() as db:
            rows = db.execute(
                "SELECT event_id, kind, record_id, field, local_time FROM access_log ORDER BY seq"
            ).fetchall()
    except OfflineAddonError as exc:
        log.warning("offline access log could not be read from the old copy (%s)", exc)
        return 0
    if rows:
        with fresh.local_write() as db:
            db.executemany(_INSERT, rows)
    return len(rows)


REPORT_KEY = "copy_report_sent"
"""The meta key holding the last copy report the server took (JSON: the report and the local
time it was sent), so that a sync that changed nothing need not send it again."""


def copy_report_counts(copy: OfflineCopy) -> tuple[int, int]:
    """The copy's pending offline changes and unpushed access-log entries."""
    with copy.local_read() as db:
        pending = int(db.execute("SELECT count(*) FROM pending_changes").fetchone()[0])
        entries = int(db.execute("SELECT count(*) FROM access_log").fetchone()[0])
    return pending, entries


def sent_report(copy: OfflineCopy) -> tuple[dict[str, Any], float] | None:
    """The last copy report the server took and the local time it was sent (None: none,
    or what is stored is not one)."""
    with copy.local_read() as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (REPORT_KEY,)).fetchone()
    if row is None:
        return None
    try:
        stored = json.loads(row[0])
        report, at = stored["report"], float(stored["at"])
    except (TypeError, ValueError, KeyError):
        return None
    return (report, at) if isinstance(report, dict) else None


def remember_report(copy: OfflineCopy, report: dict[str, Any], at: float) -> None:
    """Store the copy report the server just took, sent at local time ``at``."""
    value = json.dumps({"report": report, "at": at}, separators=(",", ":"))
    with copy.local_write() as db:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (REPORT_KEY, value))
