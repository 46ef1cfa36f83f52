"""Writing processes killed with SIGKILL at random moments, over many trials, in four kinds.

- **First sync and incremental syncs.** Each trial: random server changes (updates, new
  records, deletes, seals, revocations, grants, now and then a server restored from backup,
  which forces a full rebuild), then a child process syncs and is SIGKILLed at a random moment:
  after a random number of committed pages plus a random delay, so the kill lands anywhere in
  fetching, decoding, writing or committing. After each trial the copy opens, passes
  ``PRAGMA integrity_check``, lost and rolled back nothing, its cursor did not go back, and it
  is complete or says it is not (inside and in its sidecar).
- **Rebuilds.** The server is restored from backup (410), the child rebuilds and is killed;
  the listed copy stays the old, whole one, and the next trial resumes the rebuild.
- **Re-keys.** The child re-keys every copy of the user and is killed; the copy opens with the
  old or the new password, whole, and its password generation never went down.
- **Moves.** The real ``psr-client settings set offline database_path`` is killed while it
  moves the copy; whichever folder the host stored, exactly one copy is listed, in that
  folder, whole, and the other folder holds none.

After all trials of a kind one complete sync converges. Always on: ``ALWAYS_TRIALS`` trials of
each kind. Behind ``-m slow``: ``PROOF_KILL_TRIALS`` (default 50) of each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from reference_server.errors import ApiError
from reference_server.testing import read_line
from tests.support.checks import (
    assert_converges,
    assert_nothing_lost,
    copy_meta,
    read_copy,
    sync,
)
from tests.support.host import assert_one_whole_copy, client_with_copy
from tests.support.kill import Child
from tests.support.records import server_records
from tests.support.worlds import World, child_job, new_world

ALWAYS_TRIALS = 10
LIMIT = 100  # changes per page: a 2k first sync takes 20 pages


def _run_child(
    world: World, session: Session, kill_after_pages: int | None, delay: float
) -> tuple[bool, int]:
    """Run one syncing child; SIGKILL it after ``kill_after_pages`` page lines plus ``delay``
    seconds (None: let it finish). Returns (killed while syncing, pages seen)."""
    child = Child(child_job(world, session, limit=LIMIT))
    pages = 0
    finished = False
    if kill_after_pages is not None:
        while pages < kill_after_pages:
            line = child.line(30)
            if not line or line.startswith("done"):
                finished = True
                break
            pages += 1
        if not finished:
            time.sleep(delay)
            finished = child.returncode is not None
            child.kill()
            if not finished:
                return child.returncode == -signal.SIGKILL, pages
    last = child.finish(60)
    assert child.returncode == 0, f"child failed: {child.err[-2000:]}"
    assert last.startswith("done") or finished
    return False, pages


def _random_changes(world: World, rng: random.Random) -> None:
    admin, db, user = world.admin, world.database, world.username
    live = list(world.expected())
    for rid in rng.sample(live, k=min(len(live), rng.randint(50, 600))):
        admin.update_record(db, rid, fields={"password": f"p{rng.randrange(10**9)}"})
    world.ids += admin.import_records(
        db, server_records(rng.randint(0, 200), "New", rng.randrange(10**6)), grant={user: "rwe"}
    )
    victims = rng.sample(world.ids, k=30)
    for rid in victims[:10]:
        if rid in live:
            admin.delete_record(db, rid)
    for rid in victims[10:20]:
        if rid in live:
            admin.seal_record(db, rid) if rng.random() < 0.5 else admin.set_rights(
                db, user, rid, export=False
            )
    for rid in victims[20:]:  # grant back and unseal (a deleted record is refused: skip it)
        with contextlib.suppress(ApiError):
            admin.set_rights(db, user, rid, read=True, export=True)
            admin.unseal_record(db, rid)
    if rng.random() < 0.15:
        admin.bump_epoch()  # a server restored from backup: the next sync rebuilds in full


def _trials(server: Any, folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    world = new_world(server, folder, records=2000, tag="Kill")
    session = world.login()
    killed = 0
    for trial in range(count):
        _random_changes(world, rng)
        before = read_copy(world.paths(), world.password)
        kill_after = rng.randint(0, 12)
        delay = rng.choice([0.0, rng.uniform(0, 0.02), rng.uniform(0, 0.2)])
        was_killed, _ = _run_child(world, session, kill_after, delay)
        killed += was_killed
        after = read_copy(world.paths(), world.password)
        gone = set(before.records) - set(world.expected())
        try:
            assert_nothing_lost(before, after, allowed_gone=gone)
        except AssertionError as exc:
            raise AssertionError(f"trial {trial} (seed {seed}): {exc}") from None
        expected = world.expected()
        for rid, (rev, _, _) in after.records.items():
            if rid in expected:
                assert rev <= expected[rid][0], f"trial {trial}: a rev from the future"
        _assert_whole_or_marked(world, trial)
    assert killed >= count // 2, f"only {killed} of {count} trials were killed mid-sync"
    assert_converges(world, session)


def _assert_whole_or_marked(world: World, trial: int) -> None:
    """The copy holds everything the server had at its last complete sync, or says (inside,
    and in its sidecar when it has one) that its first sync has not finished."""
    from offline_addon.storage.sidecar import read_sidecar

    paths = world.paths()
    if not paths.db.exists():
        return
    meta = copy_meta(paths, world.password)
    if meta.complete:
        return
    if paths.sidecar.exists():
        assert not read_sidecar(paths).complete, f"trial {trial}: the sidecar claims whole"


def _rebuild_trials(server: Any, folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    world = new_world(server, folder, records=1000, tag="Rebuild")
    session = world.login()
    assert_converges(world, session)
    resumed = killed = 0
    for trial in range(count):
        had_partial = world.paths().partial.exists()
        _random_changes(world, rng)
        if not had_partial:
            world.admin.bump_epoch()  # else the interrupted rebuild is resumed
        before = read_copy(world.paths(), world.password)
        child = Child(child_job(world, session, limit=LIMIT))
        line = ""
        for _ in range(rng.randint(0, 14)):
            line = child.until("page")
            if not line.startswith("page"):
                break
        time.sleep(rng.choice([0.0, rng.uniform(0, 0.05)]))
        if line.startswith(("done", "error")):
            child.finish()
            assert not line.startswith("error"), f"trial {trial}: {line}"
            resumed += had_partial
        else:
            killed += child.kill()
        after = read_copy(world.paths(), world.password)
        assert copy_meta(world.paths(), world.password).complete, f"trial {trial}"
        gone = set(before.records) - set(world.expected())
        try:
            assert_nothing_lost(before, after, allowed_gone=gone)
        except AssertionError as exc:
            raise AssertionError(f"rebuild trial {trial} (seed {seed}): {exc}") from None
    assert killed >= count // 3, f"only {killed} of {count} rebuilds were killed midway"
    assert_converges(world, session)
    assert not world.paths().partial.exists()


def _rekey_trials(server: Any, folder: Path, count: int, seed: int) -> None:
    from offline_addon.errors import WrongPassword
    from offline_addon.storage.offline_copy import OfflineCopy
    from offline_addon.storage.sidecar import read_sidecar

    rng = random.Random(seed)
    world = new_world(server, folder, records=1000, tag="Rekey")
    assert_converges(world)
    expected = read_copy(world.paths(), world.password).records
    current, generation, killed = world.password, 0, 0
    for trial in range(count):
        new = f"pw-Hq4!rekey-{seed}-{trial}-gen"
        session = dataclasses.replace(world.login(), password=new)
        child = Child(child_job(world, session, action="rekey", old_password=current))
        time.sleep(rng.uniform(0, 0.6))
        killed += child.kill()
        opened = []
        for password in (current, new):
            try:
                OfflineCopy.open(world.paths(), password).close()
                opened.append(password)
            except WrongPassword:
                continue
        assert len(opened) == 1, f"rekey trial {trial}: the copy opens with {len(opened)}"
        current = opened[0]
        assert read_copy(world.paths(), current).records == expected, f"rekey trial {trial}"
        stored = read_sidecar(world.paths()).password_generation or 0
        assert stored >= generation, f"rekey trial {trial}: the generation went down"
        generation = stored
    assert killed >= count // 4, f"only {killed} of {count} re-keys were killed midway"
    final = dataclasses.replace(world.login(), password=current)
    assert sync(world, final).outcome in ("synced", "unchanged")
    assert read_copy(world.paths(), current).records == world.expected()


def _move_trials(server: Any, home: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    world = new_world(server, home / "A", records=1000, tag="Move")
    client = client_with_copy(world, home)
    folders = [home / "A", home / "B"]
    killed = 0
    for trial in range(count):
        here = Path(client.stored_folder())
        there = folders[1] if here == folders[0] else folders[0]
        proc = client.popen("-v", "settings", "set", "offline", "database_path", str(there))
        assert proc.stderr is not None
        while (line := read_line(proc.stderr, 30)) and "copying" not in line:
            continue
        time.sleep(rng.uniform(0, 0.06))
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        killed += running
        stored = Path(client.stored_folder())
        other = folders[1] if stored == folders[0] else folders[0]
        try:
            assert_one_whole_copy(client, world, other)
        except AssertionError as exc:
            raise AssertionError(f"move trial {trial} (seed {seed}): {exc!r}") from exc
    assert killed >= count // 4, f"only {killed} of {count} moves were killed midway"
    assert client("offline", "sync").returncode == 0
    assert_one_whole_copy(
        client, world, folders[0] if Path(client.stored_folder()) == folders[1] else folders[1]
    )


KINDS = {"sync": _trials, "rebuild": _rebuild_trials, "rekey": _rekey_trials, "move": _move_trials}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sigkill_at_random_moments_never_damages_the_copy(
    server: Any, tmp_path: Path, kind: str
) -> None:
    KINDS[kind](server, tmp_path / "OfflineDB", ALWAYS_TRIALS, 1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sigkill_at_random_moments_many_trials(server: Any, tmp_path: Path, kind: str) -> None:
    count = int(os.environ.get("PROOF_KILL_TRIALS", "50"))
    KINDS[kind](server, tmp_path / "OfflineDB", count, int(os.environ.get("PROOF_KILL_SEED", "2")))
