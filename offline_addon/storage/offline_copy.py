"""The offline copy: one SQLCipher 4 file, keyed with the user's password (keying:
:mod:`~offline_addon.storage.cipher`; writing a page: :mod:`~offline_addon.storage.page_writer`).

The key goes through SQLCipher's own KDF (``PRAGMA key`` with the password: PBKDF2-HMAC-SHA512
with a random salt per file), so the file opens in any SQLCipher 4 tool with the same password.
Nothing is written before the key has been checked with a read, so a wrong password leaves the
file exactly as it was.

Damage is looked for in three places: a quick check whenever a copy is opened (the file is a
whole number of pages and not shorter than the database it holds, the schema, the meta table
and both ends of the records' b-tree: a few pages); a full ``integrity_check`` (plus SQLCipher's
HMAC check of every page) whenever a sync opens a copy (the add-on does so once per login:
about 0.7 s per 100k records, on its worker thread), and by the sync at least every
:data:`FULL_CHECK_INTERVAL_S` for a copy kept open longer; a reader that meets damage leaves a
mark (:func:`mark_damaged`) and raises CopyDamaged; and every
SQLCipher error, which is classified (:func:`~offline_addon.storage.cipher.storage_error`): a
damaged file raises :class:`~offline_addon.errors.CopyDamaged`, which the sync answers with a
rebuild from the server.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlcipher3

from hookspecs import RecordView
from offline_addon.errors import (
    CopyBusy,
    CopyNotFound,
    StorageError,
    SyncCancelled,
    WrongPassword,
)
from offline_addon.protocol.answers import ChangePage, Digest
from offline_addon.protocol.digest import digest_after, digest_of, make_digest
from offline_addon.protocol.page_plan import PagePlan, plan_page
from offline_addon.storage import cipher
from offline_addon.storage.files import ensure_folder, fsync_folder
from offline_addon.storage.migrations import (
    DIGEST_COUNT_KEY,
    DIGEST_SUM_KEY,
    SCHEMA_VERSION,
    SEARCH_INDEXES,
    migrate,
    schema_version,
)
from offline_addon.storage.page_writer import (
    Held,
    build_pending_indexes,
    held_rows,
    pending_indexes,
    write_plan,
)
from offline_addon.storage.paths import CREATING_SUFFIX, CopyPaths, damage_mark
from offline_addon.storage.pending_rows import (
    any_pending,
    names_of,
    offline_made_count,
    pending_ids,
    pulled_deletes,
    settle_pulled_deletes,
    show_pending,
)
from offline_addon.storage.search import (
    DEFAULT_LIMIT,
    check_query,
    count_sql,
    query_terms,
    search_sql,
    waiting_words,
)
from offline_addon.storage.sidecar import CopyInfo
from offline_addon.storage.system import create_new_file, replace_file

FULL_CHECK_INTERVAL_S = 7 * 86400.0
"""The longest time between two full checks of a copy a login keeps open (it reads every
page: about 0.7 s per 100k records). Weekly catches a slowly failing disk long before the copy
is needed offline; damage met in between is acted on at once."""
FULL_CHECK_KEY = "last_integrity_check"
"""The meta key holding the local time of the last full check that passed."""

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another writer of the file (sqlite3's default timeout)."""

Abort = Callable[[], bool]
"""Asked inside a write's transaction, right before it commits: True rolls the write back
(:class:`~offline_addon.errors.SyncCancelled`), so nothing is written after a shutdown."""


@dataclass(frozen=True)
class CopyIdentity:
    """Whose copy this is; stored inside the copy and in its sidecar."""

    server_url: str
    database: str
    username: str
    user_id: str
    client_id: str


@dataclass(frozen=True)
class CopyMeta:
    """The copy's bookkeeping, read from inside the encrypted file."""

    identity: CopyIdentity
    created_at: float
    cursor: str | None
    etag: str | None
    last_contact_server_time: float | None
    last_contact_local_time: float | None
    validity_seconds: int | None
    schema_version: int
    complete: bool = True
    """Whether the first sync (or the rebuild that made this file) has finished; a copy made
    before this was recorded counts as complete."""
    expected_total: int | None = None
    """About how many records the copy will hold when complete (held + the last page's
    ``remaining``); None before the first page."""
    password_generation: int | None = None
    """The server's password generation of the password the copy is keyed with (a lower
    bound); None when the server does not tell it."""
    clock_high_water: float | None = None
    """The latest local time the copy has seen since its last server contact."""
    offline_editing: bool = False
    """Whether the last policy the server gave allowed editing the copy offline (meta key
    :data:`OFFLINE_EDITING_KEY`; off unless the server said so)."""

    @property
    def valid_until(self) -> float | None:
        """Local time after which the copy refuses to open offline."""
        if self.last_contact_local_time is None or self.validity_seconds is None:
            return None
        return self.last_contact_local_time + self.validity_seconds


