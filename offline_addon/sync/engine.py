"""The sync engine: keep an offline copy equal to what the server lets the user export.

One run of an incremental sync starts with the feed head, sent with the stored ETag: head is
also the policy check (403: wipe the copy and say why), and its ETag covers the feed position
and the user's validity, so a ``304`` means only the contact time is recorded (one request).
Otherwise pages are pulled from the stored cursor and each is committed together with the
cursor it leads to (and the copy's digest, adjusted by what the page changed): two requests
for a small change. A first sync, a rebuild or a copy without a stored ETag asks for the policy
first (which also answers when offline use is not allowed), then head, then the feed.

Push before pull: a run on a copy that opens first pushes its offline changes
(:mod:`~offline_addon.sync.push`), before head or the policy, so that a revoked offline right
deletes the copy only after its changes were sent as ordinary online writes (what is left is
named in the result); a pull never overwrites a change still pending, and a rebuild carries
the queue and the conflict list into its new file.

The last page's digest is compared on every sync; a mismatch, a 410, a copy that no longer
opens with the user's current password, belongs to another user id or whose file is damaged
(also when that shows only while a page is written) all lead to a full sync into a fresh file
(``.partial``) that replaces the old one only when complete. An interrupted
rebuild keeps its ``.partial`` and the next sync resumes it; an interrupted first sync resumes
from the copy's own cursor. Until either has finished, the copy says it is incomplete.

A run holds the copy's writer lock (:class:`~offline_addon.storage.copy_lock.CopyLock`) from
start to end, so that two programs on one computer never write one copy at once; only the
holder removes or replaces ``.partial``. A copy that does not open with the session's
password is rebuilt only when the session's password is not older than the copy's: the server
names the password generation of the session's token, the sidecar the one the copy is keyed
with, and a session holding an older password is told to log in again (nothing is downloaded).

Every run ends by its deadline (:data:`SYNC_DEADLINE_S`, each request by its own, see
``transport``), and nothing is written once ``cancel`` answers true: it is asked inside each
write's transaction, right before the commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass

from hookspecs import Session
from offline_addon.errors import (
    CopyDamaged,
    CopyNotFound,
    CursorExpired,
    OfflineAddonError,
    OfflineNotAllowed,
    OfflineReason,
    ProtocolError,
    StorageError,
    SyncCancelled,
    WrongPassword,
)
from offline_addon.protocol.answers import ChangePage, Digest, Head, HeadUnchanged
from offline_addon.storage.access_log import carry_access_log
from offline_addon.storage.copy_lock import DEFAULT_WAIT_S, CopyLock
from offline_addon.storage.files import delete_copy, ensure_folder, remove_partial, replace_copy
from offline_addon.storage.local_changes import (
    LocalChanges,
    carry_local_changes,
    read_local_changes,
)
from offline_addon.storage.login_attempts import note_limit
from offline_addon.storage.moves import has_pending_moves, settle_moves
from offline_addon.storage.offline_copy import (
    LOCKED_WITH_OTHER_KEY,
    Completion,
    Contact,
    CopyIdentity,
    CopyMeta,
    OfflineCopy,
    Opening,
    clear_damage_mark,
    open_for_sync,
    reopen_for_sync,
)
from offline_addon.storage.paths import CopyPaths, damage_mark
from offline_addon.storage.sidecar import read_sidecar, refresh_sidecar, write_sidecar
from offline_addon.sync.accountability import (
    LogPush,
    forget_copy,
    push_access_log,
    report_copy,
)
from offline_addon.sync.prefetch import PagePrefetcher
from offline_addon.sync.push import PushTally, push_changes
from offline_addon.sync.result import (
    SEARCH_FOLLOWS,
    Outcome,
    SyncResult,
    lost_with_copy,
    outcome_message,
    push_words,
    wiped_message,
    with_push_words,
)
from offline_addon.sync.transport import SyncClient

log = logging.getLogger(__name__)

DEFAULT_PAGE_LIMIT = 2500
"""Changes per page: large pages amortise the round trip and the per-transaction cost, but up
to three are in memory at once (written, queued, fetched; see ``prefetch``), so this also
bounds a sync's memory. With prefetching, 2500 is as fast as 5000 and peaks ~12 MB lower."""

