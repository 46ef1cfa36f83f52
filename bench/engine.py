"""The add-on's engine as the benchmarks drive it: one place that knows the engine's API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.baseline import Login


def session_of(who: Login) -> Any:
    """The host's Session value for a bench login."""
    from hookspecs import Session

    return Session(
        server_url=who.server_url,
        database=who.database,
        user_id=who.user_id,
        username=who.username,
        client_id=who.client_id,
        token=who.token,
        password=who.password,
    )


def paths_for(folder: Path, who: Login) -> Any:
    """The CopyPaths of the bench user's copy of ``who.database`` in ``folder``."""
    from offline_addon.storage.paths import CopyPaths

    return CopyPaths.for_copy(folder, who.server_url, who.database, who.username, who.client_id)


def engine_sync(
    folder: Path,
    who: Login,
    *,
    create: bool,
    copy: Any = None,
    client: Any = None,
    compact: bool = True,
) -> tuple[Any, float]:
    """One ``sync_copy`` run (into ``copy`` when given: an already open copy, no KDF; over
    ``client`` when given: a kept-alive connection, as the add-on holds one per login;
    ``compact=False`` as the add-on's worker runs it, leaving the index upkeep to
    :func:`upkeep` after the result). Returns (SyncResult, seconds)."""
    from offline_addon.storage.offline_copy import Opening
    from offline_addon.sync.engine import sync_copy

    started = time.perf_counter()
    result = sync_copy(
        paths_for(folder, who),
        session_of(who),
        create=create,
        progress=None,
        opening=None if copy is None else Opening(copy),
        client=client,
        compact=compact,
    )
    return result, time.perf_counter() - started


def upkeep(folder: Path, who: Login, copy: Any, result: Any) -> float:
    """The index upkeep the add-on's worker runs after a sync's result (``index_upkeep``, as
    the dispatcher calls it); returns seconds."""
    from offline_addon.sync.engine import index_upkeep

    started = time.perf_counter()
    index_upkeep(paths_for(folder, who), copy, result)
    return time.perf_counter() - started


def api_first_sync(folder: Path, who: Login) -> tuple[Any, float, float, int]:
    """A first sync through the public API, as a host or script makes one:
    ``OfflineCopies(...).create(session)``. Returns (SyncResult, seconds until the result,
    seconds until the worker is idle again, file bytes). The result comes when the copy is
    complete and searchable; the worker then compacts the search index (the second figure
    includes that). The object is made before the clock starts and shut down after it stops
    (which closes the copy, so that the file size includes the checkpointed WAL)."""
    from offline_addon import AddonSettings, OfflineCopies

    copies = OfflineCopies(AddonSettings(database_path=str(folder)))
    try:
        session = session_of(who)
        started = time.perf_counter()
        result = copies.create(session)
        seconds = time.perf_counter() - started
        if not copies.wait_idle(120):
            raise RuntimeError("the add-on's worker did not become idle after the first sync")
        idle = time.perf_counter() - started
    finally:
        copies.shutdown()
    return result, seconds, idle, file_bytes(paths_for(folder, who).db)


def file_bytes(db: Path) -> int:
    """Bytes on disk of a SQLite file with its WAL (if any)."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def open_copy(folder: Path, who: Login) -> tuple[Any, float]:
    """Open the copy with the password (the KDF). Returns (OfflineCopy, seconds)."""
    from offline_addon.storage.offline_copy import OfflineCopy

    started = time.perf_counter()
    copy = OfflineCopy.open(paths_for(folder, who), who.password)
    return copy, time.perf_counter() - started


def page_limit() -> int:
    """The page size the engine asks for, so that the baseline pulls the same pages."""
    from offline_addon.sync import engine as sync

    for name in ("PAGE_LIMIT", "DEFAULT_PAGE_LIMIT", "PAGE_SIZE", "DEFAULT_LIMIT"):
        value = getattr(sync, name, None)
        if isinstance(value, int):
            return value
    return 500


def sync_client(who: Login) -> Any:
    """The add-on's HTTP client for ``who`` (keep-alive), as its worker holds one per login."""
    from offline_addon.sync.transport import SyncClient

    return SyncClient(who.server_url, who.token, who.client_id)