@dataclass(frozen=True)
class Contact:
    """A successful contact with the server: its time and the user's offline validity."""

    server_time: float
    local_time: float
    validity_seconds: int
    offline_editing: bool = False
    """The database's ``offline_editing`` setting as the server said it at this contact."""


@dataclass(frozen=True)
class Completion:
    """What a sync records with its last page when the copy then matches the server's digest
    (one transaction instead of two): the feed's ETag and the password generation named."""

    etag: str | None
    generation: int | None = None


@dataclass(frozen=True)
class PageOutcome:
    """What applying a page did; ``applied`` is False for a page from a stale cursor.
    ``committed``: the page is in the file (inside :meth:`OfflineCopy.batched_writes` a page
    may wait for the next ones); ``completed``: the last page matched the server's digest and
    the page's :class:`Completion` was stored with it (the copy is complete)."""

    applied: bool
    added: int = 0
    changed: int = 0
    removed: int = 0
    committed: bool = True
    completed: bool = False


BATCH_CHANGES = 10_000
"""Inside :meth:`OfflineCopy.batched_writes`, pages share one transaction until they hold this
many changes (four pages of a first sync): every commit makes FTS5 write its pending terms as
new index segments, so fewer commits mean fewer segments and less merging (about 7 % of a
first sync of 100k records). A larger FTS5 ``hashsize`` in a batch was faster still (about
15 %) but held up to that much more memory (4 MiB: 1.2x the three-page bound, which the
bench checks), so the default stays. A kill loses at most one batch, which the next sync
fetches again from the stored cursor."""
MERGE_PAGES = 200
"""How much merging of index segments :meth:`OfflineCopy.merge_search_index` does at most, in
pages (4 KiB each): enough to keep up with the segments of a sync of a few hundred changes."""

BATCH_MIN_PAGE = 1000
"""Only pages of at least this many changes are batched (a first sync's or a rebuild's, at
the engine's page limit): smaller pages commit one by one, as a page's commit costs little
next to its round trip, and a batch keeps the copy's lock and risks a whole batch's work."""


@dataclass
class _Batch:
    """The open transaction of :meth:`OfflineCopy.batched_writes` (None: none is open)."""

    thread: int
    changes: int = 0
    open: bool = False


