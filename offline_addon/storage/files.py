"""Every file operation on offline copies: folders, durable writes, the atomic swap of a
rebuilt copy, moving copies to another folder, and deleting a copy with all its files.

What a file is called is :mod:`offline_addon.storage.paths`; what is inside it is the copy's own
business (:mod:`offline_addon.storage.offline_copy`, :mod:`offline_addon.storage.sidecar`).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from offline_addon.errors import StorageError
from offline_addon.storage.paths import CopyPaths


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` owner-only (0700) if missing.

    An existing folder keeps its permissions: it may be one the user chose on purpose; the
    copies inside are 0600 regardless.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the offline database folder {folder} ({exc.strerror}); "
            "check the 'database_path' setting and the folder's permissions."
        ) from None


def fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durably(target: Path, fill: Callable[[BinaryIO], object], temp_suffix: str) -> None:
    """Write ``target`` so that a crash leaves either the old file or the whole new one:
    ``fill`` writes a temporary file (owner-only), which is flushed to disk, renamed over
    ``target``, and the rename made durable. Raises OSError."""
    temporary = target.with_name(target.name + temp_suffix)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        fill(out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    fsync_folder(target.parent)


def remove_partial(paths: CopyPaths) -> None:
    """Remove what a crashed full sync left behind."""
    for path in (paths.partial, *paths.companions(paths.partial)):
        with suppress(FileNotFoundError):
            path.unlink()


def replace_copy(paths: CopyPaths) -> None:
    """Move the complete fresh copy over the old one.

    The old copy's side files go first: a stale WAL next to the new file would be replayed
    into it. Both connections are closed by now, so SQLite has already checkpointed them.
    """
    for side in paths.companions(paths.db):
        with suppress(FileNotFoundError):
            side.unlink()
    try:
        os.replace(paths.partial, paths.db)
    except OSError as exc:
        raise StorageError(
            f"Cannot replace the offline copy ({exc.strerror}); check permissions."
        ) from None
    fsync_folder(paths.folder)


def delete_copy(paths: CopyPaths) -> bool:
    """Remove the copy's file, SQLite side files and sidecar; True if anything was removed.

    Close every connection to the copy first.
    """
    removed = False
    for path in paths.all_files():
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(
                f"Cannot delete the offline copy file {path.name} ({exc.strerror}); "
                "close other programs using it and check permissions."
            ) from None
    fsync_folder(paths.folder)
    return removed


def move_copies(old: Path, new: Path, copy_ids: Iterable[str]) -> list[str]:
    """Move the copies ``copy_ids`` from ``old`` to ``new`` (rules in
    :mod:`offline_addon.settings`). Returns the ids of copies left in ``old`` because ``new``
    already has one with the same id."""
    kept: list[str] = []
    for copy_id in copy_ids:
        source = CopyPaths(old, copy_id)
        target = CopyPaths(new, copy_id)
        if target.db.exists() or target.sidecar.exists():
            kept.append(copy_id)
            continue
        ensure_folder(new)
        try:
            # Database (and SQLite side files) first, sidecar last: until the sidecar arrives
            # the copy is still complete and listed in the old folder.
            for name in (source.db, *source.companions(source.db)):
                if name.exists():
                    _move_file(name, target.folder / name.name)
            if source.sidecar.exists():  # a copy without one is still moved
                _move_file(source.sidecar, target.sidecar)
        except OSError as exc:
            raise StorageError(
                f"Could not move an offline copy from {old} to {new} ({exc.strerror}); it "
                "stays in the old folder. Check the folder's permissions and free space.",
            ) from None
    return kept


def _move_file(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)  # same filesystem: one atomic rename
        fsync_folder(target.parent)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    # Another filesystem: copy durably under a temporary name and rename, then remove.
    with source.open("rb") as reader:
        write_durably(target, lambda out: shutil.copyfileobj(reader, out), ".moving")
    source.unlink()
