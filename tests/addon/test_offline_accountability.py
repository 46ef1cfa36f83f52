"""Issue 16, items 2 and 3, end to end: the add-on loaded by its entry point into the reference
host, the real server on loopback, real SQLCipher files; only the add-on's wall clock is
faked, where a test says so. Wrong offline passwords up to the limit delete the copy and the
right one resets the count; a copy near its expiry warns at the offline login, in
``offline status`` and once in a notification; a logout renews an old copy within a bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import offline_addon.plugin as plugin_module
from offline_addon import AddonSettings, OfflineCopies
from offline_addon.api import LOGOUT_RENEW_S
from offline_addon.plugin import OfflineAddon
from offline_addon.runtime.status import EXPIRY_TITLE
from offline_addon.storage.login_attempts import read_attempts
from offline_addon.storage.paths import CopyPaths
from offline_addon.storage.sidecar import read_sidecar
from tests.support.accounts import log_in
from tests.support.host import DB, HostRun, Site
from tests.support.hostile import HostileServer, Reply

Make = Callable[..., HostRun]
GUESS = "guess-Qx7-offline-secret-91zz"
WEEK = 7 * 86400


def create_copy(run: HostRun) -> None:
    out = run.run("offline create")
    assert "is synchronised" in out, out
    run.settle()


def offline_host(make_run: Make, site: Site, shift_s: float = 0.0) -> HostRun:
    """A copy made online, then the server gone and a fresh host (as after a restart) whose
    add-on's wall clock is ``shift_s`` ahead."""
    run = make_run()
    assert run.login("alice-pw")
    create_copy(run)
    run.close()
    site.stop()
    plugin_module.addon.wall_clock = lambda: time.time() + shift_s
    return make_run()


def copy_paths(run: HostRun, site: Site, offline_dir: Path) -> CopyPaths:
    return CopyPaths.for_copy(offline_dir, site.url, DB, "alice", run.host.config.client_id)