SYNC_DEADLINE_S = 3600.0
"""A whole run, however the server behaves: a first sync of a million records over a 1 Mbit/s
link takes about a quarter of an hour, so an hour is four times that. A run cut off keeps every
page it committed (a first sync resumes from there); each request also has its own deadline
(``transport.REQUEST_DEADLINE_S``), so a server that stalls is noticed long before this."""

COMPACT_INDEX_AFTER = 20_000
"""A sync that changed at least this many records compacts the search index afterwards
(below it, the merge work FTS5 leaves for later syncs is small)."""

SIDECAR_REFRESH_S = 2.0
"""While a first sync runs, the sidecar (what ``offline list`` and the login screen read) is
rewritten at most this often, so that a sync killed midway leaves a fair "N of about M"."""

LOG_IN_AGAIN = (
    "This session was opened with an older password than the one the offline copy is now "
    "locked with (the password was changed since, on this computer or elsewhere). Log in "
    "again with your current password; the offline copy is kept as it is."
)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class DigestMismatch(Exception):
    """The copy does not hold what the server's digest says (internal: leads to a repair)."""


@dataclass
class _Tally:
    added: int = 0
    changed: int = 0
    removed: int = 0
    done: int = 0
    completed: bool = False
    """The last page matched the digest and stored the run's completion with it."""


def sync_copy(
    paths: CopyPaths,
    session: Session,
    *,
    create: bool,
    opening: Opening | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    clock: Callable[[], float] = time.time,
    client: SyncClient | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
    lock_wait_s: float = DEFAULT_WAIT_S,
    deadline_s: float = SYNC_DEADLINE_S,
    compact: bool = True,
) -> SyncResult:
    """Synchronise the copy at ``paths`` for ``session``.

    ``create=True`` creates the copy when absent (the manual first sync); with ``create=False``
    a missing copy raises CopyNotFound. ``opening`` is the caller's attempt to open the copy
    (:func:`~offline_addon.storage.offline_copy.open_for_sync`); its copy stays open and the
    caller's, except after a wipe. Without it the copy is opened (the password's KDF) and
    closed here. ``cancel`` is asked inside each write's transaction before it commits and
    after each page: when it answers true the sync stops with
    :class:`~offline_addon.errors.SyncCancelled` (every page committed before stays, the one
    being written is rolled back). The run ends within ``deadline_s``. ``client`` and
    ``page_limit`` are for tests and benchmarks. The run holds the copy's
    writer lock; when another program keeps it longer than ``lock_wait_s`` the run raises
    :class:`~offline_addon.errors.CopyBusy` (retried later). ``compact=False`` leaves the
    search index's upkeep to the caller (:func:`index_upkeep`, once the result is delivered:
    the compaction after a large sync, the full-text entries of a small one's records; the
    copy is searchable, with the same results, before). Errors are raised as
    :class:`~offline_addon.errors.OfflineAddonError` children.
    """
    if has_pending_moves(paths.folder):
        settle_moves(paths.folder)  # before the lock: settling takes the copy's lock itself
    if not create and not paths.db.exists():
        raise CopyNotFound.of(session.database)  # (checked again under the lock)
    if create:
        ensure_folder(paths.folder)
    own_copy = opening is None
    own_client = client is None
    active: SyncClient | None = None
    try:
        with CopyLock(paths.lock, wait_s=lock_wait_s) as lock:
            # Opened (or re-checked) under the lock: another writer may have replaced, re-keyed
            # or deleted the file since the caller opened it.
            if opening is None:
                opening = open_for_sync(paths, session.password, clock())
            else:
                given = opening.copy
                opening = reopen_for_sync(opening, paths, session.password)
                # A copy opened here (the caller's had not opened) is this run's to close.
                own_copy = opening.copy is not None and opening.copy is not given
            if not create and not opening.exists:
                raise CopyNotFound.of(session.database)
            active = client or SyncClient(session.server_url, session.token, session.client_id)
            run = _SyncRun(paths, session, active, progress, cancel, clock, page_limit, lock)
            run.deadline = time.monotonic() + deadline_s
            run.compact = compact
            return run.execute(opening, own_copy)
    finally:
        if own_client and active is not None:
            active.close()