class OfflineCopy:
    """An open offline copy. Thread-safe; close it when done."""

    def __init__(self, conn: Any, paths: CopyPaths, db_path: Path) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.paths = paths
        self.db_path = db_path
        self._file = _file_id(db_path)
        self._batch: _Batch | None = None

    def __repr__(self) -> str:
        return f"OfflineCopy(copy_id={self.paths.copy_id[:12]}…, file={self.db_path.name})"

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        paths: CopyPaths,
        password: str,
        identity: CopyIdentity,
        *,
        db_path: Path | None = None,
        now: float | None = None,
    ) -> OfflineCopy:
        """Create a new, empty copy at ``db_path`` (default ``paths.db``), owner-only.

        The file is made whole under a temporary name (keyed, migrated, its identity written)
        and only then renamed into place, so that a copy's name never stands for a file a
        kill left half made. The caller holds the copy's writer lock."""
        target = db_path or paths.db
        ensure_folder(paths.folder)
        if target.exists():
            raise StorageError("An offline copy already exists for this database; open it instead.")
        making = target.with_name(target.name + CREATING_SUFFIX)
        for leftover in (making, *paths.companions(making)):  # from a creation that was killed
            with suppress(FileNotFoundError):
                leftover.unlink()
        try:
            # SQLite would create the file with the umask's permissions; pre-create it 0600
            # (its -wal and -shm files inherit the main file's mode).
            os.close(create_new_file(making))
        except OSError as exc:
            raise cipher.storage_error("create", exc) from None
        try:
            key = cipher.new_file_key(password)
            conn = cipher.connect(making, password, key=key)
            copy = cls(conn, paths, making)
            migrate(conn)
            values: dict[str, object] = {
                "server_url": identity.server_url,
                "database": identity.database,
                "username": identity.username,
                "user_id": identity.user_id,
                "client_id": identity.client_id,
                "created_at": time.time() if now is None else now,
                COMPLETE_KEY: 0,
            }
            values[FULL_CHECK_KEY] = values["created_at"]  # nothing to check in a new file
            with copy._transaction():
                copy._put_meta(values)
            copy.close()  # the last connection: SQLite checkpoints and removes the WAL
            replace_file(making, target)
            fsync_folder(target.parent)
            copy.db_path = target
            copy.reconnect(password, key=key)
        except sqlcipher3.Error as exc:
            cipher.discard(making, locals().get("conn"))
            raise cipher.storage_error("create", exc) from None
        except BaseException:
            cipher.discard(making, locals().get("conn"))
            raise
        return copy

    @classmethod
    def open(cls, paths: CopyPaths, password: str, *, db_path: Path | None = None) -> OfflineCopy:
        """Open an existing copy (migrating its schema if needed).

        Raises WrongPassword (file untouched), CopyNotFound, StorageError.
        """
        target = db_path or paths.db
        if not target.is_file():
            raise CopyNotFound.of()
        cipher.check_file(target)
        conn = cipher.connect(target, password)
        try:
            migrate(conn)
            _quick_check(conn, target)
        except sqlcipher3.Error as exc:
            conn.close()
            raise cipher.storage_error("upgrade", exc) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, paths, target)

    def reconnect(self, password: str, *, key: str | None = None) -> None:
        """Close and open :attr:`db_path` again (after the file was replaced; ``key``: the
        raw key it was made with, see :func:`cipher.new_file_key`). Raises WrongPassword,
        CopyNotFound or StorageError (the copy then stays closed)."""
        with self._lock:
            self.close()
            if not self.db_path.is_file():
                raise CopyNotFound.of()
            conn = cipher.connect(self.db_path, password, key=key)
            try:
                migrate(conn)
            except sqlcipher3.Error as exc:
                conn.close()
                raise cipher.storage_error("upgrade", exc) from None
            self._conn = conn
            self._file = _file_id(self.db_path)

    def refresh(self, password: str) -> bool:
        """Make sure this connection reads the file that :attr:`db_path` names now: another
        writer may have replaced it (a rebuild, a move) or re-keyed it since it was opened.
        Reconnects when needed (returns True then); raises like :meth:`reconnect`."""
        with self._lock:
            if self.reads_current_file():
                try:
                    self._conn.execute("SELECT count(*) FROM meta").fetchone()
                    return False
                except sqlcipher3.DatabaseError:
                    pass  # re-keyed by another program: the old key reads no more
            self.reconnect(password)
            return True

    def reads_current_file(self) -> bool:
        """Whether this connection reads the file :attr:`db_path` names now (not one that
        another writer has replaced since)."""
        return self._conn is not None and _file_id(self.db_path) == self._file

    @property
    def is_open(self) -> bool:
        """Whether the connection is open."""
        return self._conn is not None

    def close(self) -> None:
        """Close the connection (SQLite checkpoints and removes the WAL when it is the last)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> OfflineCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    @property
    def _db(self) -> Any:
        if self._conn is None:
            raise StorageError("The offline copy is closed; open it again.")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def local_write(self) -> Iterator[Any]:
        """One write transaction on the copy, for the offline edits of
        :mod:`~offline_addon.storage.local_changes` (the copy keeps the one connection and its
        lock); an SQLCipher failure becomes :class:`StorageError`."""
        try:
            with self._transaction() as db:
                yield db
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    @contextmanager
    def short_write(self, wait_s: float) -> Iterator[Any]:
        """One small write transaction that waits at most ``wait_s`` for another writer of
        the file (a sync in this or another program): :class:`CopyBusy` after that, any
        other SQLCipher failure :class:`StorageError`. For the offline access log, which
        writes beside a reader that must not be held up (``storage/access_log``)."""
        with self._lock:
            db = self._db
            try:
                db.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000)):d}").fetchall()
                with self._transaction() as writing:
                    yield writing
            except sqlcipher3.Error as exc:
                if cipher.is_busy(exc):
                    raise CopyBusy("Another program is writing the offline copy.") from None
                raise cipher.storage_error("write", exc) from None
            finally:
                with suppress(sqlcipher3.Error):
                    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}").fetchall()

    @contextmanager
    def local_read(self) -> Iterator[Any]:
        """One read transaction (a consistent snapshot that never waits for a writer), for
        :mod:`~offline_addon.storage.local_changes`."""
        try:
            with self._lock:
                db = self._db
                db.execute("BEGIN")
                try:
                    yield db
                finally:
                    db.execute("COMMIT")
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("read", exc) from None

    def _put_meta(self, values: dict[str, object]) -> None:
        # One statement (executemany takes the GIL back after every row; see
        # page_writer.insert_rows): a page's bookkeeping is about ten values.
        if values:
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES "  # noqa: S608 - placeholders
                + ", ".join(["(?, ?)"] * len(values)),
                [item for pair in values.items() for item in pair],
            )

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """The connection for a read, under the lock; a SQLCipher error becomes the add-on's
        (a damaged file: CopyDamaged, and a full check at the next sync)."""
        with self._lock:
            try:
                yield self._db
            except sqlcipher3.Error as exc:
                error = cipher.storage_error("read", exc)
                if cipher.is_damage(exc):
                    mark_damaged(self.db_path)
                raise error from None

    def _meta_value(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # -- reading -------------------------------------------------------------------------

    @property
    def meta(self) -> CopyMeta:
        """The copy's bookkeeping (cursor, last contact, validity, identity)."""
        with self._reading() as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            version = schema_version(db)
        identity = CopyIdentity(
            server_url=rows.get("server_url", ""),
            database=rows.get("database", ""),
            username=rows.get("username", ""),
            user_id=rows.get("user_id", ""),
            client_id=rows.get("client_id", ""),
        )
        validity = rows.get("validity_seconds")
        total = rows.get(EXPECTED_TOTAL_KEY)
        generation = rows.get(GENERATION_KEY)
        high_water = rows.get(HIGH_WATER_KEY)
        return CopyMeta(
            identity=identity,
            created_at=float(rows.get("created_at", 0.0)),
            cursor=rows.get("cursor"),
            etag=rows.get("etag"),
            last_contact_server_time=rows.get("last_contact_server_time"),
            last_contact_local_time=rows.get("last_contact_local_time"),
            validity_seconds=None if validity is None else int(validity),
            schema_version=version,
            complete=rows.get(COMPLETE_KEY, 1) not in (0, "0"),
            expected_total=None if total is None else int(total),
            password_generation=None if generation is None else int(generation),
            clock_high_water=None if high_water is None else float(high_water),
            offline_editing=rows.get(OFFLINE_EDITING_KEY, 0) not in (0, "0", None),
        )

    @property
    def cursor(self) -> str | None:
        """The stored feed position (None before the first page)."""
        with self._reading():
            value = self._meta_value("cursor")
        return None if value is None else str(value)

    def record_count(self) -> int:
        """How many records the copy holds."""
        with self._reading() as db:
            return int(db.execute("SELECT count(*) FROM records").fetchone()[0])

    def server_record_count(self) -> int:
        """How many of its records are on the server (what the digest counts): all but
        those made offline and not pushed yet."""
        with self._reading() as db:
            return _server_record_count(db)

    def get(self, record_id: str) -> RecordView | None:
        """One record, or None."""
        if (
            not isinstance(record_id, str)
            or not 0 < len(record_id) <= 1024
            or not record_id.isprintable()
        ):
            return None  # no copy holds such an id (the protocol's ids are short text)
        with self._reading() as db:
            row = db.execute(
                "SELECT id, rev, name, fields FROM records WHERE id = ?", (record_id,)
            ).fetchone()
        return None if row is None else _view(row)

    def list_records(self) -> list[RecordView]:
        """All records, by name."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, rev, name, fields FROM records ORDER BY name COLLATE NOCASE, id"
            ).fetchall()
        return [_view(row) for row in rows]

    def search(self, query: str, *, limit: int = DEFAULT_LIMIT) -> list[RecordView]:
        """The first ``limit`` records by name whose name contains ``query`` (case-insensitive,
        like the server), or whose name or field words (not the password) start with each
        word of ``query``; an empty query lists the first ``limit`` records. A query that is too
        long, has too many words or holds control characters raises InvalidArgument."""
        check_query(query)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            return []
        with self._reading() as db, _snapshot(db):
            pending = pending_indexes(db)
            sql, params = search_sql(query, limit, query_terms(db, query), pending)
            with waiting_words(db, pending):
                rows = db.execute(sql, params).fetchall()
        return [_view(row) for row in rows]

    def search_pending(self) -> bool:
        """Whether a search index of this copy waits to be built (for a few seconds after a
        first sync or a rebuild): searches then scan the records, slower, and match words a
        little more widely (see :func:`offline_addon.storage.search.words_scan`)."""
        with self._reading() as db:
            return pending_indexes(db).whole

    def index_work_waits(self) -> bool:
        """Whether the upkeep after a sync has index work to do even if the sync changed
        nothing: an index to build, or records whose words wait (its last run was skipped)."""
        with self._reading() as db:
            return bool(pending_indexes(db))

    def count_matches(self, query: str) -> int:
        """How many records :meth:`search` finds for ``query`` before its limit."""
        check_query(query)
        with self._reading() as db, _snapshot(db):
            pending = pending_indexes(db)
            sql, params = count_sql(query, query_terms(db, query), pending)
            with waiting_words(db, pending):
                return int(db.execute(sql, params).fetchone()[0])

    def digest(self) -> Digest:
        """The protocol digest of what the copy holds, as maintained page by page (O(1))."""
        with self._reading():
            return self._stored_digest()

    def recompute_digest(self) -> Digest:
        """The digest computed from scratch over the records (streaming, constant memory):
        for tests and for the log of a repair. A record created offline (rev 0) is not on the
        server yet, so it is not part of the digest."""
        with self._reading() as db:
            return digest_of(db.execute("SELECT id, rev FROM records WHERE rev > 0"))

    def _stored_digest(self) -> Digest:
        rows = dict(
            self._db.execute(
                "SELECT key, value FROM meta WHERE key IN (?, ?)",
                (DIGEST_COUNT_KEY, DIGEST_SUM_KEY),
            ).fetchall()
        )
        count = rows.get(DIGEST_COUNT_KEY)
        total = rows.get(DIGEST_SUM_KEY)
        return Digest(int(count or 0), str(total or "0" * 64))

    def pages_ok(self) -> bool:
        """SQLCipher's HMAC check of every page (free pages too) finds nothing: no byte of
        the file changed since it was written (a fourth of :meth:`integrity_ok`'s cost)."""
        return self._check_rows("PRAGMA cipher_integrity_check") == []

    def integrity_ok(self) -> bool:
        """SQLite's ``PRAGMA integrity_check`` says "ok" and :meth:`pages_ok`; a damaged page
        that stops a check is False."""
        return self._check_rows("PRAGMA integrity_check") == [("ok",)] and self.pages_ok()

    def _check_rows(self, pragma: str) -> list[Any] | None:
        """What a check ``pragma`` reports; None when a damaged page stopped it."""
        try:
            with self._lock:
                return list(self._db.execute(pragma).fetchall())
        except sqlcipher3.Error as exc:
            if cipher.is_damage(exc):
                return None
            raise cipher.storage_error("check", exc) from None

    def full_check_due(self, now: float) -> bool:
        """Whether the last full check that passed is older than a week (or unknown)."""
        with self._reading():
            last = self._meta_value(FULL_CHECK_KEY)
        if not isinstance(last, int | float):
            return True
        return not last <= now < last + FULL_CHECK_INTERVAL_S

    def record_full_check(self, now: float) -> None:
        """Remember that the full check passed at ``now`` (local time)."""
        try:
            with self._transaction():
                self._put_meta({FULL_CHECK_KEY: now})
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def batched_writes(self) -> Iterator[None]:
        """Let the pages of :data:`BATCH_MIN_PAGE` changes or more applied inside share
        transactions of about :data:`BATCH_CHANGES` changes (a page that ends the feed
        commits at once), for the thread that opens it (other threads keep writing one
        transaction at a time). Leaving the block commits what is still open; an error rolls
        it back. The copy's lock is held while a batch is open."""
        with self._lock:
            if self._batch is not None:
                raise RuntimeError("batched writes do not nest")
            self._batch = _Batch(threading.get_ident())
        try:
            yield
            self._end_batch(commit=True)
        except BaseException:
            self._end_batch(commit=False)
            raise
        finally:
            self._batch = None

    def commit_batch(self, abort: Abort | None = None) -> None:
        """Commit the pages of this thread's open batch now (when a later page failed to
        arrive: those applied are valid and kept), unless ``abort`` answers True: then they
        are rolled back."""
        if self._own_batch() is not None:
            self._end_batch(commit=abort is None or not abort())

    def _own_batch(self) -> _Batch | None:
        """The open batch when this thread opened it (other threads write on their own)."""
        batch = self._batch
        return batch if batch is not None and batch.thread == threading.get_ident() else None

    def _end_batch(self, *, commit: bool) -> None:
        batch = self._batch
        if batch is None or not batch.open:
            return
        batch.open = False
        try:
            try:
                if commit:
                    self._db.execute("COMMIT")
                else:
                    self._db.execute("ROLLBACK")
            except sqlcipher3.Error as exc:
                with suppress(sqlcipher3.Error):
                    self._db.execute("ROLLBACK")
                raise cipher.storage_error("write", exc) from None
        finally:
            self._lock.release()

    @contextmanager
    def _page_transaction(self, page: ChangePage, abort: Abort | None) -> Iterator[Any]:
        """One page's transaction: its own, or the open batch's (committed when the batch is
        full or the page ends the feed)."""
        batch = self._own_batch()
        if batch is None or (not batch.open and len(page.changes) < BATCH_MIN_PAGE):
            with self._transaction() as db:
                yield db
                _check_abort(abort)
            return
        if not batch.open:
            self._lock.acquire()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._lock.release()
                raise
            batch.open, batch.changes = True, 0
        try:
            yield self._db
            batch.changes += len(page.changes)
            if (
                not page.has_more
                or batch.changes >= BATCH_CHANGES
                or len(page.changes) < BATCH_MIN_PAGE
            ):
                _check_abort(abort)
                self._end_batch(commit=True)
        except BaseException:
            self._end_batch(commit=False)
            raise

    def apply_page(
        self,
        page: ChangePage,
        from_cursor: str | None,
        contact: Contact,
        *,
        abort: Abort | None = None,
        completion: Completion | None = None,
        words_later: bool = False,
    ) -> PageOutcome:
        """Apply a page fetched from ``from_cursor`` together with its ``next_cursor`` and the
        contact time, in one transaction (rolled back when ``abort`` answers True right before
        the commit; inside :meth:`batched_writes` the transaction may span several pages).

        A page fetched from another position than the stored cursor (re-delivered, or raced by
        another sync) changes nothing, so the cursor never goes backwards. The page that ends
        the feed also stores ``completion`` (if given) when the copy then matches the page's
        digest and holds as many records as it says: the copy is complete. ``words_later``:
        the full-text entries of a small page's records are left to the upkeep after the
        sync (``page_writer.words_wait``; :meth:`merge_search_index` makes them).
        """
        try:
            with self._page_transaction(page, abort) as db:
                if self._meta_value("cursor") != from_cursor:
                    return PageOutcome(applied=False)
                held = held_rows(db, page)
                plan = plan_page(held_revs_of(held), page.changes, page.rows)
                pending = _pending_in_page(db, page)
                names = names_of(db, pending) if pending else {}
                write_plan(db, plan, held, words_later=words_later)
                # The digest follows the records in the same transaction: O(changes).
                digest = digest_after(self._stored_digest(), held_revs_of(held), plan)
                if pending:
                    digest = _keep_pending(db, page, plan, pending, names, digest)
                values: dict[str, object] = {
                    "cursor": page.next_cursor,
                    DIGEST_COUNT_KEY: digest.count,
                    DIGEST_SUM_KEY: digest.sum,
                    EXPECTED_TOTAL_KEY: digest.count + page.remaining,
                    **_contact_values(contact),
                }
                completed = False
                if not page.has_more:
                    completed = (
                        completion is not None
                        and digest == page.digest
                        and _server_record_count(db) == digest.count
                    )
                    if completion is not None and completed:
                        values[COMPLETE_KEY] = 1
                        if completion.etag is not None:
                            values["etag"] = completion.etag
                        if completion.generation is not None:
                            self._raise_generation(completion.generation)
                self._put_meta(values)
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None
        batch = self._own_batch()
        committed = batch is None or not batch.open
        return PageOutcome(
            True,
            len(plan.inserts),
            len(plan.updates),
            len(plan.deletes),
            committed=committed,
            completed=completed,
        )

    def record_contact(
        self,
        contact: Contact,
        *,
        etag: str | None = None,
        complete: bool = False,
        generation: int | None = None,
        abort: Abort | None = None,
    ) -> None:
        """Store a successful contact (and optionally the feed ETag; ``complete``: the copy
        now holds everything the feed had; ``generation``: the password generation the
        server named, kept only when it is higher than the stored one); ``abort`` as for
        :meth:`apply_page`."""
        values: dict[str, object] = _contact_values(contact)
        if etag is not None:
            values["etag"] = etag
        if complete:
            values[COMPLETE_KEY] = 1
        try:
            with self._transaction():
                self._put_meta(values)
                if generation is not None:
                    self._raise_generation(generation)
                _check_abort(abort)
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    def raise_password_generation(self, generation: int) -> None:
        """Store ``generation`` as the key's password generation unless a higher one is
        stored (it never goes down: a session with an older password must not win)."""
        try:
            with self._transaction():
                self._raise_generation(generation)
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    def _raise_generation(self, generation: int) -> None:
        stored = self._meta_value(GENERATION_KEY)
        if stored is None or int(stored) < generation:
            self._put_meta({GENERATION_KEY: generation})

    def adopt(self, meta: CopyMeta) -> None:
        """Carry the password generation over from the copy this one replaces."""
        if meta.password_generation is not None:
            self.raise_password_generation(meta.password_generation)

    def note_time_seen(self, now: float) -> None:
        """Raise the clock high-water mark to ``now`` (an offline open); the caller holds
        the copy's lock."""
        try:
            with self._transaction():
                stored = self._meta_value(HIGH_WATER_KEY)
                if stored is None or float(stored) < now:
                    self._put_meta({HIGH_WATER_KEY: now})
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    def compact_search_index(self) -> None:
        """Merge each full-text index into one segment (FTS5 ``optimize``).

        A large sync leaves many index segments behind; FTS5 would merge them bit by bit
        during the next small syncs, which then take ten times longer. Merging once right after
        the large sync keeps the small ones fast. Costs about 3 ms per 1000 records. Builds the
        name index first when a first sync left it to be built.
        """
        try:
            with self._transaction() as db:
                build_pending_indexes(db)
                db.execute("INSERT INTO records_fts(records_fts) VALUES ('optimize')")
                db.execute(
                    "INSERT INTO records_name_trigrams(records_name_trigrams) VALUES ('optimize')"
                )
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    def merge_search_index(self, pages: int = MERGE_PAGES) -> None:
        """Merge the small segments that small syncs leave in each full-text index (where a
        level holds FTS5's ``usermerge``, 4, of them), writing at most about ``pages`` pages:
        a few milliseconds, done between syncs so that no sync pays for FTS5's own merging
        (off since migration 6; its crisis merge stays the safety net). First indexes the
        words of the records a small sync left waiting (``page_writer.words_wait``: about
        2 ms per 100 records), and builds the search indexes a first sync left to be built."""
        try:
            with self._transaction() as db:
                build_pending_indexes(db)
                for table in SEARCH_INDEXES:
                    db.execute(
                        f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)",  # noqa: S608
                        (pages,),
                    )
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("write", exc) from None

    def rekey(self, new_password: str) -> None:
        """Re-encrypt the copy with ``new_password`` (SQLCipher's ``PRAGMA rekey``)."""
        try:
            with self._lock:
                self._db.execute(f"PRAGMA rekey = {cipher.quote_password(new_password)}").fetchall()
        except sqlcipher3.Error as exc:
            raise cipher.storage_error("re-encrypt", exc) from None

    def sidecar_info(self) -> CopyInfo:
        """The sidecar description of this copy as it is now."""
        meta = self.meta
        ident = meta.identity
        return CopyInfo(
            server_url=ident.server_url,
            database=ident.database,
            username=ident.username,
            user_id=ident.user_id,
            client_id=ident.client_id,
            copy_id=self.paths.copy_id,
            created_at=meta.created_at,
            last_sync=meta.last_contact_local_time,
            valid_until=meta.valid_until,
            record_count=self.digest().count,  # maintained page by page: O(1)
            schema_version=SCHEMA_VERSION,
            complete=meta.complete,
            expected_total=meta.expected_total,
            password_generation=meta.password_generation,
        )


