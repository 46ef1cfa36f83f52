"""Building copies for tests, and changing them behind the add-on's back.

A test that damages or ages a copy does it the way any SQLCipher tool could: with
:func:`opened_file`, a connection of its own on the closed file (never through the product's
private members).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hookspecs import Session
from offline_addon.protocol.answers import Digest
from offline_addon.protocol.digest import digest_of
from offline_addon.storage import cipher
from offline_addon.storage.offline_copy import Contact, CopyIdentity, OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.result import SyncResult

T = TypeVar("T")

IDENTITY = CopyIdentity("http://127.0.0.1:1", "demo", "alice", "user-1", "client-1")
CONTACT = Contact(server_time=1000.0, local_time=1000.0, validity_seconds=7 * 86400)
COPY_PASSWORD = "copy-pw-Hn5$unit"


def new_copy(folder: Path, password: str = COPY_PASSWORD) -> OfflineCopy:
    """A new, empty copy in ``folder`` (copy id ``a...a``) for :data:`IDENTITY`."""
    return OfflineCopy.create(CopyPaths(folder, "a" * 64), password, IDENTITY)


def paths_of(folder: Path, session: Session) -> CopyPaths:
    """Where the add-on keeps ``session``'s copy in ``folder``."""
    return CopyPaths.for_copy(
        folder, session.server_url, session.database, session.username, session.client_id
    )


@contextmanager
def opened_file(paths: CopyPaths, password: str) -> Iterator[Any]:
    """A SQLCipher connection of the test's own on the copy's file (autocommit); closed
    after. Close the copy first when it writes."""
    conn = cipher.connect(paths.db, password)
    try:
        yield conn
    finally:
        conn.close()


def first_sync_by_worker(
    folder: Path, session: Session, look: Callable[[Any], T], **options: Any
) -> tuple[SyncResult, T]:
    """A first sync through the public API (``OfflineCopies.create``, ``options`` to the
    engine), then the worker until it is idle (the index upkeep after the result); ``look``
    reads the copy's file as the engine left it, before the worker went on."""
    from offline_addon import AddonSettings, OfflineCopies
    from offline_addon.sync.engine import sync_copy

    seen: list[T] = []

    def observed(*args: Any, **kwargs: Any) -> Any:
        result = sync_copy(*args, **options, **kwargs)
        with opened_file(paths_of(folder, session), session.password) as db:
            seen.append(look(db))
        return result

    copies = OfflineCopies(AddonSettings(database_path=str(folder)), sync=observed)
    try:
        result = copies.create(session)
        assert copies.wait_idle(30)
    finally:
        copies.shutdown()
    assert len(seen) == 1
    return result, seen[0]


def set_meta(conn: Any, **values: object) -> None:
    """Overwrite bookkeeping entries of the copy (table ``meta``)."""
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))


def forget_etag(conn: Any) -> None:
    """Drop the stored feed ETag, so that the next sync reads the feed."""
    conn.execute("DELETE FROM meta WHERE key = 'etag'")


def checkpoint(paths: CopyPaths, password: str) -> None:
    """Move the WAL of the (closed) copy into its main file and truncate it."""
    with opened_file(paths, password) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def held_digest(conn: Any) -> Digest:
    """The digest of the records the file holds (``id``, ``rev``), counted afresh."""
    return digest_of(conn.execute("SELECT id, rev FROM records").fetchall())


def allow_offline_editing(server: Any, database: str, paths: CopyPaths, password: str) -> None:
    """Switch "offline editing allowed" on for ``database`` at the server, then sync the copy
    at ``paths`` (as its owner, logged in anew) so that it learns it from the server."""
    from offline_addon.sync.engine import sync_copy
    from tests.support.accounts import log_in

    server.admin.set_database_editing(database, True)
    with OfflineCopy.open(paths, password) as copy:
        identity = copy.meta.identity
    session = log_in(
        server.url, database, identity.username, password, client_id=identity.client_id
    )
    sync_copy(paths, session, create=False)
    with OfflineCopy.open(paths, password) as copy:
        assert copy.meta.offline_editing, "the sync did not record the server's policy"


@contextmanager
def lock_held_in_child(lock: Path, seconds: float) -> Iterator[None]:
    """Another process holds the copy's writer lock for ``seconds`` (as a sync of the copy in
    another program does): entered once it holds it, left once it has ended."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from offline_addon.storage.copy_lock import CopyLock\n"
        "with CopyLock(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(float(sys.argv[2]))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(lock), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield
        finally:
            proc.wait(seconds + 10)