def test_wrong_passwords_up_to_the_limit_delete_the_copy_and_the_right_one_resets_the_count(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    offline = offline_host(make_run, site)
    paths = copy_paths(offline, site, offline_dir)
    assert paths.db.exists()
    assert read_attempts(paths).limit == 10  # the reference server does not say: the default
    for _ in range(9):
        assert not offline.login(GUESS)
    assert "1 try left before this offline copy is deleted" in offline.new_output()
    assert offline.login("alice-pw")  # the right password: the count starts again
    assert read_attempts(paths).failures == 0
    offline.shell.logout()
    said = []
    for _ in range(10):
        assert not offline.login(GUESS)
        said.append(offline.new_output())
    assert not any("left before" in text for text in said[:6])
    assert "3 tries left before this offline copy is deleted" in said[6]
    assert "Wrong password 10 times in a row" in said[9]
    assert "was deleted from this computer" in said[9]
    assert all(GUESS not in text for text in said)
    assert [p.name for p in offline_dir.iterdir() if not p.name.endswith(".lock")] == []
    assert not offline.login("alice-pw")
    assert offline.shell.offline is None


def test_a_copy_near_its_expiry_warns_at_login_in_status_and_once_by_notification(
    make_run: Make, site: Site
) -> None:
    offline = offline_host(make_run, site, WEEK - 5.5 * 3600)
    assert offline.login("alice-pw")
    out = offline.new_output()
    assert "Usable offline for 5 more hours; connect to renew." in out
    assert "[warning] Offline copy expires soon: The offline copy of" in out
    assert "is usable offline for 5 more hours; connect to renew." in out
    status = offline.run("offline status")
    assert "Usable offline for 5 more hours; connect to renew." in status
    offline.shell.logout()
    assert offline.login("alice-pw")
    again = offline.new_output()
    assert "Usable offline for 5 more hours" in again  # the login says it every time
    assert "[warning] Offline copy expires soon" not in again  # the notification once


def test_a_fresh_copy_does_not_warn(make_run: Make, site: Site) -> None:
    offline = offline_host(make_run, site)
    assert offline.login("alice-pw")
    out = offline.new_output() + offline.run("offline status")
    assert "connect to renew" not in out
    assert "expires soon" not in out


def test_a_logout_renews_a_copy_last_synced_over_an_hour_ago(make_run: Make, site: Site) -> None:
    run = make_run(sync_after_login=False)
    assert run.login("alice-pw")
    create_copy(run)
    run.close()
    plugin_module.addon.wall_clock = lambda: time.time() + 2 * 3600
    later = make_run(sync_after_login=False)
    assert later.login("alice-pw")
    session = later.shell.online.session  # type: ignore[union-attr]
    before = read_sidecar(later.copies.paths_for(session)).last_sync
    assert before is not None
    started = time.monotonic()
    later.shell.logout()
    assert time.monotonic() - started < 5.0
    after = read_sidecar(later.copies.paths_for(session)).last_sync
    assert after is not None
    assert after - before > 3600  # renewed at the (shifted) logout time


def test_a_logout_after_a_recent_sync_does_not_sync_again(make_run: Make, site: Site) -> None:
    run = make_run(sync_after_login=False)
    assert run.login("alice-pw")
    create_copy(run)
    session = run.shell.online.session  # type: ignore[union-attr]
    syncs = run.copies.status(session).status.syncs
    run.shell.logout()
    assert run.copies.status(session).status.syncs == syncs


class Notes:
    """A feedback channel that keeps what the add-on told the user."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def progress(self, done: int, total: int, text: str) -> None:
        """Progress is not what these tests are about."""

    def notify(self, title: str, text: str, level: str = "info") -> None:
        self.told.append((title, text))

    def expiry(self) -> list[str]:
        return [text for title, text in self.told if title == EXPIRY_TITLE]


def test_online_with_failing_syncs_the_timer_warns_once_per_stage_not_per_tick(
    site: Site, tmp_path: Path
) -> None:
    shift = [0.0]
    notes = Notes()
    copies = OfflineCopies(
        AddonSettings(database_path=str(tmp_path / "copies")),
        feedback=notes,
        wall_clock=lambda: time.time() + shift[0],
    )
    try:
        session = log_in(site.url, DB, "alice", "alice-pw")
        copies.create(session)
        site.stop()
        shift[0] = WEEK - 5.5 * 3600
        copies.session_started(session)  # its login sync fails: the server is gone
        for minute in range(1, 6):
            copies.timer(time.time() + 60 * minute)
            assert copies.wait_idle(30)
        assert notes.expiry() == [
            f"The offline copy of '{DB}' is usable offline for 5 more hours; connect to renew."
        ]
        shift[0] = WEEK - 0.5 * 3600
        for minute in range(6, 9):
            copies.timer(time.time() + 60 * minute)
            assert copies.wait_idle(30)
        assert len(notes.expiry()) == 2
        assert "usable offline for 29 more minutes; connect to renew" in notes.expiry()[1]
    finally:
        assert copies.shutdown(10)


def test_a_logout_is_never_held_longer_than_the_bound_by_a_hanging_server(
    tmp_path: Path,
) -> None:
    shift = [0.0]
    copies = OfflineCopies(
        AddonSettings(database_path=str(tmp_path / "copies")),
        wall_clock=lambda: time.time() + shift[0],
    )
    addon = OfflineAddon()
    addon.copies = copies
    try:
        with HostileServer(lifetime_s=30) as srv:
            copies.create(srv.session, timeout=30)
            srv.route("/offline/", Reply(stall=True))
            shift[0] = 2 * 3600
            started = time.monotonic()
            addon.on_logout(srv.session)
            took = time.monotonic() - started
            assert took < LOGOUT_RENEW_S + 1.0
            assert srv.hits("/offline/") >= 1  # the renewal was tried
            # and the worker is not stuck behind the hanging server either
            assert copies.wait_idle(LOGOUT_RENEW_S + 5)
    finally:
        assert copies.shutdown(10)


def test_a_logout_without_a_copy_asks_the_server_nothing(tmp_path: Path) -> None:
    copies = OfflineCopies(AddonSettings(database_path=str(tmp_path / "copies")))
    try:
        with HostileServer() as srv:
            assert not copies.renew_before_logout(srv.session)
            assert srv.requests == []
    finally:
        assert copies.shutdown(10)


def test_an_online_login_that_renews_the_copy_does_not_warn_first(
    site: Site, tmp_path: Path
) -> None:
    shift = [0.0]
    notes = Notes()
    copies = OfflineCopies(
        AddonSettings(database_path=str(tmp_path / "copies")),
        feedback=notes,
        wall_clock=lambda: time.time() + shift[0],
    )
    try:
        session = log_in(site.url, DB, "alice", "alice-pw")
        copies.create(session)
        shift[0] = WEEK - 5.5 * 3600  # near the end, but the server is there
        copies.session_started(session)
        copies.timer(time.time() + 60)
        assert copies.wait_idle(30)
        assert copies.status(session).status.syncs == 2  # the login's sync renewed it
        assert notes.expiry() == []
    finally:
        assert copies.shutdown(10)
