"""File operations of a rebuild: the fresh copy replaces the old one atomically, and what a
crashed rebuild left behind is removed before the next sync."""

from __future__ import annotations

import os
from contextlib import suppress

from offline_addon.errors import StorageError
from offline_addon.storage.paths import CopyPaths, fsync_folder


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
