"""Push before pull: the offline changes of a copy go to the server as conditional writes.

Each pending entry, in queue order (``storage/local_changes``), is merged with what is known
of the server's record (``protocol/merge``: at first its base), marked as attempted in its own
transaction, then sent: a ``PUT`` with ``If-Match`` on the base revision, a create with
``If-None-Match: *`` under the client-made id, or a ``DELETE`` with ``If-Match``. The
answer settles it:

- the server holds it (``200``/``201``/``204``, also a recognised resend): ``mark_pushed``,
  which shows the server's record in the same transaction;
- the revision moved on (``412``/``409``): merged again with the server's current record
  (from the answer, or asked for) and sent again, at most :data:`SENDS_PER_CHANGE` times in
  all; then the entry stays pending for the next sync;
- refused (``403``/``404``/``400``) or deleted (``410``): ``mark_refused``, the user's values
  go to the conflict list (a delete of a deleted record is what the user wanted: done).

``X-Change-Id`` is the entry's change id, with ``:<rev>`` for a conditional write on a
revision: the same write (same base, same content) always carries the same id, so a resend
after a lost answer (a kill, a timeout) is recognised by the server and never applied twice,
while a merged resend on a newer revision is a new write. Network failures, ``401``,
``429``/``503`` end the push (and the sync) with the entry still pending.

``cancel`` is asked between two entries; an entry whose write the server answered is settled
even when the run was cancelled meanwhile, since the copy then records what the server holds
(a resend would be recognised, but costs a round trip).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from offline_addon.errors import ProtocolError, SyncCancelled
from offline_addon.protocol.answers import WriteAnswer
from offline_addon.protocol.merge import (
    MergeResult,
    PendingChange,
    ServerGone,
    ServerRecord,
    merge_change,
)
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.sync.transport import SyncClient

log = logging.getLogger(__name__)

SENDS_PER_CHANGE = 3
"""Writes of one entry per sync: the first on its base, two more merged with a record that
moved on meanwhile (another user saving the same record at that very moment); a record that
keeps moving waits for the next sync."""

Theirs = ServerRecord | ServerGone | None


@dataclass
class PushTally:
    """What a push did: entries the server now holds, the names of the records whose change
    it refused, and how many entries stay pending (the record kept moving)."""

    pushed: int = 0
    refused: list[str] = field(default_factory=list)
    kept: int = 0


def push_changes(
    copy: OfflineCopy,
    client: SyncClient,
    database: str,
    *,
    deadline: float | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PushTally:
    """Push the pending changes of ``copy`` to ``database`` (see the module docstring).
    Raises the transport's errors (the entry being sent stays pending) and
    :class:`~offline_addon.errors.SyncCancelled` between two entries."""
    return _Push(LocalChanges(copy), client, database, deadline).run(cancel)


class _ChangedMeanwhile(Exception):
    """The entry was changed by an edit in another program after it was read (internal)."""


class _Push:
    def __init__(
        self, local: LocalChanges, client: SyncClient, database: str, deadline: float | None
    ) -> None:
        self.local = local
        self.client = client
        self.database = database
        self.deadline = deadline
        self.tally = PushTally()

    def run(self, cancel: Callable[[], bool] | None) -> PushTally:
        done: set[int] = set()
        waiting: set[str] = set()  # records whose earlier entry stays pending
        while True:
            entry = next(
                (
                    e
                    for e in self.local.pending()
                    if e.seq not in done and e.record_id not in waiting
                ),
                None,
            )
            if entry is None:
                return self.tally
            if cancel is not None and cancel():
                raise SyncCancelled
            try:
                settled = self._push(entry)
            except _ChangedMeanwhile:
                continue  # read it again (an edit made elsewhere joined it)
            done.add(entry.seq)
            if not settled:
                waiting.add(entry.record_id)
                self.tally.kept += 1

    def _push(self, entry: PendingChange) -> bool:
        """Settle one entry; False when it stays pending (the record kept moving)."""
        theirs: Theirs = None
        if entry.kind != "create" and (entry.base_rev is None or entry.base_record is None):
            theirs = self._current(entry)  # follows an entry whose outcome it never saw
        sends = 0
        while True:
            merge = merge_change(entry, theirs)
            if merge.action == "nothing":
                # The server holds what the user wanted already (counted as saved), or
                # every slot conflicts (nothing saved: the conflicts say so).
                self._pushed(entry, _merged_with(entry, theirs), merge, saved=not merge.conflicts)
                return True
            if merge.action == "report":
                self._refused(entry, merge, theirs)
                return True
            if sends == SENDS_PER_CHANGE:
                log.info("offline change kept for the next sync: its record kept moving")
                return False
            sends += 1
            answer = self._send(entry, merge)
            if answer.status == "done":
                if merge.action == "delete":
                    self._pushed(entry, None, merge)
                    return True
                if answer.record is None:  # a 204 to a PUT
                    raise ProtocolError(
                        "The server answered a saved record without the record; the change "
                        "stays pending. Tell your administrator."
                    )
                self._pushed(entry, answer.record, merge)
                return True
            theirs = self._theirs_after(entry, answer)

    def _send(self, entry: PendingChange, merge: MergeResult) -> WriteAnswer:
        if not self.local.mark_attempted(entry.change_id):  # its own transaction, first
            raise _ChangedMeanwhile

        wire_id = entry.change_id
        if merge.if_match is not None:
            wire_id = f"{wire_id}:{merge.if_match}"
        if merge.action == "delete":
            assert merge.if_match is not None  # a delete always has a base (protocol/merge)
            return self.client.delete_record(
                self.database,
                entry.record_id,
                if_match=merge.if_match,
                change_id=wire_id,
                offline_time=entry.local_time,
                deadline=self.deadline,
            )
        assert merge.send is not None
        return self.client.put_record(
            self.database,
            entry.record_id,
            merge.send,
            if_match=merge.if_match,
            change_id=wire_id,
            offline_time=entry.local_time,
            deadline=self.deadline,
        )

    def _theirs_after(self, entry: PendingChange, answer: WriteAnswer) -> Theirs:
        """What the server holds after a write it did not apply."""
        if answer.status == "moved":
            return answer.record or self._current(entry)
        if answer.status == "deleted":
            return "deleted"
        log.info("offline change refused by the server (%s)", answer.code or "no code")
        return "refused"

    def _current(self, entry: PendingChange) -> ServerRecord | ServerGone:
        """The server's record as the user may read it now ("refused" when it may not)."""
        record = self.client.get_record(self.database, entry.record_id, deadline=self.deadline)
        return "refused" if record is None else record

    def _pushed(
        self,
        entry: PendingChange,
        record: ServerRecord | None,
        merge: MergeResult,
        *,
        saved: bool = True,
    ) -> None:
        self.local.mark_pushed(entry.change_id, record, merge.conflicts)
        self.tally.pushed += saved

    def _refused(self, entry: PendingChange, merge: MergeResult, theirs: Theirs) -> None:
        """Nothing of the entry can go to the server: its values go to the conflict list and
        the copy shows the server's record (asked for when refused: the user may still
        read it), or none when it is gone."""
        name = self.local.record_name(entry)
        if theirs == "refused" and entry.kind != "create":
            theirs = self._current(entry)
        server = theirs if isinstance(theirs, ServerRecord) else None
        self.local.mark_refused(
            entry.change_id,
            merge.reason or "refused",
            merge.conflicts,
            server_record=server,
            gone=server is None and entry.kind != "create",
        )
        if merge.reason != "conflict":
            self.tally.refused.append(name)


def _merged_with(entry: PendingChange, theirs: Theirs) -> ServerRecord | None:
    """The server's record a merge of ``entry`` was made against: ``theirs`` when asked, else
    the entry's base (an entry that follows a settled one has it from that push); None when
    neither is known (a delete the server holds already: the record is gone)."""
    if isinstance(theirs, ServerRecord):
        return theirs
    if entry.kind != "delete" and entry.base_rev is not None and entry.base_record is not None:
        return ServerRecord(entry.base_rev, entry.base_record)
    return None
