"""Offline accountability in a sync: push the access log before the pull, report the copy after.

* :func:`push_access_log`: the copy's access log (``storage/access_log``), oldest first, in
  batches of at most 500 events and 512 KiB, each deleted from the copy in one transaction
  only after the server's ``200``. The server records each event id once, so a batch whose
  answer was lost (a kill, a broken connection) is simply sent again by the next sync. An
  entry the server would refuse (a damaged or odd row) is dropped with a warning instead of
  blocking every later batch. A failure never fails the sync: it is logged (kind only), the
  entries stay, and the next sync tries again; an older server without the endpoint (404,
  400) is not asked again in this sync.
* :func:`report_copy`: ``PUT .../offline/copies/{client_id}`` after a successful sync, when
  what it says changed or the last one is older than :data:`REPORT_REFRESH_S` (so that a sync
  with nothing new still costs one request); :func:`forget_copy`: ``DELETE`` after the copy
  was deleted. Both best effort: their answers never change the copy or the sync.

Nothing sent holds a value or a search term (see ``protocol/accountability``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hookspecs import Session
from offline_addon.errors import OfflineAddonError
from offline_addon.protocol.accountability import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    CopyReport,
    event_json,
    event_problem,
)
from offline_addon.storage.access_log import (
    StoredEvent,
    copy_report_counts,
    forget_events,
    oldest_events,
    remember_report,
    sent_report,
)
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.transport import SyncClient

log = logging.getLogger(__name__)

PUSH_BUDGET_S = 30.0
"""The longest the log push may take in one sync (a few hundred batches on a fair link);
what is left goes with the next sync."""
REPORT_DEADLINE_S = 5.0
"""A copy report (or its removal) is a few bytes: a server that takes longer is not waited for."""
REPORT_REFRESH_S = 3600.0
"""An unchanged copy is reported again after this long, so that the registry's last sync
(the server's time of the report) is at most this old for a copy that syncs."""


@dataclass(frozen=True)
class LogPush:
    """What one push of the access log did."""

    sent: int = 0
    """Events the server answered (recorded now or known from an earlier resend)."""
    dropped: int = 0
    """Odd entries dropped because the server would refuse them."""
    stopped: str | None = None
    """Why the push stopped before the log was empty (an error's kind), or None."""


def push_access_log(
    client: SyncClient,
    copy: OfflineCopy,
    database: str,
    client_id: str,
    *,
    deadline: float | None = None,
    cancel: Callable[[], bool] | None = None,
    batch_events: int = MAX_BATCH_EVENTS,
) -> LogPush:
    """Send the copy's access log to the server and delete what it answered (see the
    module). Never raises an add-on error: a failure is in ``stopped``."""
    end = time.monotonic() + PUSH_BUDGET_S
    if deadline is not None:
        end = min(end, deadline)
    sent = dropped = 0
    try:
        while not (cancel is not None and cancel()):
            stored = oldest_events(copy, batch_events)
            odd = [s for s in stored if event_problem(s.event) is not None]
            if odd:
                _drop(copy, odd)
                dropped += len(odd)
            batch = _fitting([s for s in stored if event_problem(s.event) is None], client_id)
            if batch:
                client.post_access_events(
                    database, [event_json(s.event, client_id) for s in batch], deadline=end
                )
                forget_events(copy, [s.seq for s in batch])  # only after the 200
                sent += len(batch)
            if not stored:
                return LogPush(sent, dropped)
        return LogPush(sent, dropped, "SyncCancelled")
    except OfflineAddonError as exc:
        log.info(
            "offline access log not pushed (%s); its entries are kept for the next sync",
            type(exc).__name__,
        )
        return LogPush(sent, dropped, type(exc).__name__)


def _drop(copy: OfflineCopy, odd: Sequence[StoredEvent]) -> None:
    problems = sorted({event_problem(s.event) or "" for s in odd})
    log.warning(
        "offline access log: %d entries the server would refuse were dropped (%s)",
        len(odd),
        "; ".join(problems),
    )
    forget_events(copy, [s.seq for s in odd])


def _fitting(events: list[StoredEvent], client_id: str) -> list[StoredEvent]:
    """The longest start of ``events`` whose batch body stays within the byte limit."""
    size = len('{"events":[]}')
    for count, stored in enumerate(events):
        size += len(_encoded(stored, client_id)) + (1 if count else 0)
        if size > MAX_BATCH_BYTES:
            return events[:count]
    return events


def _encoded(stored: StoredEvent, client_id: str) -> bytes:
    payload = event_json(stored.event, client_id)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def report_copy(
    client: SyncClient,
    copy: OfflineCopy,
    database: str,
    client_id: str,
    *,
    record_count: int,
    complete: bool,
    now: float,
) -> bool:
    """Report the copy to the server's registry after a sync when the report changed or the
    last one is older than :data:`REPORT_REFRESH_S` (``now``: local time); returns whether
    the server took one now. Never raises an add-on error."""
    try:
        pending, entries = copy_report_counts(copy)
        report = CopyReport(record_count, pending, entries, complete).as_json()
        last = sent_report(copy)
        if last is not None and last[0] == report and 0 <= now - last[1] < REPORT_REFRESH_S:
            return False
        client.put_copy_report(
            database,
            client_id,
            CopyReport(record_count, pending, entries, complete),
            deadline=time.monotonic() + REPORT_DEADLINE_S,
        )
        remember_report(copy, report, now)
    except OfflineAddonError as exc:
        log.info("offline copy not reported to the server (%s)", type(exc).__name__)
        return False
    return True


def forget_copy(client: SyncClient, database: str, client_id: str) -> bool:
    """Tell the server's registry that this client's copy is deleted (best effort); returns
    whether the server took it."""
    try:
        client.delete_copy_report(
            database, client_id, deadline=time.monotonic() + REPORT_DEADLINE_S
        )
    except OfflineAddonError as exc:
        log.info("the deleted offline copy was not reported (%s)", type(exc).__name__)
        return False
    return True


def before_user_delete(paths: CopyPaths, session: Session) -> None:
    """Before the user deletes the copy while online: push its access log (best effort; the
    caller holds the copy's writer lock)."""
    try:
        with (
            OfflineCopy.open(paths, session.password) as copy,
            SyncClient(session.server_url, session.token, session.client_id) as client,
        ):
            push_access_log(client, copy, session.database, session.client_id)
    except OfflineAddonError as exc:
        log.info("offline access log not pushed before the delete (%s)", type(exc).__name__)


def after_user_delete(session: Session) -> None:
    """After the user deleted the copy while online: tell the server's registry."""
    try:
        with SyncClient(session.server_url, session.token, session.client_id) as client:
            forget_copy(client, session.database, session.client_id)
    except OfflineAddonError as exc:
        log.info("the deleted offline copy was not reported (%s)", type(exc).__name__)
