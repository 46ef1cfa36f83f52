"""One writer per copy, across processes: the :class:`CopyLock` beside each copy.

Whoever changes a copy's files (a sync with its rebuild, a re-key, a move, a delete) holds the
copy's lock for that one operation. Readers (an offline session, the worker's cached copy
between syncs) do not take it: SQLite's own locking keeps their reads consistent while a
writer commits, and a replaced file stays readable to whoever still has it open.

The lock is an operating-system lock on ``<copy id>.lock`` in the copy's folder
(:mod:`offline_addon.storage.system`), so a killed holder's lock is released by the system.
The lock file may be removed by its holder (when the copy is deleted or moved away); whoever
locked it meanwhile notices that the name now leads to another file and locks again, so two
holders can never believe they hold it at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from offline_addon.errors import CopyBusy, StorageError
from offline_addon.storage.system import THIS_PLATFORM, FileLocker, Platform, file_locker

DEFAULT_WAIT_S = 5.0
"""How long a second writer waits for the lock before it gives up with CopyBusy (two short
incremental syncs at once simply run one after the other)."""

_POLL_S = 0.05


class CopyLock:
    """The writer lock of one copy (``with CopyLock(path):``); not re-entrant."""

    def __init__(
        self,
        path: Path,
        *,
        wait_s: float = DEFAULT_WAIT_S,
        platform: Platform = THIS_PLATFORM,
        locker: FileLocker | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self._wait_s = wait_s
        self._platform = platform
        self._locker = locker
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "free"
        return f"CopyLock({self.path.name}, {state})"

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``wait_s``; CopyBusy when another writer keeps it,
        StorageError when the lock file cannot be made."""
        if self._fd is not None:
            raise RuntimeError("CopyLock is not re-entrant")
        locker = self._locker or file_locker(self._platform)
        deadline = self._clock() + self._wait_s
        while True:
            fd = self._open()
            if locker.try_lock(fd):
                if self._still_named(fd):
                    self._fd = fd
                    return
                locker.unlock(fd)  # removed by its last holder meanwhile: lock the new one
                os.close(fd)
                continue
            os.close(fd)
            if self._clock() >= deadline:
                raise CopyBusy()
            self._sleep(_POLL_S)

    def release(self) -> None:
        """Let the lock go (closing the descriptor releases it in any case)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            (self._locker or file_locker(self._platform)).unlock(fd)
        finally:
            os.close(fd)

    def remove_file(self) -> None:
        """Remove the lock file while holding it (the copy is gone from this folder); where
        the system cannot remove an open file, the empty file stays."""
        if self._fd is None:
            raise RuntimeError("only the holder may remove the lock file")
        if not self._platform.may_remove_open_file:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            return  # an empty lock file left behind holds nothing

    def __enter__(self) -> CopyLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, self._platform.lock_file_flags(), 0o600)
        except OSError as exc:
            raise StorageError(
                f"Cannot create the offline copy's lock file in {self.path.parent} "
                f"({exc.strerror}); check the folder's permissions."
            ) from None

    def _still_named(self, fd: int) -> bool:
        """Whether the locked file is still the one ``path`` names."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