def held_revs_of(held: dict[str, Held]) -> dict[str, int]:
    """``id -> rev`` of :func:`~offline_addon.storage.page_writer.held_rows`."""
    return {record_id: row.rev for record_id, row in held.items()}


@contextmanager
def _snapshot(db: Any) -> Iterator[None]:
    """One read transaction around a search's statements (unless one is open already), so
    that a sync or an upkeep of another program committing between them cannot make the
    waiting records (``records_fts_todo``) the search looked at differ from those it skips
    in the index."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:  # (an error may have ended it)
            db.execute("COMMIT")


def _server_record_count(db: Any) -> int:
    """The records that are on the server (what the digest counts): all but those made
    offline and not pushed yet."""
    count = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
    return count - offline_made_count(db) if count and any_pending(db) else count


def _pending_in_page(db: Any, page: ChangePage) -> set[str]:
    """The page's records that have offline changes not yet pushed (none: one probe)."""
    if not page.changes or not any_pending(db):
        return set()
    return pending_ids(db, page.ids())


def _keep_pending(
    db: Any,
    page: ChangePage,
    plan: PagePlan,
    pending: set[str],
    names: dict[str, str],
    digest: Digest,
) -> Digest:
    """A pull never overwrites a pending change (``storage/pending_rows``): pulled deletes
    settle the entries into the conflict list, pulled upserts are shown with the pending
    changes on top. Returns the digest adjusted for what that showed."""
    # A page with rows holds upserts only: no need to make its changes to look for deletes.
    deletes = pulled_deletes(page.changes, pending) if page.rows is None else {}
    if deletes:
        settle_pulled_deletes(db, deletes, names, time.time())
    written = [r.id for r in (*plan.inserts, *plan.updates) if r.id in pending]
    count, total = show_pending(db, written)
    if not (count or total):
        return digest
    return make_digest(digest.count + count, int(digest.sum, 16) + total)


