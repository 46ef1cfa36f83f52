"""The background worker and the hooks: hooks only enqueue, syncs never overlap, triggers fold
into one follow-up, shutdown is clean. The sync function is replaced here only to hold a sync
open on demand (a timing a real sync cannot offer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookspecs import OfflineCredentials, SavedRecord, Session
from offline_addon.api import OfflineCopies
from offline_addon.errors import ShuttingDown, SyncCancelled
from offline_addon.plugin import OfflineAddon
from offline_addon.settings import AddonSettings
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import SyncResult

SESSION = Session(
    server_url="http://127.0.0.1:9",
    database="demo",
    user_id="u-alice",
    username="alice",
    client_id="c1",
    token="tok",
    password="pw",
)
RESULT = SyncResult("synced", 0, 0, 0, 0, 0.0, None, "ok")


class HeldSync:
    """A sync function that records calls and their threads, and can be held open."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = 0
        self.overlap = False
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(
        self,
        paths: CopyPaths,
        session: Session,
        *,
        create: bool,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        **_: Any,
    ) -> SyncResult:
        self.running += 1
        self.overlap = self.overlap or self.running > 1
        self.calls.append(threading.current_thread().name)
        self.entered.set()
        try:
            for done in range(3):
                self.release.wait(10)
                if progress is not None:
                    progress(done + 1, 3)
                if cancel is not None and cancel():  # as the engine: between pages
                    raise SyncCancelled
            paths.folder.mkdir(parents=True, exist_ok=True)
            paths.db.touch()
            return RESULT
        finally:
            self.running -= 1


@pytest.fixture
def held() -> HeldSync:
    return HeldSync()


@pytest.fixture
def copies(tmp_path: Path, held: HeldSync) -> Any:
    api = OfflineCopies(AddonSettings(database_path=str(tmp_path / "offline")), sync=held)
    yield api
    assert api.shutdown(10)


def test_requests_during_a_sync_fold_into_one_follow_up(
    copies: OfflineCopies, held: HeldSync
) -> None:
    held.release.clear()
    first = copies.request_sync(SESSION, create=True)
    assert held.entered.wait(5)
    waiting = [copies.request_sync(SESSION) for _ in range(50)]
    held.release.set()
    assert first.result(10) == RESULT
    assert all(f.result(10) == RESULT for f in waiting)
    assert copies.wait_idle(10)
    assert len(held.calls) == 2
    assert not held.overlap


def test_syncs_run_on_the_worker_thread_never_the_callers(
    copies: OfflineCopies, held: HeldSync
) -> None:
    copies.create(SESSION, timeout=10)
    assert held.calls == ["offline-addon-sync"]


def test_hooks_only_enqueue_and_cost_microseconds(copies: OfflineCopies, held: HeldSync) -> None:
    addon = OfflineAddon()
    addon.copies = copies
    copies.create(SESSION, timeout=10)
    addon.on_login(SESSION)
    assert copies.wait_idle(10)
    calls_before = len(held.calls)
    held.release.clear()  # a sync that starts now would block: hooks must not wait for it
    record = SavedRecord("r1", "demo", saved_by=SESSION.user_id)
    now = time.time()
    started = time.perf_counter()
    for i in range(1000):
        addon.on_record_saved(SESSION, record)
        addon.on_timer(SESSION, now + i * 0.001)
    per_call = (time.perf_counter() - started) / 2000
    assert per_call < 200e-6, f"{per_call * 1e6:.0f} µs per hook call"
    held.release.set()
    assert copies.wait_idle(15)
    assert len(held.calls) - calls_before <= 2


def test_hooks_never_raise_into_the_host(tmp_path: Path) -> None:
    addon = OfflineAddon()

    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("boom")

    addon.copies = Broken()  # type: ignore[assignment]
    addon.on_login(SESSION)
    addon.on_logout(SESSION)
    addon.on_record_saved(SESSION, SavedRecord("r", "demo", SESSION.user_id))
    addon.on_timer(SESSION, time.time())
    addon.on_password_changed(SESSION, "old")
    addon.on_settings_changed("offline", {"sync_interval_minutes": 5})
    result = addon.offline_login(OfflineCredentials("http://x", "demo", "alice", "c1", "pw"))
    assert result is not None
    assert result.session is None


def test_shutdown_stops_a_running_sync_and_fails_waiting_callers(
    copies: OfflineCopies, held: HeldSync
) -> None:
    held.release.clear()
    first = copies.request_sync(SESSION, create=True)
    assert held.entered.wait(5)
    queued = copies.request_sync(SESSION)
    stopper = threading.Thread(target=copies.shutdown, args=(10,))
    stopper.start()
    time.sleep(0.1)
    held.release.set()
    stopper.join(10)
    with pytest.raises(ShuttingDown):
        first.result(5)
    with pytest.raises(ShuttingDown):
        queued.result(5)
    with pytest.raises(ShuttingDown):
        copies.request_sync(SESSION).result(1)


def test_saves_of_another_user_are_not_counted(copies: OfflineCopies) -> None:
    assert not copies.record_saved(SESSION, SavedRecord("r", "demo", saved_by="u-bob"))
    assert copies.record_saved(SESSION, SavedRecord("r", "demo", saved_by=SESSION.user_id))


def test_creating_the_addon_starts_no_thread_and_touches_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    threads = threading.active_count()
    addon = OfflineAddon()
    assert threading.active_count() == threads
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "data").exists()
    assert addon.copies.shutdown(1)