def wants_compaction(result: SyncResult) -> bool:
    """Whether a sync changed enough records that the search index should be compacted."""
    return result.added + result.changed + result.removed >= COMPACT_INDEX_AFTER


def index_upkeep(paths: CopyPaths, copy: OfflineCopy, result: SyncResult) -> bool:
    """The search index's upkeep that a sync (run with ``compact=False``) leaves for after its
    result, on the open ``copy``: after a large sync a compaction into one segment per index
    (:func:`compact_index`), after one with changes a bounded merge of the small segments
    that small syncs leave (so that no sync pays for FTS5's merging). Returns whether work
    was done; see :func:`compact_index` for when it is skipped."""
    if not wants_upkeep(result) and not index_waits(copy):
        return False
    if wants_compaction(result):
        return compact_index(paths, copy)
    return _under_writer_lock(paths, copy, copy.merge_search_index, "merged")


def index_waits(copy: OfflineCopy) -> bool:
    """Whether the open ``copy`` has index work waiting (a search index to build after a first
    sync, or records whose words wait, when the upkeep after their sync was skipped): then
    the upkeep is due even after a sync that changed nothing."""
    try:
        return copy.is_open and copy.index_work_waits()
    except OfflineAddonError:
        return False


def wants_upkeep(result: SyncResult) -> bool:
    """Whether a sync leaves index upkeep behind: it changed records of a copy that stays."""
    return result.outcome != "wiped" and result.added + result.changed + result.removed > 0


def compact_index(paths: CopyPaths, copy: OfflineCopy) -> bool:
    """Compact the search index of the open ``copy`` (after a large sync run with
    ``compact=False``) under the copy's writer lock; skipped (False) when another writer holds
    the lock, or the file was replaced since ``copy`` was opened (the index then stays as it
    is: searches and syncs stay correct, a little slower until the next large sync)."""
    return _under_writer_lock(paths, copy, copy.compact_search_index, "compacted")


def _under_writer_lock(
    paths: CopyPaths, copy: OfflineCopy, work: Callable[[], None], done: str
) -> bool:
    try:
        with CopyLock(paths.lock, wait_s=0.0):
            if not copy.is_open or not copy.reads_current_file():
                return False
            work()
            return True
    except OfflineAddonError as exc:
        log.info("offline copy: search index not %s (%s)", done, type(exc).__name__)
        return False


