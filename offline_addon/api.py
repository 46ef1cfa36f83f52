"""The public Python API of the add-on: manage offline copies from a host, an add-on or a script.

:class:`OfflineCopies` is the one object: list the copies on this machine (no password), create
a copy (the first, manual sync) for a logged-in session, sync one now, report its status, open
one offline for reading, re-key and delete. The hooks (:mod:`offline_addon.plugin`) and the
``psr-client offline ...`` commands (:mod:`offline_addon.commands`) are thin layers over it.

Every synchronisation runs on the add-on's one background thread (owned by
:mod:`offline_addon.runtime.dispatcher`), so syncs never overlap; the blocking methods wait for
it. Errors are
:class:`offline_addon.errors.OfflineAddonError` children with messages a user can act on, and
nothing else: every public method checks its arguments (:class:`errors.InvalidArgument`) and
turns any other exception into an add-on error (logged with its traceback), see
:func:`_guarded`.

Two clocks: ``schedule_clock`` decides what is due (a host drives it through ``on_timer``);
``wall_clock`` stamps contacts with the server and checks offline validity (the system clock,
injectable for tests).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from hookspecs import OfflineCredentials, RecordView, SavedRecord, Session
from offline_addon import errors
from offline_addon.protocol.merge import RECORD_NAME, PendingChange, RecordContent, content_problem
from offline_addon.runtime.clock import ScheduleClock
from offline_addon.runtime.dispatcher import Account, SyncDispatcher, SyncFn
from offline_addon.runtime.status import CopyStatus, Feedback, LogFeedback
from offline_addon.settings import AddonSettings, parse_settings
from offline_addon.storage.access_log import AccessLog
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.files import delete_copy, remove_partial
from offline_addon.storage.local_changes import ConflictEntry, LocalChanges
from offline_addon.storage.login_attempts import read_attempts
from offline_addon.storage.moves import (
    check_folder_usable,
    commit_moves,
    has_pending_moves,
    prepare_moves,
    settle_moves,
)
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.offline_open import open_offline
from offline_addon.storage.paths import CopyPaths, normalise_server_url, resolve_folder
from offline_addon.storage.sidecar import (
    CopyInfo,
    describe,
    list_copies,
    read_sidecar,
    write_sidecar,
)
from offline_addon.sync.accountability import after_user_delete, before_user_delete
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.result import SyncResult

_log = logging.getLogger("offline_addon")
_T = TypeVar("_T")
_P = ParamSpec("_P")


def _guarded(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Only the add-on's exception tree leaves ``method``: anything else (a bug, a library's
    error) is logged with its traceback and raised as an :class:`errors.OfflineAddonError`."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except errors.OfflineAddonError:
            raise
        except Exception as exc:
            _log.error("offline add-on: %s failed unexpectedly", method.__name__, exc_info=exc)
            raise errors.unexpected(exc) from None

    return guarded


def check_time(now: object) -> float:
    """``now`` as a float, or InvalidArgument when it is not a finite real number."""
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise errors.InvalidArgument(
            "The time handed to the Offline Add-on is not a finite "
            "number of seconds; the tick was ignored."
        )
    return float(now)


def check_names(account: object) -> None:
    """InvalidArgument unless ``account`` names a copy: text ``server_url``, ``database``,
    ``username`` and ``client_id`` (a Session, OfflineCredentials or the host's Account)."""
    if not all(
        isinstance(getattr(account, name, None), str)
        for name in ("server_url", "database", "username", "client_id")
    ):
        raise errors.InvalidArgument(
            "The Offline Add-on was handed something that does not name an offline copy "
            "(server, database, user and client as text); nothing was done."
        )


def check_account(account: object, kind: type[Any]) -> None:
    """InvalidArgument unless ``account`` is a ``kind`` (Session, OfflineCredentials,
    SavedRecord) whose fields are all text."""
    if not isinstance(account, kind) or not all(
        isinstance(getattr(account, f.name), str) for f in fields(account)
    ):
        raise errors.InvalidArgument(
            f"The Offline Add-on was handed something other than a {kind.__name__} with text "
            "fields; nothing was done."
        )


RENEW_AFTER_S = 3600.0
"""A copy whose last server contact is older than this is renewed before a logout."""
LOGOUT_RENEW_S = 3.0
"""The longest a logout (or shutdown) waits for that renewal."""

DEFAULT_WAIT_S = 600.0
"""How long the blocking methods wait for the worker by default (a first sync of a large
database over a slow link can take minutes)."""


WRITE_LOCK_WAIT_S = 3.0
"""How long an offline write waits for the copy's writer lock (a sync of the same copy in
another program holds it) before it is refused with :class:`errors.CopyBusy`."""
WRITE_BUSY = (
    "Another program on this computer is synchronising this offline copy right now; nothing "
    "was changed. Try again in a moment."
)
MAX_RECORD_ID_LENGTH = 200


class OfflineCopySession:
    """An offline session over one copy (what ``offline_login`` hands the host): it reads,
    and when the copy's last policy allows offline editing it also writes.

    Implements :class:`hookspecs.OfflineSession` and (contract 1.2)
    :class:`hookspecs.WritableOfflineSession`. Each write is one transaction in the
    encrypted copy through :class:`~offline_addon.storage.local_changes.LocalChanges` (the
    record as the user now sees it, plus its pending-changes entry), taken under the copy's
    writer lock, so that it never interleaves with a sync of the same copy in another
    program; reads show it at once. ``password`` (never shown) reopens the copy when another
    program replaced its file meanwhile (a rebuild). With ``access_log`` (an offline login)
    it also implements :class:`hookspecs.AccessNotingSession`: what the user is shown,
    revealed and copied is noted there (issue 16); without it nothing is noted (online, the
    server sees the user's reads itself). Close it when done."""

    def __init__(
        self,
        copy: OfflineCopy,
        password: str = "",
        *,
        clock: Callable[[], float] = time.time,
        lock_wait_s: float = WRITE_LOCK_WAIT_S,
        access_log: AccessLog | None = None,
    ) -> None:
        self._copy = copy
        self._access = access_log
        self._password = password
        self._clock = clock
        self._lock_wait_s = lock_wait_s
        meta = copy.meta
        self._database = meta.identity.database
        self._username = meta.identity.username
        self._valid_until = meta.valid_until or 0.0
        self._last_sync = meta.last_contact_local_time
        self._complete = meta.complete
        self._expected_total = meta.expected_total
        self._record_count = copy.record_count()

    def __repr__(self) -> str:
        return f"OfflineCopySession(database={self._database!r}, copy={self._copy!r})"

    @property
    def copy_id(self) -> str:
        """The id of the copy this session reads (the name of its file)."""
        return self._copy.paths.copy_id

    @property
    def complete(self) -> bool:
        """False when the copy's first synchronisation (or rebuild) did not finish: it holds
        only part of the records."""
        return self._complete

    @property
    def record_count(self) -> int:
        """How many records the copy holds now (the user's offline creates and deletes, and
        what a sync elsewhere brought, count); the last known number if the file cannot be
        read."""
        try:
            self._record_count = self._copy.record_count()
        except errors.OfflineAddonError as exc:
            _log.info("offline copy: records not counted (%s)", type(exc).__name__)
        return self._record_count

    @property
    def expected_total(self) -> int | None:
        """About how many records the copy holds when complete (None when unknown)."""
        return self._expected_total

    @property
    def database(self) -> str:
        """The online database this copy mirrors."""
        return self._database

    @property
    def username(self) -> str:
        """The user the copy belongs to."""
        return self._username

    @property
    def valid_until(self) -> float:
        """UNIX time after which the copy refuses to open offline."""
        return self._valid_until

    @property
    def last_sync(self) -> float | None:
        """UNIX time of the copy's last contact with the server (None: never)."""
        return self._last_sync

    # -- reading --------------------------------------------------------------------------

    @_guarded
    def list_records(self) -> list[RecordView]:
        """Every record in the copy. A damaged file raises :class:`errors.CopyDamaged`."""
        return self._copy.list_records()

    @_guarded
    def search(self, query: str) -> list[RecordView]:
        """Records whose name or fields match ``query`` (full-text); at most 1000 characters
        and 16 words, no control characters (else :class:`errors.InvalidArgument`)."""
        return self._copy.search(query)

    @_guarded
    def search_ready(self) -> bool:
        """False for a few seconds after a first sync, while the copy's search index is being
        built: :meth:`search` works meanwhile, slower, and matches words a little more widely
        (a word inside another, accents as typed)."""
        return not self._copy.search_pending()

    @_guarded
    def count_matches(self, query: str) -> int:
        """How many records match ``query`` (``search`` returns the first 500 of them)."""
        return self._copy.count_matches(query)

    @_guarded
    def get_record(self, record_id: str) -> RecordView | None:
        """One record, or ``None`` when the copy does not hold it. A record returned counts
        as shown: an offline session notes it in the access log (its id, never a value)."""
        view = self._copy.get(record_id)
        if view is not None and self._access is not None:
            self._access.note("record_shown", view.record_id)
        return view

    # -- what the offline access log notes (contract 1.2, AccessNotingSession) ---------------

    @_guarded
    def find_record(self, record_id: str) -> RecordView | None:
        """One record, or ``None``, without counting it as shown: for finding the record
        the user means (show it with :meth:`get_record`)."""
        return self._copy.get(record_id)

    @_guarded
    def reveal(self, record_id: str, field: str) -> str:
        """The value of ``field`` of a record, for showing it to the user; an offline
        session notes it in the access log (the field's name, never its value).
        InvalidArgument when the copy holds no such record or field."""
        value = self._field(record_id, field)
        if self._access is not None:
            self._access.note("field_revealed", record_id, field)
        return value

    @_guarded
    def note_copied(self, record_id: str, field: str) -> None:
        """The host copied the value of ``field`` of a record (to the clipboard): an
        offline session notes it in the access log. InvalidArgument when the copy holds no
        such record or field."""
        self._field(record_id, field)
        if self._access is not None:
            self._access.note("field_copied", record_id, field)

    def _field(self, record_id: str, field: str) -> str:
        if not isinstance(record_id, str) or not isinstance(field, str):
            raise errors.InvalidArgument(
                "A record and a field are named by their id and name as text; nothing was done."
            )
        view = self._copy.get(record_id)
        if view is None or field not in view.fields:
            raise errors.InvalidArgument(
                "The offline copy holds no such record or no such field in it; nothing was "
                "done. List the records and their fields first."
            )
        return view.fields[field]

    # -- writing (contract 1.2) -------------------------------------------------------------

    @property
    def read_only_reason(self) -> str | None:
        """``None`` when this session may write; else the sentence that says why not and what
        to do (offline editing is not allowed by the server's last policy, or the copy is
        incomplete). Read afresh each time: a sync elsewhere may have changed the policy."""
        try:
            meta = self._copy.meta
        except errors.OfflineAddonError as exc:
            return str(exc)
        if not meta.complete:
            return errors.EDITING_NEEDS_COMPLETE_COPY
        if not meta.offline_editing:
            return errors.EDITING_SWITCHED_OFF
        return None

    @_guarded
    def edit(
        self,
        record_id: str,
        *,
        name: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> RecordView:
        """Change a record offline: ``name`` (None keeps it) and ``fields``, the record's whole
        new set of fields (None keeps them). Returns the record as it is now shown. Refused
        with :class:`errors.OfflineEditingNotAllowed` when the session may not write, with
        :class:`errors.InvalidArgument` for a bad value and with
        :class:`errors.OfflineEditError` when the copy does not hold the record."""
        _check_record_id(record_id)
        if name is not None:
            _check_name(name)
        if fields is not None:
            _check_fields(fields)
        with self._writing() as changes:
            changes.edit_record(record_id, name=name, fields=fields)
        return self._shown(record_id)

    @_guarded
    def edit_fields(
        self,
        record_id: str,
        changes: Mapping[str, str | None],
        *,
        name: str | None = None,
    ) -> RecordView:
        """Change some fields of a record offline: each of ``changes`` sets a field (None
        removes it); the others stay as the copy holds them *at the moment of the write*
        (read under the writer lock, so a sync elsewhere never has its news undone by a
        stale read). ``name`` (None keeps it). Returns the record as now shown; refused like
        :meth:`edit`."""
        _check_record_id(record_id)
        if name is not None:
            _check_name(name)
        if not isinstance(changes, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in changes.items()
        ):
            raise errors.InvalidArgument(
                "Field changes must map field names to text (or None to remove the field); "
                "nothing was changed."
            )
        _check_fields({k: v for k, v in changes.items() if v is not None})
        with self._writing() as local:
            current = self._copy.get(record_id)
            if current is None:
                raise errors.OfflineEditError(
                    "There is no such record in the offline copy; it may have been deleted "
                    "by the last synchronisation."
                )
            fields = dict(current.fields)
            for key, value in changes.items():
                if value is None:
                    fields.pop(key, None)
                else:
                    fields[key] = value
            _check_fields(fields)
            local.edit_record(record_id, name=name, fields=fields)
        return self._shown(record_id)

    def _shown(self, record_id: str) -> RecordView:
        view = self._copy.get(record_id)
        if view is None:  # pragma: no cover - the write above read the record
            raise errors.OfflineEditError("The record is no longer in the offline copy.")
        return view

    @_guarded
    def create(self, name: str, fields: Mapping[str, str]) -> str:
        """Create a record offline; returns its id (made here, so that it is the record's id
        on the server too once pushed). Refused like :meth:`edit`."""
        _check_name(name)
        _check_fields(fields)
        with self._writing() as changes:
            made = changes.create_record(name, fields)
        return made.record_id

    @_guarded
    def delete(self, record_id: str) -> None:
        """Delete a record offline (sent at the next online sync; a record created offline
        and never sent is simply gone). Refused like :meth:`edit`."""
        _check_record_id(record_id)
        with self._writing() as changes:
            changes.delete_record(record_id)

    @_guarded
    def pending_changes(self) -> list[PendingChange]:
        """The changes not yet on the server, in the order they will be sent (values are
        hidden from their ``repr``)."""
        return LocalChanges(self._copy).pending()

    @_guarded
    def conflicts(self) -> list[ConflictEntry]:
        """The conflict list, oldest first: the user's values that are not on the server."""
        return LocalChanges(self._copy).conflicts()

    @_guarded
    def dismiss_conflict(self, conflict_id: int) -> bool:
        """Take a conflict off the list (the server's value stays); False when there was
        none with this id. Allowed even when the session may not write otherwise."""
        _check_conflict_id(conflict_id)
        try:
            with CopyLock(self._copy.paths.lock, wait_s=self._lock_wait_s):
                self._copy.refresh(self._password)
                return LocalChanges(self._copy, self._clock).dismiss_conflict(conflict_id)
        except errors.CopyBusy:
            raise errors.CopyBusy(WRITE_BUSY) from None

    @_guarded
    def keep_mine(self, conflict_id: int) -> RecordView | None:
        """Resolve a conflict with the user's value: it becomes a new pending change on the
        record as it is now (sent at the next online sync) and the conflict is dismissed.
        Returns the record as shown now (None for a delete kept). Refused like :meth:`edit`;
        :class:`errors.OfflineEditError` when the record is gone (copy the value and create
        the record again)."""
        entry = self._conflict(conflict_id)
        view = self._copy.get(entry.record_id)
        if view is None:
            raise errors.OfflineEditError(
                "This record is no longer in the offline copy (it was deleted on the server "
                "or could not be saved); copy your value and create the record again with "
                "'new'. The conflict stays until you dismiss it."
            )
        if entry.slot is None:
            self.delete(entry.record_id)
            shown: RecordView | None = None
        elif entry.slot == RECORD_NAME:
            shown = self.edit(entry.record_id, name=entry.mine or view.name)
        else:
            shown = self.edit_fields(entry.record_id, {entry.slot: entry.mine})
        self.dismiss_conflict(conflict_id)
        return shown

    def _conflict(self, conflict_id: int) -> ConflictEntry:
        _check_conflict_id(conflict_id)
        for entry in LocalChanges(self._copy).conflicts():
            if entry.conflict_id == conflict_id:
                return entry
        raise errors.InvalidArgument(
            f"There is no conflict number {conflict_id}; nothing was changed. See the list of "
            "conflicts."
        )

    @contextmanager
    def _writing(self) -> Iterator[LocalChanges]:
        """The copy's offline edits, under its writer lock, on the file its name leads to
        now; refused when the session may not write (checked again under the lock: a sync
        elsewhere may just have changed the policy)."""
        refusal = self.read_only_reason
        if refusal is not None:
            raise errors.OfflineEditingNotAllowed(refusal)
        try:
            with CopyLock(self._copy.paths.lock, wait_s=self._lock_wait_s):
                self._copy.refresh(self._password)
                refusal = self.read_only_reason
                if refusal is not None:
                    raise errors.OfflineEditingNotAllowed(refusal)
                yield LocalChanges(self._copy, self._clock)
        except errors.CopyBusy:
            raise errors.CopyBusy(WRITE_BUSY) from None

    @property
    def is_open(self) -> bool:
        """Whether the session's copy is still open."""
        return self._copy.is_open

    @_guarded
    def close(self) -> None:
        """Close the copy's file (after writing the access-log entries still held)."""
        if self._access is not None:
            self._access.flush()
        self._copy.close()


OfflineReader = OfflineCopySession
"""The name of the offline session before it could write (kept for existing callers)."""


def _has_control(text: str, allowed: str = "") -> bool:
    return any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text)


def _check_record_id(record_id: object) -> None:
    if (
        not isinstance(record_id, str)
        or not record_id
        or len(record_id) > MAX_RECORD_ID_LENGTH
        or _has_control(record_id)
    ):
        raise errors.InvalidArgument(
            "A record id must be the text of a record's id (as shown by list or search); "
            "nothing was changed."
        )


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise errors.InvalidArgument("A record's name must be text; nothing was changed.")
    if _has_control(name):
        raise errors.InvalidArgument(
            "A record's name cannot hold control characters (such as a line break); "
            "nothing was changed."
        )
    _check_content(RecordContent(name, {}))


def _check_fields(fields: object) -> None:
    if not isinstance(fields, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise errors.InvalidArgument(
            "A record's fields must be names and values, all text; nothing was changed."
        )
    if any(_has_control(key) for key in fields) or any(
        _has_control(value, "\t\n\r") for value in fields.values()
    ):
        raise errors.InvalidArgument(
            "Field names cannot hold control characters, and values only tabs and line "
            "breaks; nothing was changed."
        )
    _check_content(RecordContent("name", dict(fields)))


def _check_content(content: RecordContent) -> None:
    problem = content_problem(content)
    if problem is not None:
        raise errors.InvalidArgument(f"{problem} Nothing was changed.")


def _check_conflict_id(conflict_id: object) -> None:
    if isinstance(conflict_id, bool) or not isinstance(conflict_id, int):
        raise errors.InvalidArgument("A conflict is named by its number; nothing was changed.")


@dataclass(frozen=True)
class CopyOverview:
    """A copy on this machine with its live status (what ``offline status`` shows)."""

    info: CopyInfo | None
    status: CopyStatus
    validity_left_s: float | None
    """Seconds of offline use left (wall clock), ``None`` when unknown or no copy."""
    next_sync_in_s: float | None
    """Seconds until the next automatic sync, ``None`` when none is planned."""
    pending_changes: int | None = None
    """How many offline changes wait to be sent (None: unknown, the copy is not open here)."""
    conflicts: int | None = None
    """How many conflicts wait for the user (None: unknown)."""


class OfflineCopies:
    """Manage the offline copies of one machine.

    ``settings`` are the add-on's settings (defaults when omitted); ``feedback`` receives
    progress and messages (a log when omitted). ``wall_clock`` stamps server contacts and
    checks the offline validity; ``schedule_clock`` decides what is due (the host drives it
    through :meth:`timer`); ``sync`` is the engine (tests may wrap it). The background thread
    starts on first use; call :meth:`shutdown` when done.

    >>> copies = OfflineCopies(AddonSettings(database_path="/tmp/offline-doc"))
    >>> copies.folder
    PosixPath('/tmp/offline-doc')
    >>> copies.shutdown()
    True
    """

    def __init__(
        self,
        settings: AddonSettings | None = None,
        *,
        feedback: Feedback | None = None,
        wall_clock: Callable[[], float] = time.time,
        schedule_clock: ScheduleClock | None = None,
        sync: SyncFn = sync_copy,
    ) -> None:
        self._feedback: Feedback = feedback or LogFeedback()
        self._wall = wall_clock
        self.schedule_clock = schedule_clock or ScheduleClock()
        self._sessions: weakref.WeakValueDictionary[str, OfflineCopySession] = (
            weakref.WeakValueDictionary()
        )
        self._dispatcher = SyncDispatcher(
            settings or AddonSettings(),
            schedule_clock=self.schedule_clock,
            wall_clock=wall_clock,
            feedback=lambda: self._feedback,
            sync=sync,
        )

    # -- configuration ------------------------------------------------------------------------

    @property
    def settings(self) -> AddonSettings:
        """The settings in force."""
        return self._dispatcher.settings

    @property
    def folder(self) -> Path:
        """The folder that holds the copies (the ``database_path`` setting or the default)."""
        return self._dispatcher.folder

    @_guarded
    def set_feedback(self, feedback: Feedback | None) -> None:
        """Send progress and messages to ``feedback`` from now on (``None``: the log)."""
        self._feedback = feedback or LogFeedback()

    @_guarded
    def apply_settings(
        self, raw: AddonSettings | Mapping[str, object], timeout: float = DEFAULT_WAIT_S
    ) -> AddonSettings:
        """Validate and apply new settings without a restart and wait; raises
        :class:`offline_addon.errors.SettingsError` (the old settings stay). A changed
        ``database_path`` moves existing copies (see :mod:`offline_addon.settings`)."""
        new = raw if isinstance(raw, AddonSettings) else parse_settings(raw)
        return _wait(self.request_settings(new), timeout)

    @_guarded
    def request_settings(self, new: AddonSettings) -> Future[AddonSettings]:
        """Apply validated settings on the background thread (serialised with syncs)."""
        if not isinstance(new, AddonSettings):
            raise errors.InvalidArgument("Settings must be an AddonSettings; nothing changed.")
        new_folder = resolve_folder(new.database_path)
        return self._dispatcher.submit(lambda: self._switch(new, new_folder))

    def prepare_settings(
        self, current: Mapping[str, object], proposed: Mapping[str, object]
    ) -> str | None:
        """Check ``proposed`` settings before a host stores them, and when they change the
        folder, copy every copy into the new folder (step 1 of a move; the old copies stay
        complete and listed, see :mod:`offline_addon.storage.moves`). Returns None when the
        host may store them, else the sentence that says why not (nothing is changed then).
        Blocks while the copies are copied. The move is committed when the add-on next uses
        the new folder (:meth:`apply_settings`, or any use after a restart)."""
        try:
            new = parse_settings(proposed)
        except errors.SettingsError as exc:
            return str(exc)
        try:
            old_folder = resolve_folder(parse_settings(current).database_path)
        except errors.OfflineAddonError:
            old_folder = self.folder
        try:
            new_folder = resolve_folder(new.database_path)
            if new_folder == old_folder:
                return None
            check_folder_usable(new_folder)
            if has_pending_moves(old_folder):
                settle_moves(old_folder)  # it is still the folder in force
            ids = [info.copy_id for info in list_copies(old_folder)]
            _log.info("offline add-on: copying %d offline copies into the new folder", len(ids))
            prepare_moves(old_folder, new_folder, ids)
        except errors.OfflineAddonError as exc:
            return f"Offline Add-on setting 'database_path': {exc} The old value stays."
        return None

    def _switch(self, new: AddonSettings, new_folder: Path) -> AddonSettings:
        old_folder = self.folder
        if new_folder != old_folder:
            # The host stored the new folder: commit what was prepared (or, for a host that
            # does not ask first, prepare now), then remove the old copies.
            ensure = [
                info.copy_id
                for info in list_copies(old_folder)
                if not CopyPaths(new_folder, info.copy_id).move_in.exists()
            ]
            prepared = prepare_moves(old_folder, new_folder, ensure)
            commit_moves(new_folder)
            if prepared.kept:
                self._feedback.notify(
                    "Offline copies not moved",
                    f"{len(prepared.kept)} offline copy(ies) stay in {old_folder} because the "
                    "new folder already holds a copy of the same database; delete one of them.",
                    "warning",
                )
        self._dispatcher.apply_settings(new)
        return new

    def _settle(self) -> Path:
        """The folder in force, with what an interrupted move left in it finished."""
        folder = self.folder
        if has_pending_moves(folder):
            settle_moves(folder)
        return folder

    # -- listing and status (no password) -----------------------------------------------------

    @_guarded
    def list(self) -> list[CopyInfo]:
        """The copies in the configured folder, read from their sidecars (no password)."""
        return list_copies(self._settle())

    @_guarded
    def paths_for(self, session: Account) -> CopyPaths:
        """Where the copy of this server, database, user and client lives."""
        check_names(session)
        return self._dispatcher.paths_for(session)

    @_guarded
    def status(self, session: Account, *, edits: bool = False) -> CopyOverview:
        """What the add-on knows about this session's copy: idle or syncing (done/total), last
        result, last error, next automatic sync and offline validity left. With ``edits``, also
        the pending changes and conflicts, counted inside the copy: through the offline session
        open here, else, for an online :class:`Session`, by opening the copy with its password
        (a key derivation, so only on request)."""
        target = self.paths_for(session)
        try:
            info: CopyInfo | None = read_sidecar(target)
        except errors.OfflineAddonError:
            info = None
        live = self._dispatcher.status(target.copy_id)
        left = None
        if info is not None and info.valid_until is not None:
            left = max(0.0, info.valid_until - self._wall())
        next_in = None
        if live.next_sync_at is not None:
            next_in = max(0.0, live.next_sync_at - self.schedule_clock())
        pending, conflicts = self._edit_counts(session, edits and info is not None)
        return CopyOverview(info, live, left, next_in, pending, conflicts)

    def _edit_counts(self, account: Account, wanted: bool) -> tuple[int | None, int | None]:
        """Pending changes and conflicts, counted inside the encrypted copy: through the
        open offline session, else (online) by opening the copy with the session's password;
        (None, None) when neither is at hand."""
        if not wanted:
            return None, None
        try:
            opened = self.open_session_of(account)
            if opened is not None:
                return len(opened.pending_changes()), len(opened.conflicts())
            if not isinstance(account, Session):
                return None, None
            with OfflineCopy.open(self.paths_for(account), account.password) as copy:
                changes = LocalChanges(copy)
                return len(changes.pending()), len(changes.conflicts())
        except errors.OfflineAddonError as exc:
            _log.info("offline copy: edits not counted (%s)", type(exc).__name__)
            return None, None

    # -- synchronising ------------------------------------------------------------------------

    @_guarded
    def request_sync(self, session: Session, *, create: bool = False) -> Future[SyncResult]:
        """Ask for a sync of ``session``'s copy without waiting. ``create=True`` creates the
        copy when there is none (the manual first sync)."""
        check_account(session, Session)
        return self._dispatcher.request_sync(session, create)

    @_guarded
    def create(self, session: Session, timeout: float = DEFAULT_WAIT_S) -> SyncResult:
        """Create the copy for ``session`` (or bring an existing one up to date) and wait."""
        return _wait(self.request_sync(session, create=True), timeout)

    @_guarded
    def sync_now(self, session: Session, timeout: float = DEFAULT_WAIT_S) -> SyncResult:
        """Sync ``session``'s existing copy now and wait; :class:`errors.CopyNotFound` when
        there is none yet."""
        return _wait(self.request_sync(session, create=False), timeout)

    @_guarded
    def cancel(self, session: Account) -> None:
        """Stop the sync of this copy that runs or waits, at its next page (its callers get
        :class:`~offline_addon.errors.SyncCancelled`); every page applied so far stays and
        the next sync continues from there. Returns at once."""
        self._dispatcher.cancel(self.paths_for(session).copy_id)

    # -- offline use ----------------------------------------------------------------------------

    @_guarded
    def open_offline(self, credentials: OfflineCredentials) -> OfflineCopySession:
        """Open the copy without the server: read, and write when the policy allows it.
        Raises CopyNotFound, WrongPassword, CopyExpired (validity since the last server
        contact passed) or ClockWentBack."""
        check_account(credentials, OfflineCredentials)
        self._settle()
        target = self.paths_for(credentials)
        try:
            copy = open_offline(target, credentials.password, self._wall())
        except errors.CopyNotFound:
            raise errors.CopyNotFound.of(credentials.database) from None
        except errors.WrongPassword:
            if target.db.exists() and read_attempts(target).exhausted:
                self._delete_condemned(target)
            raise
        access = AccessLog(copy, self._wall, password=credentials.password)
        access.note("offline_login")
        reader = self._opened(
            OfflineCopySession(copy, credentials.password, clock=self._wall, access_log=access)
        )
        self._dispatcher.warn_of_expiry(
            target.copy_id, reader.database, reader.last_sync, reader.valid_until
        )
        return reader

    def _delete_condemned(self, target: CopyPaths) -> None:
        """Delete a copy whose wrong-password tries are used up once the writer that kept it
        is done: queued behind this process's sync, and retried by the next attempt when
        another program keeps it longer (the copy cannot be opened meanwhile)."""

        def remove() -> None:
            if not read_attempts(target).exhausted:
                return  # deleted (and perhaps created anew) meanwhile
            with CopyLock(target.lock) as lock:
                delete_copy(target)
                lock.remove_file()
            self._dispatcher.forget(target.copy_id)

        self._dispatcher.submit(remove)

    @_guarded
    def renew_before_logout(self, session: Session, bound_s: float = LOGOUT_RENEW_S) -> bool:
        """Before an online session ends (logout, shutdown): renew the copy's offline validity
        with a quick sync when its last contact is older than :data:`RENEW_AFTER_S`, waiting
        at most ``bound_s`` (the sync itself must end by then too: a server that hangs
        cannot hold the logout longer; one still running is asked to stop). Skipped without
        a copy or after a recent contact. Returns whether the copy was renewed."""
        check_account(session, Session)
        bound = check_time(bound_s)
        target = self.paths_for(session)
        if not target.db.exists():
            return False
        last = describe(target).last_sync
        if last is not None and 0.0 <= self._wall() - last < RENEW_AFTER_S:
            return False
        future = self._dispatcher.request_sync(session, False, deadline_s=bound)
        try:
            future.result(max(0.0, bound))
        except FutureTimeout:
            self._dispatcher.cancel(target.copy_id)
            _log.info("offline add-on: the renewal before logout did not finish in %.1f s", bound)
            return False
        except errors.OfflineAddonError as exc:
            _log.info("offline add-on: the renewal before logout failed: %s", type(exc).__name__)
            return False
        return True

    @_guarded
    def open_online(self, session: Session) -> OfflineCopySession:
        """Open the copy of an online ``session`` (to read or resolve its conflicts while
        online; no validity check: the user is online). A change made through it is sent by
        the next sync (:meth:`request_sync`). Raises CopyNotFound or WrongPassword."""
        check_account(session, Session)
        self._settle()
        target = self.paths_for(session)
        try:
            copy = OfflineCopy.open(target, session.password)
        except errors.CopyNotFound:
            raise errors.CopyNotFound.of(session.database) from None
        return self._opened(OfflineCopySession(copy, session.password, clock=self._wall))

    def _opened(self, opened: OfflineCopySession) -> OfflineCopySession:
        self._sessions[opened.copy_id] = opened
        return opened

    @_guarded
    def open_session_of(self, account: Account) -> OfflineCopySession | None:
        """The offline session this object opened for ``account``'s copy and that is still
        open (what ``offline status`` and ``offline conflicts`` use offline), else None."""
        opened = self._sessions.get(self.paths_for(account).copy_id)
        return opened if opened is not None and opened.is_open else None

    # -- re-key and delete ------------------------------------------------------------------

    @_guarded
    def rekey(self, session: Session, old_password: str, timeout: float = DEFAULT_WAIT_S) -> bool:
        """Re-encrypt ``session``'s copy from ``old_password`` to ``session.password`` and
        wait. Returns ``False`` when there is no copy."""
        return _wait(self.request_rekey(session, old_password), timeout)

    @_guarded
    def request_rekey(self, session: Session, old_password: str) -> Future[bool]:
        """Re-key on the background thread (serialised with syncs) without waiting."""
        check_account(session, Session)
        if not isinstance(old_password, str):
            raise errors.InvalidArgument("The old password must be text; nothing was done.")
        return self._dispatcher.submit(lambda: self._rekey(session, old_password))

    def _rekey(self, session: Session, old_password: str) -> bool:
        """Re-key every copy of this user on this computer (the same server, user name and
        client: other databases too), each under its writer lock. Copies that open with
        neither password are left alone (a later sync rebuilds them)."""
        folder = self._settle()
        own = self.paths_for(session)
        found = own.db.exists()
        for info in list_copies(folder):
            if not _same_account(info, session):
                continue
            paths = CopyPaths(folder, info.copy_id)
            try:
                _rekey_one(paths, old_password, session.password)
            except errors.WrongPassword:
                if paths == own:
                    raise
                _log.warning(
                    "offline copy %s: not re-keyed, it opens with neither password",
                    info.copy_id[:12],
                )
        self._dispatcher.rebind(session)
        return found

    @_guarded
    def delete(self, session: Account, timeout: float = DEFAULT_WAIT_S) -> bool:
        """Delete this account's copy (file and sidecars); needs no server, so ``session`` may
        be a :class:`Session`, :class:`OfflineCredentials` or anything naming the copy's
        server, database, user and client. Returns whether one existed."""
        target = self.paths_for(session)

        def remove() -> bool:
            self._settle()
            if not target.folder.is_dir():
                return False
            online = session if isinstance(session, Session) else None
            with CopyLock(target.lock) as lock:
                existed = target.db.exists() or target.sidecar.exists()
                if online is not None and target.db.exists():
                    before_user_delete(target, online)  # its access log first
                delete_copy(target)
                lock.remove_file()
            self._dispatcher.forget(target.copy_id)
            if online is not None and existed:
                after_user_delete(online)  # the server's registry of copies
            return existed

        return _wait(self._dispatcher.submit(remove), timeout)

    # -- what the hooks call: cheap, never blocking ---------------------------------------------

    @_guarded
    def session_started(self, session: Session) -> None:
        """An online login: sync if the copy exists and ``sync_after_login`` is on."""
        check_account(session, Session)
        self._dispatcher.logged_in(session)

    @_guarded
    def session_ended(self, session: Session) -> None:
        """A logout: stop automatic syncs with this session's token."""
        check_account(session, Session)
        self._dispatcher.logged_out(session)

    @_guarded
    def record_saved(self, session: Session, record: SavedRecord) -> bool:
        """A saved record: schedule a debounced sync when the logged-in user saved it and
        ``sync_after_save`` is on. Returns whether it counted."""
        check_account(session, Session)
        check_account(record, SavedRecord)
        return self._dispatcher.record_saved(session, record)

    @_guarded
    def timer(self, now: float) -> bool:
        """The host's tick: learn its time; wake the worker only when something is due.
        Returns whether it woke the worker. ``now`` must be a finite number
        (:class:`errors.InvalidArgument` otherwise: a NaN would make every wait end at once)."""
        return self._dispatcher.timer(check_time(now))

    # -- lifecycle ------------------------------------------------------------------------------

    @_guarded
    def wait_idle(self, timeout: float) -> bool:
        """Wait until no sync runs or is about to (debounced saves included)."""
        return self._dispatcher.wait_idle(timeout)

    @_guarded
    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the background thread (a running sync stops at its next page); returns whether
        it ended within ``timeout``. The object cannot be used afterwards."""
        return self._dispatcher.shutdown(timeout)


def _same_account(info: CopyInfo, session: Session) -> bool:
    return (
        normalise_server_url(info.server_url) == normalise_server_url(session.server_url)
        and info.username == session.username
        and info.client_id == session.client_id
    )


def _rekey_one(paths: CopyPaths, old_password: str, new_password: str) -> None:
    """Re-key one copy (and an interrupted rebuild's ``.partial``) under its writer lock;
    WrongPassword when it opens with neither password. The password generation it records
    goes up by one: a session still holding the old password is then told to log in again
    instead of rebuilding the copy under the old password."""
    with CopyLock(paths.lock):
        try:
            copy = OfflineCopy.open(paths, old_password)
        except errors.CopyNotFound:
            return
        except errors.WrongPassword:
            OfflineCopy.open(paths, new_password).close()  # re-keyed by an earlier attempt?
            return
        with copy:
            copy.rekey(new_password)
            generation = copy.meta.password_generation
            if generation is not None:
                copy.raise_password_generation(generation + 1)
            write_sidecar(paths, copy.sidecar_info())
        if paths.partial.exists():
            try:
                with OfflineCopy.open(paths, old_password, db_path=paths.partial) as partial:
                    partial.rekey(new_password)
            except errors.OfflineAddonError:
                remove_partial(paths)  # a fresh rebuild then starts under the new password


def _wait(future: Future[_T], timeout: float) -> _T:
    try:
        return future.result(timeout)
    except FutureTimeout:
        raise errors.OfflineAddonError(
            "The offline add-on is still busy; see 'psr-client offline status' and try again later."
        ) from None
