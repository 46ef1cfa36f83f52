"""What differs by operating system (each platform's decisions, by injecting the platform), the
writer lock beside each copy (a real second holder, a real SIGKILLed holder), and temporary
files that never write through a planted link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from offline_addon.errors import CopyBusy
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.files import write_durably
from offline_addon.storage.system import (
    FlockLocker,
    MsvcrtLocker,
    Platform,
    create_new_file,
    file_locker,
    replace_file,
)
from reference_server.testing import read_line

WINDOWS = Platform.of("win32")
LINUX = Platform.of("linux")
MAC = Platform.of("darwin")


def test_each_platform_is_recognised() -> None:
    assert WINDOWS.family == "windows"
    assert Platform.of("cygwin").family == "windows"
    assert (LINUX.family, MAC.family) == ("posix", "posix")


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="this system has no O_NOFOLLOW")
def test_posix_creates_new_files_exclusively_without_following_links() -> None:
    for flags in (LINUX.exclusive_create_flags(), MAC.exclusive_create_flags()):
        assert flags & os.O_EXCL
        assert flags & os.O_CREAT
        assert flags & os.O_NOFOLLOW
        assert not flags & os.O_TRUNC
    assert LINUX.lock_file_flags() & os.O_NOFOLLOW
    assert not LINUX.lock_file_flags() & os.O_EXCL  # a lock file is shared by its writers


def test_windows_creates_new_files_exclusively_in_binary_mode() -> None:
    flags = WINDOWS.exclusive_create_flags()
    assert flags & os.O_EXCL
    assert flags & os.O_CREAT
    assert flags & getattr(os, "O_BINARY", 0x8000)
    assert not flags & getattr(os, "O_NOFOLLOW", 0)  # no such flag there: O_EXCL covers it


def test_only_posix_mode_bits_protect_and_only_posix_removes_an_open_file() -> None:
    assert (LINUX.mode_bits_protect, WINDOWS.mode_bits_protect) == (True, False)
    assert (LINUX.may_remove_open_file, WINDOWS.may_remove_open_file) == (True, False)
    assert (LINUX.replace_attempts, WINDOWS.replace_attempts) == (1, 5)


def test_each_platform_locks_with_its_own_module() -> None:
    asked: list[str] = []

    def fake_import(name: str) -> ModuleType:
        asked.append(name)
        return ModuleType(name)

    assert isinstance(file_locker(WINDOWS, fake_import), MsvcrtLocker)
    assert isinstance(file_locker(LINUX, fake_import), FlockLocker)
    assert asked == ["msvcrt", "fcntl"]


def test_windows_locker_locks_the_first_byte_without_waiting(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    fake: Any = SimpleNamespace(
        LK_NBLCK=2, LK_UNLCK=0, locking=lambda fd, mode, n: calls.append((mode, n))
    )
    locker = MsvcrtLocker(fake)
    fd = os.open(tmp_path / "x.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert locker.try_lock(fd)
        locker.unlock(fd)

        def refuse(fd: int, mode: int, n: int) -> None:
            raise PermissionError(13, "locked")

        fake.locking = refuse
        assert not locker.try_lock(fd)
    finally:
        os.close(fd)
    assert calls == [(2, 1), (0, 1)]


def test_windows_replace_is_retried_while_a_reader_holds_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "new").write_bytes(b"new")
    (tmp_path / "old").write_bytes(b"old")
    real, failures = os.replace, [PermissionError(13, "in use")] * 2

    def busy_twice(src: Any, dst: Any) -> None:
        if failures:
            raise failures.pop()
        real(src, dst)

    monkeypatch.setattr(os, "replace", busy_twice)
    replace_file(tmp_path / "new", tmp_path / "old", WINDOWS, sleep=lambda _s: None)
    assert (tmp_path / "old").read_bytes() == b"new"
    failures.append(PermissionError(13, "in use"))
    (tmp_path / "new").write_bytes(b"newer")
    with pytest.raises(PermissionError):
        replace_file(tmp_path / "new", tmp_path / "old", LINUX)


def test_a_planted_link_under_a_temporary_name_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "copy.json"
    (tmp_path / "copy.json.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        create_new_file(tmp_path / "copy.json.tmp")
    write_durably(target, lambda out: out.write(b"{}"), ".tmp")
    assert victim.read_text() == "precious"
    assert target.read_bytes() == b"{}"
    assert not (tmp_path / "copy.json.tmp").exists()
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_second_writer_waits_briefly_then_gets_a_clear_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "c.lock"
    with CopyLock(path):
        started = time.monotonic()
        with pytest.raises(CopyBusy) as busy:
            CopyLock(path, wait_s=0.3).acquire()
        assert time.monotonic() - started >= 0.3
    assert "another program on this computer is updating" in str(busy.value).lower()
    assert "sync again later" in str(busy.value)
    with CopyLock(path, wait_s=0.0) as lock:  # free again
        assert lock.held


def test_a_writer_that_waits_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "c.lock"
    holder = CopyLock(path)
    holder.acquire()
    waiter = CopyLock(path, wait_s=5.0, sleep=lambda s: (holder.release(), time.sleep(s)))
    waiter.acquire()
    assert waiter.held
    waiter.release()


def test_a_removed_lock_file_is_noticed_by_whoever_locked_it_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "c.lock"
    holder = CopyLock(path)
    holder.acquire()
    stale = os.open(path, os.O_RDWR)  # a waiter that opened the old file before its removal
    holder.remove_file()
    holder.release()
    try:
        # Locking the old file works, but it is no longer the one the name leads to, so a
        # CopyLock locks the new file instead; a second CopyLock then really is refused.
        with CopyLock(path) as first:
            assert path.exists()
            assert first.held
            with pytest.raises(CopyBusy):
                CopyLock(path, wait_s=0.0).acquire()
    finally:
        os.close(stale)


def test_the_lock_of_a_killed_holder_is_released_by_the_system(tmp_path: Path) -> None:
    path = tmp_path / "c.lock"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            from pathlib import Path
            from offline_addon.storage.copy_lock import CopyLock
            lock = CopyLock(Path({str(path)!r}))
            lock.acquire()
            print("held", flush=True)
            import time; time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert read_line(child.stdout, 30).strip() == "held"
        with pytest.raises(CopyBusy):
            CopyLock(path, wait_s=0.2).acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        with CopyLock(path, wait_s=2.0) as lock:
            assert lock.held
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