class _SyncRun:
    """One execution of :func:`sync_copy` (state of a single run only)."""

    def __init__(
        self,
        paths: CopyPaths,
        session: Session,
        client: SyncClient,
        progress: Progress | None,
        cancel: Cancel | None,
        clock: Callable[[], float],
        page_limit: int,
        lock: CopyLock,
    ) -> None:
        self.paths = paths
        self.lock = lock
        self.token_generation: int | None = None
        """The password generation of the session's token, as the server last named it."""
        self._described_at = float("-inf")
        self.session = session
        self.client = client
        self.progress = progress
        self.cancel = cancel
        self.clock = clock
        self.page_limit = page_limit
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + SYNC_DEADLINE_S
        self.login_attempts: int | None = None
        """The server's wrong-password limit, once this run has heard it (not after a 304)."""
        self.compact = True
        self.pushed = PushTally()
        """What the push of offline changes did (nothing yet)."""
        self.conflicts_before = 0
        self.log_push: LogPush | None = None
        """What pushing the offline access log did (None: not tried yet)."""
        self.identity = CopyIdentity(
            server_url=session.server_url,
            database=session.database,
            username=session.username,
            user_id=session.user_id,
            client_id=session.client_id,
        )

    # -- the run ------------------------------------------------------------------------

    def execute(self, opening: Opening, own_copy: bool) -> SyncResult:
        """Run the sync; ``own_copy``: the opened copy is this run's to close."""
        given = None if own_copy else opening.copy
        copy, problem = self._check_owner(opening)
        partial: OfflineCopy | None = None
        try:
            try:
                if copy is not None and problem is None:
                    self._push_log(copy)  # before the pull, and before a wipe (issue 16)
                    self._push(copy)  # before anything else: even before a wipe (issue 15)
                if problem == LOCKED_WITH_OTHER_KEY:
                    # Before anything is downloaded: is the session's password the older one?
                    self._check_policy()
                    self._refuse_older_password()
                partial = self._resumable_partial() if opening.exists else None
                if partial is None:
                    remove_partial(self.paths)  # only a lock holder may, and we hold it
                else:
                    self._check_policy()
                    fresh, partial = partial, None
                    return self._rebuild(
                        copy, given, "an interrupted rebuild was resumed", fresh=fresh
                    )
                if copy is not None and problem is None:
                    meta = copy.meta
                    if _knows_its_head(meta):
                        # The incremental case: head is the policy check (one request when
                        # nothing is new, two with changes).
                        return self._incremental(copy, meta, meta.etag)
                self._check_policy()
                if copy is None and problem is None:
                    copy = self._create()
                if problem is not None or copy is None:
                    return self._rebuild(copy, given, problem or "it could not be opened")
                return self._incremental(copy, copy.meta, None)
            except CursorExpired:
                return self._rebuild(copy, given, "the server no longer knew its position")
            except DigestMismatch:
                return self._rebuild(copy, given, "its content differed from the server's")
            except CopyDamaged:
                return self._rebuild(copy, given, "its file was damaged")
        except OfflineNotAllowed as refusal:
            return self._wipe(copy, refusal)
        finally:
            if partial is not None:
                partial.close()
            if copy is not None and own_copy:
                copy.close()

    def _push(self, copy: OfflineCopy) -> None:
        """Push the copy's offline changes (``sync/push``), counting the conflict list
        first so that the result can say how many entries this sync added."""
        local = LocalChanges(copy)
        self.conflicts_before = local.conflict_count()
        self.pushed = push_changes(
            copy, self.client, self.session.database, deadline=self.deadline, cancel=self.cancel
        )

    def _push_log(self, copy: OfflineCopy) -> None:
        """Push the copy's offline access log (``sync/accountability``; never fails the
        sync). After a failure it is not tried again in this run (an older server without
        the endpoint, or one that does not answer)."""
        if self.log_push is not None and self.log_push.stopped is not None:
            return
        self.log_push = push_access_log(
            self.client,
            copy,
            self.session.database,
            self.session.client_id,
            deadline=self.deadline,
            cancel=self.cancel,
        )

    def _check_policy(self) -> None:
        """Raise OfflineNotAllowed unless the server allows this copy (first sync, rebuild,
        a copy without a stored head: the policy answers even when offline is not allowed)."""
        policy = self.client.policy(self.session.database, deadline=self.deadline)
        self._learn_generation(policy.password_generation)
        self.login_attempts = policy.offline_login_attempts
        if not policy.allowed:
            raise OfflineNotAllowed(_reason(policy.offline_enabled))

    def _learn_generation(self, generation: int | None) -> None:
        if generation is not None:
            self.token_generation = generation

    def _refuse_older_password(self) -> None:
        """WrongPassword when the copy (which does not open with the session's password) is
        keyed with a newer password than the session's: rebuilding it would undo a password
        change. Equal generations mean the file is damaged (it is rebuilt); an older copy
        generation means it was keyed with an older password (it is rebuilt too); a server
        or a sidecar that names no generation keeps the rebuild of before."""
        try:
            keyed_with = read_sidecar(self.paths).password_generation
        except OfflineAddonError:
            keyed_with = None
        token = self.token_generation
        if keyed_with is not None and token is not None and token < keyed_with:
            log.warning(
                "offline copy not rebuilt: the session's password is older than the "
                "copy's (generation %d < %d)",
                token,
                keyed_with,
            )
            raise WrongPassword(LOG_IN_AGAIN)

    def _resumable_partial(self) -> OfflineCopy | None:
        """The ``.partial`` of an interrupted rebuild, open, when it opens with the session's
        password and belongs to the session's user id; else None."""
        if not self.paths.partial.exists():
            return None
        try:
            fresh = OfflineCopy.open(self.paths, self.session.password, db_path=self.paths.partial)
        except OfflineAddonError:
            return None
        try:
            if fresh.meta.identity.user_id == self.session.user_id:
                return fresh
        except OfflineAddonError:
            pass
        fresh.close()
        return None

    def _check_owner(self, opening: Opening) -> tuple[OfflineCopy | None, str | None]:
        """The copy to sync (None: there is none yet, or it does not open), and why it must
        be rebuilt instead (None: it need not)."""
        copy = opening.copy
        try:
            owner = None if copy is None else copy.meta.identity.user_id
        except CopyDamaged:
            return copy, "its file was damaged"
        if copy is not None and owner != self.session.user_id:
            return copy, "it belonged to another account of the same name"
        if copy is not None and opening.problem is None and self._damaged(copy):
            return copy, "its file was damaged"
        return copy, opening.problem

    def _damaged(self, copy: OfflineCopy) -> bool:
        """The full check of a copy kept open for a long time (weekly), or found damaged by
        a reader since it was opened (the damage mark)."""
        now = self.clock()
        try:
            if not (damage_mark(copy.db_path).exists() or copy.full_check_due(now)):
                return False
        except CopyDamaged:
            return True
        if not copy.integrity_ok():
            return True
        copy.record_full_check(now)
        clear_damage_mark(copy.db_path)
        return False

    def _create(self) -> OfflineCopy:
        copy = OfflineCopy.create(self.paths, self.session.password, self.identity)
        if self.token_generation is not None:
            copy.raise_password_generation(self.token_generation)
        write_sidecar(self.paths, copy.sidecar_info())
        return copy

    def _incremental(self, copy: OfflineCopy, meta: CopyMeta, etag: str | None) -> SyncResult:
        """Head (with ``etag``, if any), then the feed from the stored cursor if the head
        moved. Head is read before the feed, so the ETag stored with the pulled pages never
        claims more than they hold (at worst the next sync reads an empty page)."""
        if etag:
            head = self.client.head(self.session.database, etag, deadline=self.deadline)
        else:
            head = self._full_head()
        if isinstance(head, HeadUnchanged):
            contact = self._unchanged_contact(meta, head)
            copy.record_contact(contact, abort=self.cancel)
            return self._finish(copy, "unchanged", _Tally(), contact)
        contact = self._contact(head)
        tally = self._pull(
            copy,
            contact,
            meta.cursor,
            describe=not meta.complete,
            completion=Completion(head.etag, self.token_generation),
        )
        if not tally.completed:
            copy.record_contact(
                contact,
                etag=head.etag,
                complete=True,
                generation=self.token_generation,
                abort=self.cancel,
            )
        return self._finish(copy, "synced", tally, contact)

    def _full_head(self) -> Head:
        """Head without ``If-None-Match``, so a 304 would break the protocol."""
        head = self.client.head(self.session.database, deadline=self.deadline)
        if isinstance(head, HeadUnchanged):
            raise ProtocolError(
                "The server answered the feed head with 'not modified' although nothing was "
                "cached; nothing was changed. Tell your administrator."
            )
        return head

    def _contact(self, head: Head) -> Contact:
        """The contact a head answer (200) stands for; OfflineNotAllowed if it says no."""
        self._learn_generation(head.password_generation)
        if not head.allowed:
            raise OfflineNotAllowed(_reason(head.offline_enabled))
        self.login_attempts = head.offline_login_attempts
        return Contact(head.server_time, self.clock(), head.validity_seconds, head.offline_editing)

    def _unchanged_contact(self, meta: CopyMeta, head: HeadUnchanged) -> Contact:
        """The contact a 304 stands for: the validity is the stored one (it is part of the
        ETag). The server time is the ``Date`` header's; without a usable one it is estimated
        as the stored server time plus the local time elapsed since (never less than the
        stored one, should the local clock have gone back)."""
        now = self.clock()
        server_time = head.server_time
        if server_time is None:
            assert meta.last_contact_server_time is not None  # see _knows_its_head
            assert meta.last_contact_local_time is not None
            elapsed = max(0.0, now - meta.last_contact_local_time)
            server_time = meta.last_contact_server_time + elapsed
        assert meta.validity_seconds is not None
        return Contact(server_time, now, meta.validity_seconds, meta.offline_editing)

    def _pull(
        self,
        copy: OfflineCopy,
        contact: Contact,
        cursor: str | None,
        *,
        describe: bool = False,
        completion: Completion | None = None,
    ) -> _Tally:
        """Apply pages from ``cursor`` to the end and check the digest of the last one.
        ``describe``: the copy is the listed one and incomplete, so its sidecar follows the
        pages (every few seconds, and once more when the pull stops early). ``completion``:
        stored with the last page when its digest matches (``completed`` in the tally)."""
        try:
            return self._pull_pages(copy, contact, cursor, describe, completion)
        except BaseException:
            if describe:
                self._describe(copy, force=True)
            raise

    def _describe(self, copy: OfflineCopy, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._described_at < SIDECAR_REFRESH_S:
            return
        self._described_at = now
        try:
            write_sidecar(self.paths, copy.sidecar_info())
        except OfflineAddonError as exc:  # a listing aid: the sync goes on without it
            log.info("offline copy: sidecar not refreshed (%s)", type(exc).__name__)

    def _pull_pages(
        self,
        copy: OfflineCopy,
        contact: Contact,
        cursor: str | None,
        describe: bool,
        completion: Completion | None,
    ) -> _Tally:
        tally = _Tally()
        last: ChangePage | None = None
        with (
            PagePrefetcher(self._fetch, cursor, page_limit=self.page_limit) as pages,
            copy.batched_writes(),
        ):
            for from_cursor, page in _keeping_applied(pages, copy, self.cancel):
                outcome = copy.apply_page(
                    page,
                    from_cursor,
                    contact,
                    abort=self.cancel,
                    completion=completion,
                    words_later=not self.compact,
                )
                if not outcome.applied:
                    raise StorageError(
                        "The offline copy was changed by another synchronisation at the same "
                        "time; try again."
                    )
                tally.added += outcome.added
                tally.changed += outcome.changed
                tally.removed += outcome.removed
                tally.done += len(page.changes)
                if self.progress is not None:
                    self.progress(tally.done, tally.done + page.remaining)
                last = page
                tally.completed = outcome.completed
                if describe and page.has_more and outcome.committed:
                    self._describe(copy)
                if page.has_more and self.cancel is not None and self.cancel():
                    raise SyncCancelled
        if self.compact and tally.added + tally.changed + tally.removed >= COMPACT_INDEX_AFTER:
            copy.compact_search_index()
        if last is None or last.digest is None:  # protocol/answers rules this out
            raise ProtocolError(
                "The server's last page carried no digest; tell your administrator."
            )
        if not tally.completed:  # (a completed page was checked inside its transaction)
            self._check_digest(copy, last.digest)
        return tally

    def _fetch(self, cursor: str | None) -> Callable[[], ChangePage]:
        return self.client.fetch_changes(
            self.session.database, cursor, self.page_limit, deadline=self.deadline
        )

    def _check_digest(self, copy: OfflineCopy, expected: Digest) -> None:
        """Raise DigestMismatch unless the copy matches the server.

        The copy's digest is maintained page by page, so this costs O(1) and runs on every
        sync; the record count guards the bookkeeping itself against a damaged copy.
        """
        held = copy.digest()
        if held != expected or copy.server_record_count() != held.count:
            self._log_mismatch(copy, held, expected)
            raise DigestMismatch

    @staticmethod
    def _log_mismatch(copy: OfflineCopy, held: Digest, expected: Digest) -> None:
        # Only on a mismatch: the from-scratch digest (O(copy), streaming) says whether the
        # records or only their bookkeeping differ from the server.
        actual = copy.recompute_digest()
        log.warning(
            "offline copy digest mismatch: the copy holds %d records (bookkeeping %d), the "
            "server %d; the records %s the server's digest, the bookkeeping %s",
            actual.count,
            held.count,
            expected.count,
            "match" if actual == expected else "differ from",
            "matches the records" if actual == held else "differs from the records",
        )

    # -- rebuild, wipe, result ----------------------------------------------------------

    def _rebuild(
        self,
        old: OfflineCopy | None,
        given: OfflineCopy | None,
        why: str,
        *,
        fresh: OfflineCopy | None = None,
    ) -> SyncResult:
        """Full sync into ``.partial`` (``fresh``: an interrupted rebuild's, resumed from its
        cursor) that replaces the old file atomically when complete. An interruption keeps
        ``.partial`` for the next sync to resume; a contradicting digest discards it.

        ``given`` (the caller's open copy, if any) is reconnected to the new file."""
        log.warning("offline copy is rebuilt from the server because %s", why)
        removed = 0
        previous: CopyMeta | None = None
        if old is not None:
            with suppress(OfflineAddonError):
                removed = old.record_count()
                previous = old.meta
        # Head before the feed: its ETag must not claim more than the pulled pages hold.
        try:
            head = self._full_head()
            contact = self._contact(head)
        except BaseException:
            if fresh is not None:
                fresh.close()
            raise
        if fresh is None:
            fresh = self._new_partial()
        try:
            try:
                tally = self._pull(fresh, contact, fresh.cursor)
            except CursorExpired:
                if fresh.cursor is None:
                    raise
                # The interrupted rebuild's position is gone too: start it afresh.
                fresh.close()
                fresh = self._new_partial()
                tally = self._pull(fresh, contact, None)
            if previous is not None:
                fresh.adopt(previous)
            if old is not None:
                self._carry(old, fresh)
                carry_access_log(old, fresh)
            fresh.record_contact(
                contact,
                etag=head.etag,
                complete=True,
                generation=self.token_generation,
                abort=self.cancel,
            )
        except DigestMismatch:
            fresh.close()
            remove_partial(self.paths)
            raise ProtocolError(
                "The server's change feed contradicts its own digest; the offline copy was "
                "left as it was. Tell your administrator."
            ) from None
        except BaseException:
            fresh.close()  # .partial stays: the next sync resumes it
            raise
        fresh.close()  # the last connection: SQLite checkpoints and removes the WAL
        if self.cancel is not None and self.cancel():
            raise SyncCancelled  # .partial stays complete: the next sync swaps it in
        if old is not None:
            old.close()
        replace_copy(self.paths)
        clear_damage_mark(self.paths.db)
        tally.removed = removed
        if given is not None:
            given.reconnect(self.session.password)
            return self._finish(given, "repaired", tally, contact, why=why)
        with OfflineCopy.open(self.paths, self.session.password) as copy:
            return self._finish(copy, "repaired", tally, contact, why=why)

    def _carry(self, old: OfflineCopy, fresh: OfflineCopy) -> None:
        """Carry the offline changes not pushed and the conflict list into the rebuilt
        file (never those of another account that had the same name). An old file too
        damaged to read them loses them (logged); a failure of the new file stops the
        rebuild (the old file stays)."""
        try:
            if old.meta.identity.user_id != self.session.user_id:
                return
            carried = read_local_changes(old)
        except OfflineAddonError as exc:
            log.warning("offline changes could not be read from the old copy (%s)", exc)
            return
        carry_local_changes(fresh, carried)
        if carried:
            log.info(
                "offline copy rebuilt: %d offline changes and %d conflicts carried over",
                len(carried.entries),
                len(carried.conflicts),
            )

    def _new_partial(self) -> OfflineCopy:
        remove_partial(self.paths)
        fresh = OfflineCopy.create(
            self.paths, self.session.password, self.identity, db_path=self.paths.partial
        )
        if self.token_generation is not None:
            fresh.raise_password_generation(self.token_generation)
        return fresh

    def _wipe(self, copy: OfflineCopy | None, refusal: OfflineNotAllowed) -> SyncResult:
        """The server refused: delete the copy (the outcome ``wiped``); when there was no
        copy to delete (a first sync without the right), the refusal is the answer."""
        unsaved: list[str] = []
        if copy is not None:
            # Pushed first (see execute); what is left is only in this copy: say so first.
            with suppress(OfflineAddonError):
                unsaved = LocalChanges(copy).unsaved_names()
            self._push_log(copy)  # what was noted since the push at the start
            copy.close()
        existed = self.paths.db.exists()
        delete_copy(self.paths)
        self.lock.remove_file()
        if not existed:
            raise refusal
        forget_copy(self.client, self.session.database, self.session.client_id)
        text = " ".join(
            part
            for part in (
                wiped_message(refusal.reason, existed),
                push_words(self.pushed.pushed, 0),
                lost_with_copy(unsaved),
            )
            if part
        )
        if unsaved:
            log.warning("offline copy deleted with %d records' offline changes", len(unsaved))
        return SyncResult(
            "wiped",
            0,
            0,
            0,
            0,
            self._elapsed(),
            None,
            text,
            changes_pushed=self.pushed.pushed,
        )

    def _finish(
        self,
        copy: OfflineCopy,
        outcome: Outcome,
        tally: _Tally,
        contact: Contact,
        *,
        why: str = "",
    ) -> SyncResult:
        info = copy.sidecar_info()
        refresh_sidecar(self.paths, info)
        note_limit(self.paths, self.login_attempts)  # the password worked: counting restarts
        report_copy(
            self.client,
            copy,
            self.session.database,
            self.session.client_id,
            record_count=info.record_count,
            complete=info.complete,
            now=self.clock(),
        )
        message = outcome_message(
            outcome,
            self.session.database,
            info.record_count,
            tally.added,
            tally.changed,
            tally.removed,
            why,
        )
        if copy.search_pending():
            message += SEARCH_FOLLOWS
        conflicts = max(0, LocalChanges(copy).conflict_count() - self.conflicts_before)
        pushed = self.pushed
        return SyncResult(
            outcome,
            tally.added,
            tally.changed,
            tally.removed,
            info.record_count,
            self._elapsed(),
            contact.server_time,
            with_push_words(message, pushed.pushed, conflicts, pushed.refused, pushed.kept),
            changes_pushed=pushed.pushed,
            new_conflicts=conflicts,
        )

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started


def _keeping_applied(
    pages: Iterable[tuple[str | None, ChangePage]], copy: OfflineCopy, cancel: Cancel | None
) -> Iterator[tuple[str | None, ChangePage]]:
    """``pages``; when the next page fails to arrive (a bad answer, the network), the pages
    applied in the open batch are committed first (they are valid: the next sync resumes
    after them), unless the run was cancelled."""
    iterator = iter(pages)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except BaseException:
            copy.commit_batch(cancel)
            raise
        yield item


def _knows_its_head(meta: CopyMeta) -> bool:
    """The copy holds a position, its ETag and a complete last contact: an incremental sync
    may start with head (with ``If-None-Match``) instead of the policy."""
    return (
        meta.cursor is not None
        and bool(meta.etag)
        and meta.validity_seconds is not None
        and meta.last_contact_server_time is not None
        and meta.last_contact_local_time is not None
    )


def _reason(offline_enabled: bool) -> OfflineReason:
    return "offline_right_missing" if offline_enabled else "offline_disabled"
