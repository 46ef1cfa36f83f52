"""What differs by operating system, in one place: locking a file, creating a file owner-only
without following a planted link, and replacing a file.

Each decision is made from a :class:`Platform` value (default: this computer's), so that the
tests take the Windows branch's decisions on Linux and the other way round (DESIGN.md
"Platforms"). The system calls themselves sit behind :class:`FileLocker`, whose module
(``fcntl`` or ``msvcrt``) is imported only when used.

- **Locks.** POSIX: ``flock`` on the lock file (the whole file, exclusive, non-blocking).
  Windows: ``msvcrt.locking`` on its first byte. Both are released by the operating system when
  the holding process ends, however it ends (a SIGKILL, a power-off), so a lock left by a
  killed program never blocks anybody.
- **New files.** ``O_CREAT | O_EXCL`` everywhere: the call fails on any existing name, also a
  symbolic link (dangling or not), so a link planted under a temporary name in a shared folder
  cannot make the add-on write through it. POSIX adds ``O_NOFOLLOW`` and ``O_CLOEXEC``; mode
  0600 makes the file owner-only. Windows has neither flag and ignores the mode bits; there the
  user's profile folder's access list keeps the files private, and ``O_BINARY`` stops newline
  translation.
- **Replacing a file.** ``os.replace`` is atomic on both. Windows refuses to replace a file
  that another program holds open (SQLite opens without sharing deletes), so there it is tried
  a few times before the error reaches the user.
- **Removing a held lock file.** POSIX may unlink an open file; Windows may not, so there the
  (empty) lock file stays.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal, Protocol

Family = Literal["posix", "windows"]


@dataclass(frozen=True)
class Platform:
    """The operating-system family whose rules apply."""

    family: Family

    @classmethod
    def of(cls, sys_platform: str) -> Platform:
        """The platform for a ``sys.platform`` value (``win32``, ``linux``, ``darwin``...)."""
        return cls("windows" if sys_platform.startswith(("win", "cygwin")) else "posix")

    @property
    def lock_module(self) -> str:
        """The standard module that locks files here."""
        return "msvcrt" if self.family == "windows" else "fcntl"

    def exclusive_create_flags(self) -> int:
        """``os.open`` flags for a new file that must not exist yet, not even as a link."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        return flags | self._extra_flags()

    def lock_file_flags(self) -> int:
        """``os.open`` flags for a lock file: created if missing, never through a link."""
        return os.O_RDWR | os.O_CREAT | self._extra_flags()

    def _extra_flags(self) -> int:
        if self.family == "windows":
            return int(getattr(os, "O_BINARY", 0x8000))
        # Both exist on every POSIX system Python supports; getattr keeps mypy on Windows calm.
        return int(getattr(os, "O_NOFOLLOW", 0)) | int(getattr(os, "O_CLOEXEC", 0))

    @property
    def mode_bits_protect(self) -> bool:
        """Whether a file's mode bits (0600) keep other users out (not on Windows)."""
        return self.family == "posix"

    @property
    def may_remove_open_file(self) -> bool:
        """Whether a file may be unlinked while it is open (a held lock file)."""
        return self.family == "posix"

    @property
    def replace_attempts(self) -> int:
        """How often ``os.replace`` is tried before its error counts."""
        return 5 if self.family == "windows" else 1


THIS_PLATFORM = Platform.of(sys.platform)
"""The platform this process runs on."""


def create_new_file(path: Path, platform: Platform = THIS_PLATFORM) -> int:
    """Create ``path`` (owner-only) and return a descriptor open for writing. Raises
    FileExistsError when the name exists in any form (also as a link), else OSError."""
    return os.open(path, platform.exclusive_create_flags(), 0o600)


def replace_file(
    source: Path,
    target: Path,
    platform: Platform = THIS_PLATFORM,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Atomically put ``source`` in the place of ``target``. Raises OSError."""
    for attempt in range(platform.replace_attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt + 1 >= platform.replace_attempts:
                raise
            sleep(0.1 * (attempt + 1))  # Windows: a reader may still hold the old file


class FileLocker(Protocol):
    """Takes and releases an exclusive, non-blocking lock on an open file."""

    def try_lock(self, fd: int) -> bool:
        """Lock ``fd``; False when another holder has it."""
        ...

    def unlock(self, fd: int) -> None:
        """Release the lock on ``fd``."""
        ...


class FlockLocker:
    """POSIX ``flock``: per open file, released when the last descriptor closes or the
    process ends."""

    def __init__(self, fcntl: ModuleType) -> None:
        self._fcntl = fcntl

    def try_lock(self, fd: int) -> bool:
        """``flock(LOCK_EX | LOCK_NB)``."""
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(self, fd: int) -> None:
        """``flock(LOCK_UN)``."""
        self._fcntl.flock(fd, self._fcntl.LOCK_UN)


class MsvcrtLocker:
    """Windows ``msvcrt.locking`` on the first byte; released when the process ends."""

    def __init__(self, msvcrt: ModuleType) -> None:
        self._msvcrt = msvcrt

    def try_lock(self, fd: int) -> bool:
        """``locking(LK_NBLCK, 1)`` at offset 0."""
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            self._msvcrt.locking(fd, self._msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(self, fd: int) -> None:
        """``locking(LK_UNLCK, 1)`` at offset 0."""
        os.lseek(fd, 0, os.SEEK_SET)
        self._msvcrt.locking(fd, self._msvcrt.LK_UNLCK, 1)


def file_locker(
    platform: Platform = THIS_PLATFORM,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> FileLocker:
    """The locker of ``platform`` (``import_module`` lets tests hand in a stand-in module)."""
    module = import_module(platform.lock_module)
    if platform.family == "windows":
        return MsvcrtLocker(module)
    return FlockLocker(module)
