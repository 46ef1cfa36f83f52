"""The sync dispatcher: owns the add-on's background thread and decides what it does.

Hooks and API calls hand it events (from any thread, in microseconds); on the worker thread it
applies them to the schedule, runs at most one synchronisation per step, and publishes each
copy's status for cheap reads from any thread. It owns the settings in force, the worker, the
schedule of the logged-in copy and the per-login cache; nobody reaches past it to those.

What the user hears (quiet by default): a sync asked for through the API (a command, a script)
shows its progress and is reported by its caller, so it sends no notification of its own. An
automatic sync shows a progress display only once it receives changes, and that display ends
with what happened ("Up to date: 3,000 records"); a rebuild and a deleted copy are notified; a
failure is notified once per streak of the same kind. The log keeps the details.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

from hookspecs import SavedRecord, Session
from offline_addon import errors
from offline_addon.runtime.clock import ScheduleClock
from offline_addon.runtime.events import (
    ClockMoved,
    LoggedIn,
    LoggedOut,
    RecordSaved,
    SyncRequested,
    WorkerCall,
)
from offline_addon.runtime.expiry import ExpiryNotices, next_check_at
from offline_addon.runtime.login_cache import LoginCache
from offline_addon.runtime.schedule import SyncSchedule, SyncTrigger
from offline_addon.runtime.status import (
    EXPIRY_TITLE,
    CopyStatus,
    Feedback,
    command_text,
    expiry_notice,
)
from offline_addon.runtime.worker import Worker
from offline_addon.settings import AddonSettings
from offline_addon.storage.offline_copy import Opening
from offline_addon.storage.paths import CopyPaths, resolve_folder
from offline_addon.storage.sidecar import CopyInfo, read_sidecar
from offline_addon.sync.engine import index_upkeep, index_waits, wants_upkeep
from offline_addon.sync.result import SyncResult, failure_message, progress_summary, push_words
from offline_addon.sync.transport import SyncClient

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

NO_COPY_HINT_DELAY_S = 1.0
"""The "no copy yet" hint comes this long after a login, so that a login made only to run
``offline create`` stays quiet."""

_NOT_RETRYABLE = (
    errors.AuthenticationRequired,
    errors.CopyNotFound,
    errors.OfflineNotAllowed,
    errors.WrongPassword,
    errors.ShuttingDown,
    errors.ConfigurationError,
)


class SyncFn(Protocol):
    """The engine's entry point (:func:`offline_addon.sync.engine.sync_copy`); injectable so
    that tests can observe or slow down what the dispatcher runs."""

    def __call__(
        self,
        paths: CopyPaths,
        session: Session,
        *,
        create: bool,
        opening: Opening | None = ...,
        progress: Callable[[int, int], None] | None = ...,
        cancel: Callable[[], bool] | None = ...,
        clock: Callable[[], float] = ...,
        client: SyncClient | None = ...,
        deadline_s: float = ...,
        compact: bool = ...,
    ) -> SyncResult: ...


class Account(Protocol):
    """Whose copy: anything with the four fields that name a copy (a :class:`Session`,
    :class:`OfflineCredentials`, or the host's ``Account``)."""

    @property
    def server_url(self) -> str: ...

    @property
    def database(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def client_id(self) -> str: ...


class SyncDispatcher:
    """The add-on's background work. Methods marked "worker thread" run only there."""

    def __init__(
        self,
        settings: AddonSettings,
        *,
        schedule_clock: ScheduleClock,
        wall_clock: Callable[[], float],
        feedback: Callable[[], Feedback],
        sync: SyncFn,
    ) -> None:
        self._settings = settings
        self._now = schedule_clock
        self._wall = wall_clock
        self._feedback = feedback
        self._sync = sync
        self._worker = Worker(
            "offline-addon-sync", self._step, schedule_clock, has_pending=self._has_pending
        )
        self._current: Session | None = None
        self._schedule: SyncSchedule | None = None
        self._status: dict[str, CopyStatus] = {}
        self._hint_at: float | None = None
        self._cache = LoginCache()
        self._cancelled: set[str] = set()
        self._cancel_lock = threading.Lock()
        self._expiry = ExpiryNotices()
        self._watched: CopyInfo | None = None
        """The logged-in copy as its sidecar last said, for the expiry warnings (worker)."""
        self._warn_at = float("inf")
        """Wall-clock time of the logged-in copy's next expiry check (one float: any thread)."""

    # -- the settings and where copies live ------------------------------------------------------

    @property
    def settings(self) -> AddonSettings:
        """The settings in force."""
        return self._settings

    @property
    def folder(self) -> Path:
        """The folder that holds the copies (the ``database_path`` setting or the default)."""
        return resolve_folder(self._settings.database_path)

    def paths_for(self, account: Account) -> CopyPaths:
        """Where the copy of this server, database, user and client lives."""
        return CopyPaths.for_copy(
            self.folder, account.server_url, account.database, account.username, account.client_id
        )

    # -- any thread: cheap, never blocking -------------------------------------------------------

    def status(self, copy_id: str) -> CopyStatus:
        """The latest status of ``copy_id`` (a frozen snapshot)."""
        return self._status.get(copy_id) or CopyStatus(copy_id)

    def logged_in(self, session: Session) -> None:
        """An online login: sync if the copy exists and ``sync_after_login`` is on."""
        self._worker.post(LoggedIn(session))

    def logged_out(self, session: Session) -> None:
        """A logout: stop automatic syncs with this session's token."""
        self._worker.post(LoggedOut(session))

    def record_saved(self, session: Session, record: SavedRecord) -> bool:
        """Whether a saved record counts for a sync (saved by this session's user into its
        database, with ``sync_after_save`` on); if so, a debounced sync for it. Whether the
        session is still the logged-in one is checked in order with the logins, on the worker
        thread."""
        counts = (
            record.saved_by == session.user_id
            and record.database == session.database
            and self._settings.sync_after_save
        )
        if counts:
            self._worker.post(RecordSaved(session))
        return counts

    def timer(self, now: float) -> bool:
        """The host's tick: learn its time; wake the worker only when something is due.
        Returns whether it woke the worker."""
        self._now.observe(now)
        if now < self._worker.due_hint and self._wall() < self._warn_at:
            return False
        self._worker.post(ClockMoved())
        return True

    def request_sync(
        self, session: Session, create: bool, deadline_s: float | None = None
    ) -> Future[SyncResult]:
        """A sync of ``session``'s copy, served on the worker thread (ending within
        ``deadline_s`` once it runs, when given)."""
        future: Future[SyncResult] = Future()
        if not self._worker.post(SyncRequested(session, create, future, deadline_s)):
            future.set_exception(errors.ShuttingDown())
        return future

    def submit(self, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` on the worker thread, serialised with syncs, after closing the cached
        copy (``fn`` may touch the copy's files)."""
        future: Future[_T] = Future()
        if not self._worker.post(WorkerCall(fn, future)):  # type: ignore[arg-type]
            future.set_exception(errors.ShuttingDown())
        return future

    def warn_of_expiry(
        self, copy_id: str, database: str, last_contact: float | None, valid_until: float | None
    ) -> None:
        """Notify once per stage when the copy is near the end of its offline validity (any
        thread; see :mod:`offline_addon.runtime.expiry`)."""
        left = self._expiry.due(copy_id, last_contact, valid_until, self._wall())
        if left is not None:
            self._feedback().notify(EXPIRY_TITLE, expiry_notice(database, left), "warning")

    def cancel(self, copy_id: str) -> None:
        """Stop the sync of ``copy_id`` that runs or waits (at its next page); its callers get
        :class:`~offline_addon.errors.SyncCancelled`. Every page applied so far stays."""
        with self._cancel_lock:
            self._cancelled.add(copy_id)
        self._worker.post(ClockMoved())

    def _cancel_asked(self, copy_id: str) -> bool:
        return self._worker.stopping or copy_id in self._cancelled

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no sync runs or is about to (debounced saves included)."""
        return self._worker.wait_idle(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Stop the worker (a running sync stops at its next page); whether it ended in time."""
        return self._worker.shutdown(timeout)

    def _has_pending(self) -> bool:
        """What ``wait_idle`` waits for: the "no copy yet" hint, or a sync the schedule wants
        now or after a debounce."""
        if self._hint_at is not None:
            return True
        return self._schedule is not None and self._schedule.has_pending(self._now())

    # -- worker thread: the step -----------------------------------------------------------------

    def _step(self, events: Sequence[object], stopping: bool) -> float | None:
        """Apply ``events``, then run what is due: requested syncs first (one per copy, every
        request for it folded in), else the automatic one."""
        requests: dict[str, list[SyncRequested]] = {}
        for event in events:
            if isinstance(event, SyncRequested):
                requests.setdefault(self.paths_for(event.session).copy_id, []).append(event)
            else:
                self._apply(event, stopping)
        if stopping:
            self._cache.close()
            for waiting in requests.values():
                for request in waiting:
                    request.future.set_exception(errors.ShuttingDown())
            return None
        if requests and self._current_copy_id() in requests:
            self._hint_at = None
        if self._hint_at is not None and self._now() >= self._hint_at:
            self._give_hint()
        for copy_id, waiting in requests.items():
            create = any(r.create for r in waiting)
            bounds = [r.deadline_s for r in waiting if r.deadline_s is not None]
            futures = [r.future for r in waiting]
            self._serve(copy_id, waiting[-1].session, create, futures, min(bounds, default=None))
        schedule, session = self._schedule, self._current
        if (
            not requests
            and schedule is not None
            and session is not None
            and schedule.is_due(self._now())
        ):
            self._serve(self.paths_for(session).copy_id, session, False, None)
        self._check_expiry()
        with self._cancel_lock:
            self._cancelled.clear()  # a cancel asks to stop what runs or waits, not later work
        return self._publish_next()

    def _apply(self, event: object, stopping: bool) -> None:
        if isinstance(event, WorkerCall):
            self._cache.close_copy()  # before the call touches the file
            if not stopping or event.future.set_running_or_notify_cancel():
                self._run_call(event)
        elif stopping:
            return
        elif isinstance(event, LoggedIn):
            self._on_login(event.session)
        elif isinstance(event, LoggedOut):
            self._cache.close()
            if self._current is not None and self._current == event.session:
                self._current, self._schedule, self._hint_at = None, None, None
                self._watched, self._warn_at = None, float("inf")
        elif (
            isinstance(event, RecordSaved)
            and self._schedule is not None
            and self._current == event.session
        ):
            self._schedule.trigger(SyncTrigger.SAVE, self._now())

    @staticmethod
    def _run_call(call: WorkerCall) -> None:
        if call.future.done():
            return
        try:
            call.future.set_result(call.fn())
        except BaseException as exc:  # handed to the caller, who raises it in its thread
            call.future.set_exception(_addon_error(exc))

    def _current_copy_id(self) -> str | None:
        session = self._current
        return None if session is None else self.paths_for(session).copy_id

    def _on_login(self, session: Session) -> None:
        now = self._now()
        self._current = session
        self._schedule = SyncSchedule(self._settings.interval_seconds)
        self._watched, self._warn_at = None, float("inf")
        if not self._settings.sync_after_login:
            self._watch_expiry()  # else the login's sync looks, after it renewed the copy
        if self.paths_for(session).db.exists():
            self._schedule.arm(now)
            if self._settings.sync_after_login:
                self._schedule.trigger(SyncTrigger.LOGIN, now)
        else:
            self._hint_at = now + NO_COPY_HINT_DELAY_S

    def _watch_expiry(self) -> None:
        """Look at the logged-in copy's validity afresh (after a login or one of its syncs)."""
        session = self._current
        try:
            self._watched = None if session is None else read_sidecar(self.paths_for(session))
        except errors.OfflineAddonError:
            self._watched = None
        self._warn_at = self._wall() if self._watched is not None else float("inf")

    def _check_expiry(self) -> None:
        """Warn of the logged-in copy's coming end of validity when a stage has begun."""
        watched, now = self._watched, self._wall()
        if watched is None or now < self._warn_at:
            return
        self.warn_of_expiry(
            watched.copy_id, watched.database, watched.last_sync, watched.valid_until
        )
        self._warn_at = next_check_at(watched.last_sync, watched.valid_until, now)

    def _give_hint(self) -> None:
        session = self._current
        self._hint_at = None
        if session is None or self.paths_for(session).db.exists():
            return
        if not self._may_go_offline(session):
            return  # no right, or the database does not allow it: nothing to suggest
        feedback = self._feedback()
        feedback.notify(
            "Offline copy",
            f"There is no offline copy of '{session.database}' on this computer yet. "
            f"Create one with '{command_text(feedback, 'offline', 'create')}' (Account menu > "
            "Offline > Create offline copy) to log in without a server connection.",
        )

    def _may_go_offline(self, session: Session) -> bool:
        """Whether the server lets this user keep a copy; ``True`` when it cannot be asked
        (a hint too many is better than none)."""
        try:
            return self._cache.client(session).policy(session.database).allowed
        except errors.OfflineAddonError:
            return True

    # -- worker thread: what calls change ----------------------------------------------------------

    def apply_settings(self, new: AddonSettings) -> None:
        """Use ``new`` settings from now on (worker thread; a moved folder is done before)."""
        self._settings = new
        if self._schedule is not None:
            self._schedule.set_interval(new.interval_seconds, self._now())

    def rebind(self, session: Session) -> None:
        """The logged-in user's session changed (new password): keep syncing with it."""
        if self._current is not None and self.paths_for(self._current) == self.paths_for(session):
            self._current = session

    def forget(self, copy_id: str) -> None:
        """The copy is gone (worker thread): no automatic syncs for it."""
        if self._schedule is not None and self._current_copy_id() == copy_id:
            self._schedule.disarm()
        self._set(copy_id, next_sync_at=None)

    # -- worker thread: running one sync -------------------------------------------------------

    def _serve(
        self,
        copy_id: str,
        session: Session,
        create: bool,
        futures: list[Future[SyncResult]] | None,
        deadline_s: float | None = None,
    ) -> None:
        """Run one sync of ``copy_id``: for the callers waiting on ``futures`` (a requested
        sync), or automatic (``None``); within ``deadline_s`` when given."""
        requested = futures is not None
        live = [f for f in futures or () if f.set_running_or_notify_cancel()]
        schedule = self._schedule if self._current_copy_id() == copy_id else None
        target = self.paths_for(session)
        opening = self._cache.open(target, session.password, self._wall())
        if not create and not opening.exists:
            if schedule is not None:
                schedule.disarm()
            for future in live:
                future.set_exception(errors.CopyNotFound.of(session.database))
            return
        if schedule is not None:
            schedule.started(self._now())
        try:
            result = self._run(target, session, create, opening, requested, deadline_s)
        except BaseException as exc:
            self._failed(copy_id, exc, schedule, requested)
            if self._current_copy_id() == copy_id:
                self._watch_expiry()
            for future in live:  # only the add-on's own errors reach the caller
                future.set_exception(_addon_error(exc))
            return
        self._succeeded(copy_id, result, schedule, requested)
        if self._current_copy_id() == copy_id:
            self._watch_expiry()
        for future in live:
            future.set_result(result)
        # (Opening a closed copy for nothing would cost its KDF; a copy kept open whose
        # search index still waits to be built, after a first sync whose upkeep was skipped,
        # gets it now.)
        kept = self._cache.open_copy(target.copy_id)
        if wants_upkeep(result) or (kept is not None and index_waits(kept)):
            self._index_upkeep(target, session, result)

    def _index_upkeep(self, target: CopyPaths, session: Session, result: SyncResult) -> None:
        """The search index's upkeep after a sync with changes, once its callers have the
        result (the copy was searchable before): a compaction after a large sync, else a
        bounded merge of small segments, so that the next syncs and searches stay fast. The
        copy stays open for the next sync; any failure only leaves the index as it was."""
        try:
            opening = self._cache.open(target, session.password, self._wall())
            if opening.copy is not None and opening.problem is None:
                index_upkeep(target, opening.copy, result)
        except errors.OfflineAddonError as exc:
            _log.info("offline copy: no index upkeep (%s)", type(exc).__name__)

    def _run(
        self,
        target: CopyPaths,
        session: Session,
        create: bool,
        opening: Opening,
        requested: bool,
        deadline_s: float | None,
    ) -> SyncResult:
        feedback = self._feedback()
        self._set(target.copy_id, state="syncing", done=0, total=0)
        text = f"Synchronising the offline copy of '{session.database}'"
        shown = requested  # an automatic sync shows itself only once changes arrive
        if shown:
            feedback.progress(0, 0, text)
        last = [0, 0]

        def progress(done: int, total: int) -> None:
            nonlocal shown
            last[:] = [done, total]
            self._set(target.copy_id, done=done, total=total)
            shown = shown or done > 0
            if shown and done < total:  # the end is told with the outcome, below
                feedback.progress(done, total, text)

        ended = "Stopped"
        bound = {} if deadline_s is None else {"deadline_s": deadline_s}
        try:
            try:
                result = self._sync(
                    target,
                    session,
                    create=create,
                    opening=opening,
                    progress=progress,
                    cancel=lambda: self._cancel_asked(target.copy_id),
                    clock=self._wall,
                    client=self._cache.client(session),
                    **bound,
                    compact=False,  # after the callers have the result: see _index_upkeep
                )
            except BaseException:
                self._cache.close_copy()  # its state is unknown; the next sync opens it afresh
                raise
            if result.outcome == "wiped":
                self._cache.forget_copy()
            ended = progress_summary(result)
            return result
        except errors.SyncCancelled:
            if self._worker.stopping:
                raise errors.ShuttingDown() from None
            raise
        finally:
            if shown:
                feedback.progress(last[0], -1, ended)

    def _succeeded(
        self, copy_id: str, result: SyncResult, schedule: SyncSchedule | None, requested: bool
    ) -> None:
        now = self._now()
        if schedule is not None:
            schedule.succeeded(now)
            if result.outcome == "wiped":
                schedule.disarm()
            else:
                schedule.arm(now)
        self._set(
            copy_id,
            state="idle",
            last_result=result,
            last_error=None,
            syncs=self.status(copy_id).syncs + 1,
        )
        if requested:
            return  # the caller reports the result (its message says what the push did)
        if result.outcome == "wiped":
            self._feedback().notify("Offline copy deleted", result.message, "warning")
            return
        if result.outcome == "repaired":
            self._feedback().notify("Offline copy rebuilt", result.message)
        self._tell_pushes(result)

    def _tell_pushes(self, result: SyncResult) -> None:
        """After an automatic sync (the one after a login, say) that sent offline changes or
        met conflicts: tell the user, as a warning (which a host keeps visible) when there
        are conflicts to resolve."""
        words = push_words(result.changes_pushed, result.new_conflicts)
        if not words:
            return
        feedback = self._feedback()
        if result.new_conflicts:
            see = command_text(feedback, "offline", "conflicts")
            words = f"{words[:-1]} (see '{see}')."
        feedback.notify("Offline changes", words, "warning" if result.new_conflicts else "info")

    def _failed(
        self, copy_id: str, exc: BaseException, schedule: SyncSchedule | None, requested: bool
    ) -> None:
        feedback = self._feedback()
        message = failure_message(exc, lambda group, name: command_text(feedback, group, name))
        self._set(copy_id, state="idle", last_error=message, syncs=self.status(copy_id).syncs + 1)
        if isinstance(exc, errors.OfflineAddonError):
            _log.info("offline sync of %s failed: %s", copy_id[:12], type(exc).__name__)
        else:
            _log.error("offline sync of %s failed unexpectedly", copy_id[:12], exc_info=exc)
        if isinstance(exc, errors.SyncCancelled):
            if schedule is not None:
                schedule.stopped(self._now())
            return
        notify = not requested  # a caller reports its own failure
        if schedule is not None:
            retry_after = exc.retry_after if isinstance(exc, errors.ServerBusy) else None
            verdict = schedule.failed(
                self._now(),
                type(exc).__name__,
                retry_after=retry_after,
                retryable=not isinstance(exc, _NOT_RETRYABLE),
            )
            notify = notify and verdict.notify
            if isinstance(exc, errors.CopyNotFound | errors.OfflineNotAllowed):
                schedule.disarm()
        if notify and not isinstance(exc, errors.ShuttingDown):
            feedback.notify("Offline synchronisation failed", message, "warning")

    # -- status ---------------------------------------------------------------------------------

    def _set(self, copy_id: str, **changes: object) -> None:
        self._status[copy_id] = replace(self.status(copy_id), **changes)  # type: ignore[arg-type]

    def _publish_next(self) -> float | None:
        schedule = self._schedule
        due = schedule.next_due() if schedule is not None else None
        copy_id = self._current_copy_id()
        if copy_id is not None:
            planned = due if schedule is not None and schedule.armed else None
            self._set(copy_id, next_sync_at=planned)
        if self._hint_at is not None:
            due = self._hint_at if due is None else min(due, self._hint_at)
        return due


def _addon_error(exc: BaseException) -> Exception:
    """What a caller of the API receives for ``exc``: only the add-on's own error types cross
    its API (an unexpected one is logged where it happened and named here in words)."""
    if isinstance(exc, errors.OfflineAddonError):
        return exc
    if not isinstance(exc, Exception):
        return errors.ShuttingDown()
    _log.error("offline add-on: unexpected %s on the worker", type(exc).__name__, exc_info=exc)
    return errors.unexpected(exc)
