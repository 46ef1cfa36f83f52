"""Every file operation on offline copies: folders, durable writes, the atomic swap of a
rebuilt copy, durable copies of files, and deleting a copy with all its files (moving copies
to another folder: :mod:`offline_addon.storage.moves`).

The functions that change a copy's files expect the caller to hold the copy's
:class:`~offline_addon.storage.copy_lock.CopyLock`.

What a file is called is :mod:`offline_addon.storage.paths`; what is inside it is the copy's own
business (:mod:`offline_addon.storage.offline_copy`, :mod:`offline_addon.storage.sidecar`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from offline_addon.errors import StorageError
from offline_addon.storage.paths import CopyPaths
from offline_addon.storage.system import create_new_file, replace_file


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
    ``target``, and the rename made durable. Raises OSError.

    The temporary file is created new (``O_EXCL``, no link followed): whatever already has
    its name (a crash's leftover, or a link planted in a shared folder) is removed first, never
    written through."""
    temporary = target.with_name(target.name + temp_suffix)
    fd = _create_replacing_leftover(temporary)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        replace_file(temporary, target)
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise
    fsync_folder(target.parent)


def _create_replacing_leftover(path: Path) -> int:
    try:
        return create_new_file(path)
    except FileExistsError:
        path.unlink()  # removes a link itself, not what it points to
        return create_new_file(path)


def copy_durably(source: Path, target: Path, temp_suffix: str) -> None:
    """Copy ``source`` to ``target`` through a new temporary file (owner-only), flushed to
    disk and renamed into place. Raises OSError (for example ENOSPC; then nothing of the
    copy is left)."""
    with source.open("rb") as reader:
        write_durably(target, lambda out: shutil.copyfileobj(reader, out, 1024 * 1024), temp_suffix)


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
        replace_file(paths.partial, paths.db)
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