def _check_abort(abort: Abort | None) -> None:
    if abort is not None and abort():
        raise SyncCancelled


def _quick_check(conn: Any, db_path: Path) -> None:
    """The cheap check of every open: the file is not shorter than the database it holds, and
    the schema, the meta table and both ends of the records' b-tree read (a few pages).
    Raises sqlcipher3 errors (classified by the caller) or CopyDamaged."""
    cipher.check_size(conn, db_path)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    conn.execute("SELECT key, value FROM meta").fetchall()
    conn.execute("SELECT min(rowid), max(rowid) FROM records").fetchone()


def mark_damaged(db_path: Path) -> None:
    """Leave the damage mark beside ``db_path`` (best effort: the next sync also finds
    damage on its own, only later)."""
    with suppress(OSError):
        damage_mark(db_path).touch(mode=0o600)


def clear_damage_mark(db_path: Path) -> None:
    """Remove the damage mark (after a passed check or a rebuild)."""
    with suppress(OSError):
        damage_mark(db_path).unlink()


COMPLETE_KEY = "complete"
OFFLINE_EDITING_KEY = "offline_editing"
EXPECTED_TOTAL_KEY = "expected_total"
GENERATION_KEY = "password_generation"
HIGH_WATER_KEY = "clock_high_water"


def _contact_values(contact: Contact) -> dict[str, object]:
    # A server contact re-anchors the clock high-water mark: the validity counts from this
    # contact, so a clock that was once ahead (and corrected since) must not lock the copy.
    return {
        "last_contact_server_time": contact.server_time,
        "last_contact_local_time": contact.local_time,
        "validity_seconds": contact.validity_seconds,
        HIGH_WATER_KEY: contact.local_time,
        OFFLINE_EDITING_KEY: int(contact.offline_editing),
    }


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _view(row: Sequence[Any]) -> RecordView:
    return RecordView(record_id=row[0], rev=row[1], name=row[2], fields=json.loads(row[3]))


