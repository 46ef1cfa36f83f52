"""Nothing lost, nothing shown as whole when it is not: an interrupted first sync is marked
incomplete everywhere and resumes; an interrupted rebuild resumes; a password change is never
undone by a second session; the clock cannot be walked back around the validity."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from hookspecs import OfflineCredentials, Session
from offline_addon import AddonSettings, ClockWentBack, CopyExpired, OfflineCopies, WrongPassword
from offline_addon.commands import describe_copy
from offline_addon.plugin import OfflineAddon
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.accounts import CLIENT_ID
from tests.support.checks import assert_converges, assert_user_message, copy_meta, read_copy, sync
from tests.support.kill import Child
from tests.support.records import server_records
from tests.support.worlds import World, child_job, new_world

RECORDS = 1500
LIMIT = 25
PAGES = RECORDS // LIMIT
DAY = 86400.0


@pytest.fixture
def big_world(server: Any, tmp_path: Path) -> World:
    return new_world(server, tmp_path / "OfflineDB", records=RECORDS, tag="Whole")


def _killed_after(world: World, pages: int) -> None:
    child = Child(child_job(world, world.login(), limit=LIMIT))
    for _ in range(pages):
        assert child.until("page").startswith("page")
    assert child.kill(), "the sync ended before it was killed"


def _pages_of_a_full_run(world: World) -> tuple[str, int]:
    child = Child(child_job(world, world.login(), limit=LIMIT))
    pages = 0
    while (line := child.line()).startswith("page"):
        pages += 1
    child.finish()
    return line, pages


def _credentials(world: World, password: str | None = None) -> OfflineCredentials:
    return OfflineCredentials(
        world.url, world.database, world.username, CLIENT_ID, password or world.password
    )


def test_an_interrupted_first_sync_says_so_everywhere_and_resumes(big_world: World) -> None:
    world = big_world
    _killed_after(world, 5)
    meta = copy_meta(world.paths(), world.password)
    assert not meta.complete
    assert meta.expected_total is not None
    assert meta.expected_total >= RECORDS
    copies = OfflineCopies(AddonSettings(database_path=str(world.folder)))
    try:
        [info] = copies.list()
        assert not info.complete
        assert info.record_count > 0
        line = describe_copy(info, time.time())
        assert f"incomplete: {info.record_count} of about {info.expected_total} records" in line
        # The offline login opens it (part of the records is better than none) and says so
        # on its first line.
        addon = OfflineAddon()
        addon.copies = copies
        result = addon.offline_login(_credentials(world))
        assert result is not None
        assert result.session is not None
        first = result.message.splitlines()[0]
        assert "incomplete: " in first, result.message
        assert " of about " in first, result.message
        held = len(result.session.list_records())
        assert 0 < held < RECORDS
        result.session.close()
    finally:
        copies.shutdown()
    # The next sync goes on from where the first one stopped, not from page 1.
    outcome, pages = _pages_of_a_full_run(world)
    assert outcome == "done synced"
    assert pages < PAGES - 3
    assert copy_meta(world.paths(), world.password).complete
    assert read_copy(world.paths(), world.password).records == world.expected()


def test_an_interrupted_rebuild_keeps_the_old_copy_whole_and_resumes(big_world: World) -> None:
    world = big_world
    assert_converges(world)
    world.admin.bump_epoch()  # the next sync must rebuild in full
    _killed_after(world, 10)
    # The listed copy is the old one, whole; the rebuild's file waits beside it.
    assert read_copy(world.paths(), world.password).records == world.expected()
    assert copy_meta(world.paths(), world.password).complete
    assert world.paths().partial.exists()
    outcome, pages = _pages_of_a_full_run(world)
    assert outcome == "done repaired"
    assert pages < PAGES - 5, "the rebuild started again from page 1"
    assert not world.paths().partial.exists()
    assert_converges(world)


# -- a password change and a second session ----------------------------------------------------


def _change_password(world: World, session: Session, new: str) -> Session:
    answer = requests.post(
        f"{world.url}/api/v1/session/password",
        json={"old_password": session.password, "new_password": new},
        headers={"Authorization": f"Bearer {session.token}"},
        timeout=10,
    )
    assert answer.status_code == 204, answer.text
    return dataclasses.replace(session, password=new)


def _login(world: World, database: str, password: str) -> Session:
    session = dataclasses.replace(world, database=database, password=password).login()
    return session


def test_a_password_change_is_never_undone_by_a_session_with_the_old_one(
    server: Any, world: World
) -> None:
    old, new = world.password, "pw-Hq4!new-gen-one"
    other = world.database + "-second"
    server.admin.create_database(other, offline_allowed=True)
    server.admin.import_records(
        other, server_records(20, "Other", 7), grant={world.username: "rwe"}
    )
    a_copies = OfflineCopies(AddonSettings(database_path=str(world.folder)))
    b_copies = OfflineCopies(AddonSettings(database_path=str(world.folder)))
    try:
        session_a = world.login()
        session_a_other = _login(world, other, old)
        a_copies.create(session_a)
        a_copies.create(session_a_other)
        a_copies.sync_now(session_a)  # A keeps its copy open between syncs (its login cache)
        # B (another window) changes the password and re-keys: every copy of the user.
        session_b = _change_password(world, world.login(), new)
        assert b_copies.rekey(session_b, old)
        other_paths = a_copies.paths_for(session_a_other)
        for paths in (world.paths(), other_paths):
            OfflineCopy.open(paths, new).close()
            with pytest.raises(WrongPassword):
                OfflineCopy.open(paths, old).close()
        server.requests.clear()
        # A still holds the old password: told to log in again, nothing downloaded, and the
        # copies stay keyed with the new password (on both databases).
        for session in (session_a, session_a_other):
            with pytest.raises(WrongPassword) as refused:
                a_copies.sync_now(session)
            assert_user_message(refused.value, "log in again")
        assert not [path for _, path in server.requests.seen() if path.endswith("/changes")]
        for paths in (world.paths(), other_paths):
            OfflineCopy.open(paths, new).close()
        # B's sync and a fresh login with the new password go on without a rebuild.
        assert b_copies.sync_now(session_b).outcome in ("synced", "unchanged")
        fresh_other = _login(world, other, new)
        assert b_copies.sync_now(fresh_other).outcome in ("synced", "unchanged")
        status = a_copies.status(session_a).status
        assert status.last_error is not None
        assert "log in again" in status.last_error.lower()
    finally:
        a_copies.shutdown()
        b_copies.shutdown()


def test_a_copy_keyed_with_an_older_password_is_still_rebuilt(world: World) -> None:
    # The other way round: a session with the newer password rebuilds a copy that was left
    # under the old one (changed elsewhere, not re-keyed here).
    session = world.login()
    sync(world, session, create=True)
    changed = _change_password(world, session, "pw-Hq4!new-gen-two")
    assert sync(world, changed).outcome == "repaired"
    OfflineCopy.open(world.paths(), changed.password).close()
    assert copy_meta(world.paths(), changed.password).password_generation == 1


# -- the clock ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_clock_cannot_be_walked_back_around_the_validity(world: World) -> None:
    start = time.time()
    clock = FakeClock(start)
    copies = OfflineCopies(AddonSettings(database_path=str(world.folder)), wall_clock=clock)
    try:
        copies.create(world.login())
        for later in (8 * DAY, 400 * DAY):
            clock.now = start + later
            with pytest.raises(CopyExpired):
                copies.open_offline(_credentials(world))
            clock.now = start + 1 * DAY  # set back inside the validity
            with pytest.raises(ClockWentBack) as back:
                copies.open_offline(_credentials(world))
            assert_user_message(back.value, "clock")
        # A server contact re-anchors it: once synced, the copy opens again.
        copies.sync_now(world.login())
        copies.open_offline(_credentials(world)).close()
    finally:
        copies.shutdown()
