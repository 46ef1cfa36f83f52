"""The sync agent: what the add-on's background thread does with the events hooks post.

It applies login, logout, save and timer events to the schedule, runs at most one
synchronisation per step, and publishes each copy's status for cheap reads from any thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from hookspecs import Session
from offline_addon import errors
from offline_addon.runtime.events import Call, Login, Logout, Saved, SyncRequest
from offline_addon.runtime.login_cache import HeldClient, HeldCopy
from offline_addon.runtime.schedule import SyncSchedule, SyncTrigger
from offline_addon.runtime.status import CopyStatus, Feedback, ShuttingDown
from offline_addon.runtime.worker import Worker
from offline_addon.settings import AddonSettings
from offline_addon.storage import paths
from offline_addon.sync.engine import SyncResult

_log = logging.getLogger(__name__)

class _Abandon(Exception):
    """Raised from the progress callback to stop a sync at its next page on shutdown."""


SyncFn = Callable[..., SyncResult]


class SyncAgent:
    """Applies events and runs synchronisations; used only on the worker thread, except the
    read-only :meth:`status` and :meth:`has_pending`."""

    def __init__(
        self,
        settings: AddonSettings,
        folder: Callable[[], Path],
        schedule_clock: Callable[[], float],
        wall_clock: Callable[[], float],
        feedback: Callable[[], Feedback],
        sync: SyncFn,
    ) -> None:
        self.settings = settings
        self._folder = folder
        self._now = schedule_clock
        self._wall = wall_clock
        self._feedback = feedback
        self._sync = sync
        self.worker = Worker("offline-addon-sync", self.step, schedule_clock,
                             has_pending=self.has_pending)
        self._current: Session | None = None
        self._schedule: SyncSchedule | None = None
        self._status: dict[str, CopyStatus] = {}
        self._hint_at: float | None = None
        self._held = HeldCopy()
        self._client = HeldClient()

    # -- read from any thread ---------------------------------------------------------------

    def status(self, copy_id: str) -> CopyStatus:
        """The latest status of ``copy_id`` (a frozen snapshot)."""
        return self._status.get(copy_id) or CopyStatus(copy_id)

    def has_pending(self) -> bool:
        """Whether a sync (or the "no copy yet" hint) is wanted now or after a debounce, not
        held back by a back-off (what ``wait_idle`` waits for; a distant interval sync does
        not count)."""
        if self._hint_at is not None:  # the "no copy yet" hint is due in a moment
            return True
        schedule = self._schedule
        if schedule is None or schedule.running:
            return False
        if schedule.urgent or schedule.login_at is not None:
            return True
        if schedule.retry_at is not None:
            return False
        return schedule.save_last is not None or schedule.interval_due(self._now())

    def current_copy_id(self) -> str | None:
        """The copy of the logged-in session, if any."""
        session = self._current
        return None if session is None else self.paths_for(session).copy_id

    def paths_for(self, session: Session) -> paths.CopyPaths:
        """The file paths of ``session``'s copy in the configured folder."""
        return paths.CopyPaths.for_copy(self._folder(), session.server_url, session.database,
                                        session.username, session.client_id)

    # -- the worker's step --------------------------------------------------------------------

    def step(self, events: Sequence[object], stopping: bool) -> float | None:
        """Apply ``events``, then run what is due: requested syncs first (one per copy, every
        request for it folded in), else the automatic one."""
        requests: dict[str, list[SyncRequest]] = {}
        for event in events:
            if isinstance(event, SyncRequest):
                requests.setdefault(self.paths_for(event.session).copy_id, []).append(event)
            else:
                self._apply(event, stopping)
        if stopping:
            self._held.close()
            self._client.close()
            for waiting in requests.values():
                for request in waiting:
                    request.future.set_exception(ShuttingDown())
            return None
        if requests and self.current_copy_id() in requests:
            self._hint_at = None
        if self._hint_at is not None and self._now() >= self._hint_at:
            self._give_hint()
        for copy_id, waiting in requests.items():
            create = any(r.create for r in waiting)
            self._serve(copy_id, waiting[-1].session, create, [r.future for r in waiting])
        schedule, session = self._schedule, self._current
        if (not requests and schedule is not None and session is not None
                and schedule.is_due(self._now())):
            self._serve(self.paths_for(session).copy_id, session, False, [])
        return self._publish_next()

    def _apply(self, event: object, stopping: bool) -> None:
        if isinstance(event, Call | Logout) or stopping:
            self._held.close()  # before a call touches the file; at logout; at shutdown
            if not isinstance(event, Call):
                self._client.close()
        if isinstance(event, Call):
            if stopping and not event.future.set_running_or_notify_cancel():
                return
            self._run_call(event)
        elif stopping:
            return
        elif isinstance(event, Login):
            self._on_login(event.session)
        elif isinstance(event, Logout):
            if self._current is not None and self._current == event.session:
                self._current, self._schedule, self._hint_at = None, None, None
        elif (isinstance(event, Saved) and self._schedule is not None
              and self._current == event.session):
            self._schedule.trigger(SyncTrigger.SAVE, self._now())

    def _run_call(self, call: Call) -> None:
        if call.future.done():
            return
        try:
            call.future.set_result(call.fn())
        except BaseException as exc:  # handed to the caller, who raises it in its thread
            call.future.set_exception(exc)

    def _on_login(self, session: Session) -> None:
        now = self._now()
        self._current = session
        self._schedule = SyncSchedule(self.settings.interval_seconds)
        if self.paths_for(session).db.exists():
            self._schedule.arm(now)
            if self.settings.sync_after_login:
                self._schedule.trigger(SyncTrigger.LOGIN, now)
        else:
            # Told a moment later, so that a login made to run 'offline create' stays quiet.
            self._hint_at = now + NO_COPY_HINT_DELAY_S

    def _give_hint(self) -> None:
        session = self._current
        self._hint_at = None
        if session is None or self.paths_for(session).db.exists():
            return
        if not self._may_go_offline(session):
            return  # no right, or the database does not allow it: nothing to suggest
        self._feedback().notify(
            "Offline copy",
            f"There is no offline copy of '{session.database}' on this computer yet. "
            "Create one with 'psr-client offline create' (Account menu > Offline > "
            "Create offline copy) to log in without a server connection.",
        )

    def _may_go_offline(self, session: Session) -> bool:
        """Whether the server lets this user keep a copy; ``True`` when it cannot be asked
        (a hint too many is better than none)."""
        try:
            return self._client.get(session).policy(session.database).allowed
        except errors.OfflineAddonError:
            return True

    def apply_settings(self, new: AddonSettings) -> None:
        """Use ``new`` settings from now on (worker thread; a moved folder is done before)."""
        self.settings = new
        if self._schedule is not None:
            self._schedule.set_interval(new.interval_seconds, self._now())

    def rebind(self, session: Session) -> None:
        """The logged-in user's session changed (new password): keep syncing with it."""
        if self._current is not None and self.paths_for(self._current) == self.paths_for(session):
            self._current = session

    def forget(self, copy_id: str) -> None:
        """The copy is gone: no automatic syncs for it."""
        if self._schedule is not None and self.current_copy_id() == copy_id:
            self._schedule.disarm()
        self._set(copy_id, next_sync_at=None)

    # -- running one sync -----------------------------------------------------------------------

    def _serve(self, copy_id: str, session: Session, create: bool,
               futures: list[Future[SyncResult]]) -> None:
        live = [f for f in futures if f.set_running_or_notify_cancel()]
        schedule = self._schedule if self.current_copy_id() == copy_id else None
        target = self.paths_for(session)
        if not create and not target.db.exists():
            if schedule is not None:
                schedule.disarm()
            for future in live:
                future.set_exception(errors.CopyNotFound(_NO_COPY))
            return
        if schedule is not None:
            schedule.started(self._now())
        try:
            result = self._run(target, session, create)
        except BaseException as exc:
            self._failed(copy_id, session, exc, schedule)
            for future in live:
                future.set_exception(exc if isinstance(exc, Exception) else ShuttingDown())
            return
        self._succeeded(copy_id, session, result, schedule)
        for future in live:
            future.set_result(result)

    def _run(self, target: paths.CopyPaths, session: Session, create: bool) -> SyncResult:
        feedback = self._feedback()
        self._set(target.copy_id, state="syncing", done=0, total=0)
        text = f"Synchronising the offline copy of '{session.database}'"
        feedback.progress(0, 0, text)
        last = [0, 0]

        def progress(done: int, total: int) -> None:
            if self.worker.stopping:
                raise _Abandon
            last[:] = [done, total]
            self._set(target.copy_id, done=done, total=total)
            feedback.progress(done, total, text)

        ended = "Stopped"
        try:
            copy = self._held.get(target, session.password)
            try:
                result = self._sync(target, session, create=create, progress=progress,
                                    clock=self._wall, copy=copy,
                                    client=self._client.get(session))
            except BaseException:
                self._held.close()  # its state is unknown; the next sync opens it afresh
                raise
            if result.outcome == "wiped":
                self._held.forget()
            ended = "Up to date" if result.outcome != "wiped" else "Offline copy deleted"
            return result
        except _Abandon:
            raise ShuttingDown() from None
        finally:
            if not (last[1] > 0 and last[0] >= last[1]):  # else the display has ended
                feedback.progress(last[0], -1, ended)

    def _succeeded(self, copy_id: str, session: Session, result: SyncResult,
                   schedule: SyncSchedule | None) -> None:
        now = self._now()
        if schedule is not None:
            schedule.succeeded(now)
            if result.outcome == "wiped":
                schedule.disarm()
            else:
                schedule.arm(now)
        self._set(copy_id, state="idle", last_result=result, last_error=None,
                  syncs=self.status(copy_id).syncs + 1)
        if result.outcome == "wiped":
            self._feedback().notify("Offline copy deleted", result.message, "warning")
            return
        self._feedback().notify(
            "Offline synchronisation completed",
            f"{session.database}: {result.record_count} records "
            f"({result.added} added, {result.changed} changed, {result.removed} removed).",
        )

    def _failed(self, copy_id: str, session: Session, exc: BaseException,
                schedule: SyncSchedule | None) -> None:
        message = failure_message(exc)
        self._set(copy_id, state="idle", last_error=message,
                  syncs=self.status(copy_id).syncs + 1)
        if isinstance(exc, errors.OfflineAddonError):
            _log.warning("offline sync of %s failed: %s", copy_id[:12], type(exc).__name__)
        else:
            _log.error("offline sync of %s failed unexpectedly", copy_id[:12], exc_info=exc)
        notify = True
        if schedule is not None:
            retry_after = exc.retry_after if isinstance(exc, errors.ServerBusy) else None
            verdict = schedule.failed(self._now(), type(exc).__name__, retry_after=retry_after,
                                      retryable=not isinstance(exc, _NOT_RETRYABLE))
            notify = verdict.notify
            if isinstance(exc, errors.CopyNotFound | errors.OfflineNotAllowed):
                schedule.disarm()
        if notify and not isinstance(exc, ShuttingDown):
            self._feedback().notify("Offline synchronisation failed", message, "warning")

    # -- status ---------------------------------------------------------------------------------

    def _set(self, copy_id: str, **changes: object) -> None:
        self._status[copy_id] = replace(self.status(copy_id), **changes)  # type: ignore[arg-type]

    def _publish_next(self) -> float | None:
        schedule = self._schedule
        due = schedule.next_due() if schedule is not None else None
        copy_id = self.current_copy_id()
        if copy_id is not None:
            planned = due if due is not None and due != float("-inf") else None
            if schedule is not None and not schedule.armed:
                planned = None
            self._set(copy_id, next_sync_at=planned)
        if self._hint_at is not None:
            due = self._hint_at if due is None else min(due, self._hint_at)
        return due


NO_COPY_HINT_DELAY_S = 1.0
_NO_COPY = ("There is no offline copy for this database yet; create one with "
            "'psr-client offline create'.")
_NOT_RETRYABLE = (errors.AuthenticationRequired, errors.CopyNotFound, errors.OfflineNotAllowed,
                  errors.WrongPassword, ShuttingDown)


def failure_message(exc: BaseException) -> str:
    """A user-facing sentence for a failed sync: what went wrong and what to do."""
    if isinstance(exc, errors.AuthenticationRequired):
        return "The server wants you to log in again; log out and in, then sync again."
    if isinstance(exc, errors.WrongPassword):
        return ("The offline copy is encrypted with a different password. Delete it with "
                "'psr-client offline delete' and create it again with 'psr-client offline "
                "create'.")
    if isinstance(exc, errors.ServerUnreachable | errors.ServerBusy | errors.ServerError):
        return f"{exc} The add-on tries again by itself later."
    if isinstance(exc, errors.OfflineAddonError):
        return str(exc)
    return ("An unexpected error stopped the offline synchronisation; it is retried later. "
            "If this repeats, look at the host's log.")