@dataclass(frozen=True)
class Opening:
    """A copy opened for a sync, or why it cannot be used: ``copy`` and ``problem`` both
    None means there is no copy yet. The reason is established here, once, and passed on."""

    copy: OfflineCopy | None
    problem: str | None = None

    @property
    def exists(self) -> bool:
        """Whether there is a copy file (usable or not)."""
        return self.copy is not None or self.problem is not None


LOCKED_WITH_OTHER_KEY = "it was locked with an older password"
DAMAGED = "its file was damaged"


def open_for_sync(paths: CopyPaths, password: str, now: float | None = None) -> Opening:
    """Open the copy at ``paths`` for a sync; a copy that does not open, or fails its check,
    becomes a reason to rebuild it (the sync decides), never an exception. The check at every
    such open (once per login) is SQLCipher's HMAC of every page, which finds any changed
    byte (0.6 s per 100k records); SQLite's full structural check as well (2 s more) when
    the last one that passed is a week old or a reader marked the copy damaged. ``now``
    (local time) is stored as the time of a full check."""
    moment = time.time() if now is None else now
    try:
        copy = OfflineCopy.open(paths, password)
        try:
            full = damage_mark(paths.db).exists() or copy.full_check_due(moment)
            if not (copy.integrity_ok() if full else copy.pages_ok()):
                copy.close()
                return Opening(None, DAMAGED)
            if full:
                copy.record_full_check(moment)
                clear_damage_mark(paths.db)
        except BaseException:
            copy.close()
            raise
        return Opening(copy)
    except CopyNotFound:
        return Opening(None)
    except WrongPassword:
        return Opening(None, LOCKED_WITH_OTHER_KEY)
    except StorageError:
        return Opening(None, DAMAGED)


def reopen_for_sync(opening: Opening, paths: CopyPaths, password: str) -> Opening:
    """``opening`` (made before the writer lock was taken) checked again under it: the same
    copy object when it still reads the file ``paths`` names, reconnected when another
    program replaced or re-keyed that file meanwhile, and opened afresh when it had not
    opened."""
    copy = opening.copy
    if copy is None:
        return open_for_sync(paths, password)
    try:
        copy.refresh(password)
    except CopyNotFound:
        return Opening(None)
    except WrongPassword:
        return Opening(None, LOCKED_WITH_OTHER_KEY)
    except StorageError:
        return Opening(None, DAMAGED)
    return opening
