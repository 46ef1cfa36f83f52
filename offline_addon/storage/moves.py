"""Moving copies to another folder (the ``database_path`` setting) as a transaction.

A move has two steps, so that the host can store the new setting between them, and which
folder holds a copy stays decidable after a crash at any instant:

1. **Prepare** (old folder → new folder, the old copy untouched): under both folders' writer
   locks, mark the move in the old folder (``<id>.move-out.json``: where to), copy the database
   file and its write-ahead log to temporary names in the new folder, flush them to disk and
   rename them into place, and write ``<id>.move-in.json`` (the sidecar to be, and where the
   copy comes from) last. The old copy is still complete and listed; the new one is not listed
   (a copy is listed where its sidecar is).
2. **Commit** (in the new folder): write the new sidecar from the move-in marker (from now on
   the copy is listed in the new folder), remove the old copy's files and markers, and remove
   the move-in marker last.

What a marker means depends on the folder in force (the setting), and :func:`settle_moves`
acts on it before the folder is used: a move-in marker in the folder in force means the host
stored the new setting, so the commit is finished; a move-out marker in the folder in force
means it did not, so the prepared files in the other folder are removed. A full disk, a
refused permission or a copy that changed while it was copied (another program had it open)
undoes the prepare at once and leaves the old folder as it was.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from offline_addon.errors import CopyBusy, OfflineAddonError, StorageError
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.files import (
    copy_durably,
    delete_copy,
    ensure_folder,
    fsync_folder,
    write_durably,
)
from offline_addon.storage.paths import MOVE_IN_SUFFIX, MOVE_OUT_SUFFIX, CopyPaths
from offline_addon.storage.sidecar import describe, read_sidecar, read_sidecar_file, write_sidecar

_log = logging.getLogger(__name__)

COPY_ATTEMPTS = 3
"""How often a copy that changed while it was copied is copied again before the move gives
up (it changes only when another program checkpoints it meanwhile)."""


@dataclass(frozen=True)
class PreparedMove:
    """What :func:`prepare_moves` did: the copies prepared and those that stay (the new folder
    already holds a copy of the same database)."""

    prepared: tuple[str, ...]
    kept: tuple[str, ...]


def check_folder_usable(folder: Path) -> None:
    """Create ``folder`` if needed and write a file in it; ConfigurationError or StorageError
    (with the reason) when that is not possible."""
    ensure_folder(folder)
    probe = folder / f".offline-addon-probe-{os.getpid()}"
    try:
        write_durably(probe, lambda out: out.write(b"probe"), ".tmp")
        probe.unlink()
    except OSError as exc:
        with suppress(OSError):
            probe.unlink()
        raise StorageError(
            f"Cannot write offline copies into {folder} ({exc.strerror}); choose another "
            "folder or check its permissions."
        ) from None


def prepare_moves(old: Path, new: Path, copy_ids: Iterable[str]) -> PreparedMove:
    """Step 1 for each copy: copy it into ``new`` without listing it there. On any failure
    every copy prepared so far is undone and the error raised (StorageError or CopyBusy): the
    old folder is then exactly as it was."""
    prepared: list[str] = []
    kept: list[str] = []
    ensure_folder(new)
    try:
        for copy_id in copy_ids:
            source, target = CopyPaths(old, copy_id), CopyPaths(new, copy_id)
            with _both_locked(source, target) as locks:
                if _holds_other_copy(target):
                    kept.append(copy_id)
                    continue
                try:
                    _prepare_one(source, target)
                except BaseException:
                    with suppress(OfflineAddonError, OSError):
                        _abort_one(source, target, locks)
                    raise
                prepared.append(copy_id)
    except BaseException:
        for copy_id in prepared:
            with suppress(OfflineAddonError, OSError):
                source, target = CopyPaths(old, copy_id), CopyPaths(new, copy_id)
                with _both_locked(source, target) as locks:
                    _abort_one(source, target, locks)
        raise
    return PreparedMove(tuple(prepared), tuple(kept))


def commit_moves(new: Path) -> list[str]:
    """Step 2 for every copy prepared into ``new``; the ids committed."""
    return settle_moves(new)


def settle_moves(folder: Path) -> list[str]:
    """Finish what a move left in ``folder``, the folder in force: commit the moves into it,
    undo the moves out of it. Returns the ids of the copies committed into it. A copy whose
    lock another writer holds is left for the next time."""
    committed: list[str] = []
    if not folder.is_dir():
        return committed
    for marker in sorted(folder.glob(f"*{MOVE_IN_SUFFIX}")):
        here = CopyPaths(folder, marker.name[: -len(MOVE_IN_SUFFIX)])
        try:
            source = _read_origin(here.move_in, "moved_from")
            with _both_locked(CopyPaths(source, here.copy_id), here) as locks:
                if here.move_in.exists():
                    _commit_one(CopyPaths(source, here.copy_id), here, locks)
                    committed.append(here.copy_id)
        except (OfflineAddonError, OSError) as exc:
            _log.warning(
                "offline copy %s: a prepared move into this folder could not be finished yet (%s)",
                here.copy_id[:12],
                type(exc).__name__,
            )
    for marker in sorted(folder.glob(f"*{MOVE_OUT_SUFFIX}")):
        here = CopyPaths(folder, marker.name[: -len(MOVE_OUT_SUFFIX)])
        try:
            target = _read_origin(here.move_out, "moving_to")
            with _both_locked(here, CopyPaths(target, here.copy_id)) as locks:
                if here.move_out.exists():
                    _abort_one(here, CopyPaths(target, here.copy_id), locks)
        except (OfflineAddonError, OSError) as exc:
            _log.warning(
                "offline copy %s: an unfinished move out of this folder could not "
                "be undone yet (%s)",
                here.copy_id[:12],
                type(exc).__name__,
            )
    return committed


def has_pending_moves(folder: Path) -> bool:
    """Whether ``folder`` holds a marker of an unfinished move (cheap: two globs)."""
    if not folder.is_dir():
        return False
    return any(True for _ in folder.glob(f"*{MOVE_IN_SUFFIX}")) or any(
        True for _ in folder.glob(f"*{MOVE_OUT_SUFFIX}")
    )


# -- one copy, both locks held -----------------------------------------------------------------


Locks = dict[Path, CopyLock]


@contextmanager
def _both_locked(source: CopyPaths, target: CopyPaths) -> Iterator[Locks]:
    """Both folders' writer locks of the copy (a folder that does not exist has nothing to
    lock), always taken in the same order (by path), so that two programs moving in opposite
    directions cannot wait for each other for ever."""
    with ExitStack() as stack:
        locks: Locks = {}
        for lock_path in sorted({source.lock, target.lock}):
            if lock_path.parent.is_dir():
                locks[lock_path] = stack.enter_context(CopyLock(lock_path))
        yield locks


def _remove_lock_file(paths: CopyPaths, locks: Locks) -> None:
    """The copy left ``paths.folder``: its (held) lock file goes too."""
    lock = locks.get(paths.lock)
    if lock is not None:
        lock.remove_file()


def _holds_other_copy(target: CopyPaths) -> bool:
    """Whether ``target`` holds a complete copy of its own (not one prepared by a move)."""
    if target.move_in.exists():
        return False  # a move prepared earlier (and never committed) is redone
    if not (target.db.exists() and target.sidecar.exists()):
        return False
    try:
        read_sidecar(target)
    except OfflineAddonError:
        return False
    return True


def _prepare_one(source: CopyPaths, target: CopyPaths) -> None:
    info = describe(source)  # a copy without its sidecar moves too; its next sync describes it
    _remove_prepared(target)
    _write_marker(source.move_out, {"moving_to": str(target.folder)})
    _copy_consistently(source, target)
    write_sidecar(target, info, target=target.move_in, extra={"moved_from": str(source.folder)})


def _copy_consistently(source: CopyPaths, target: CopyPaths) -> None:
    """Copy the database file and its write-ahead log as one consistent pair: the writer lock
    keeps syncs out, and a copy that changed meanwhile anyway (another program closed it and
    SQLite checkpointed) is copied again."""
    wal, target_wal = source.companions(source.db)[0], target.companions(target.db)[0]
    for _attempt in range(COPY_ATTEMPTS):
        before = _stamps(source.db, wal)
        try:
            copy_durably(source.db, target.db, ".moving")
            if wal.exists():
                copy_durably(wal, target_wal, ".moving")
            else:
                with suppress(FileNotFoundError):
                    target_wal.unlink()
        except OSError as exc:
            _remove_prepared(target)
            raise StorageError(
                f"Could not copy an offline copy from {source.folder} to {target.folder} "
                f"({exc.strerror}); it stays in {source.folder}. Check the new folder's free "
                "space and permissions."
            ) from None
        if _stamps(source.db, wal) == before:
            return
    _remove_prepared(target)
    raise CopyBusy(
        "Another program on this computer kept changing the offline copy while it was being "
        "moved; close it and change the folder again."
    )


def _commit_one(source: CopyPaths, target: CopyPaths, locks: Locks) -> None:
    info = read_sidecar_file(target, target.move_in)
    write_sidecar(target, info)  # from here the copy is listed in the new folder
    if source.folder != target.folder and source.folder.is_dir():
        _carry_attempts(source, target)
        delete_copy(source)  # the old copy's files and both markers
        _remove_lock_file(source, locks)
    target.move_in.unlink()
    fsync_folder(target.folder)


def _carry_attempts(source: CopyPaths, target: CopyPaths) -> None:
    """The wrong-password count goes along (best effort: without it the moved copy counts as
    having few tries left until its next sync, see ``login_attempts``)."""
    if source.attempts.exists():
        with suppress(OSError):
            copy_durably(source.attempts, target.attempts, ".moving")


def _abort_one(source: CopyPaths, target: CopyPaths, locks: Locks) -> None:
    prepared_here = (
        target.move_in.exists() and _read_origin(target.move_in, "moved_from") == source.folder
    )
    if prepared_here or not target.sidecar.exists():
        _remove_prepared(target)
        if not target.db.exists():
            _remove_lock_file(target, locks)
    with suppress(FileNotFoundError):
        source.move_out.unlink()
    fsync_folder(source.folder)


def _remove_prepared(target: CopyPaths) -> None:
    """Remove what a prepare wrote into ``target``'s folder (never a listed copy)."""
    if target.sidecar.exists() and not target.move_in.exists():
        return
    for path in (
        target.move_in,
        target.move_in.with_name(target.move_in.name + ".tmp"),
        target.db,
        *target.companions(target.db),
        *(target.moving(p) for p in (target.db, *target.companions(target.db))),
    ):
        with suppress(FileNotFoundError):
            path.unlink()
    fsync_folder(target.folder)


def _write_marker(path: Path, data: dict[str, str]) -> None:
    body = json.dumps(data, sort_keys=True).encode("utf-8")
    try:
        write_durably(path, lambda out: out.write(body), ".tmp")
    except OSError as exc:
        raise StorageError(
            f"Could not start moving the offline copy out of {path.parent} ({exc.strerror}); "
            "check free space and permissions."
        ) from None


def _read_origin(marker: Path, key: str) -> Path:
    try:
        value = json.loads(marker.read_bytes()).get(key)
    except (OSError, ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not os.path.isabs(value):
        raise StorageError("An offline copy's move marker is damaged; it is left as it is.")
    return Path(value)


def _stamps(*paths: Path) -> tuple[tuple[int, int, int] | None, ...]:
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stamps)
