"""The syncing process killed with SIGKILL at random moments, over many trials.

Each trial: random server changes (updates, new records, deletes, seals, revocations, grants,
now and then a server restored from backup, which forces a full rebuild), then a child process
syncs and is SIGKILLed at a random moment: after a random number of committed pages plus a
random delay, so the kill lands anywhere in fetching, decoding, writing or committing. After
each trial the copy opens, passes ``PRAGMA integrity_check``, lost and rolled back nothing, and
its cursor did not go back. After all trials one complete sync converges.

Always on: ``ALWAYS_TRIALS`` trials. Behind ``-m slow``: ``PROOF_KILL_TRIALS`` (default 50).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from reference_server.errors import ApiError
from reference_server.testing import read_line

from .proofkit import (
    World,
    assert_converges,
    assert_nothing_lost,
    make_records,
    new_world,
    read_copy,
)

ALWAYS_TRIALS = 10
LIMIT = 100  # changes per page: a 2k first sync takes 20 pages
CHILD = Path(__file__).with_name("sync_child.py")


def _run_child(
    world: World, session: Session, kill_after_pages: int | None, delay: float
) -> tuple[bool, int]:
    """Run one syncing child; SIGKILL it after ``kill_after_pages`` page lines plus ``delay``
    seconds (None: let it finish). Returns (killed while syncing, pages seen)."""
    job = {
        "session": session.__dict__,
        "folder": str(world.folder),
        "copy_url": world.copy_url,
        "limit": LIMIT,
    }
    proc = subprocess.Popen(
        [sys.executable, str(CHILD)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=CHILD.parent,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.close()
        assert read_line(proc.stdout, 30).strip() == "ready", "child did not start"
        pages = 0
        finished = False
        if kill_after_pages is not None:
            while pages < kill_after_pages:
                line = read_line(proc.stdout, 30)
                if not line or line.startswith("done"):
                    finished = True
                    break
                pages += 1
            if not finished:
                time.sleep(delay)
                finished = proc.poll() is not None
                proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        rest = proc.stdout.read()
        err = proc.stderr.read()
        if kill_after_pages is None or finished:
            assert proc.returncode == 0, f"child failed: {err[-2000:]}"
            assert "done" in rest or finished
        return (not finished and proc.returncode == -signal.SIGKILL), pages
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _random_changes(world: World, rng: random.Random) -> None:
    admin, db, user = world.admin, world.database, world.username
    live = list(world.expected())
    for rid in rng.sample(live, k=min(len(live), rng.randint(50, 600))):
        admin.update_record(db, rid, fields={"password": f"p{rng.randrange(10**9)}"})
    world.ids += admin.import_records(
        db, make_records(rng.randint(0, 200), "New", rng.randrange(10**6)), grant={user: "rwe"}
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
    assert killed >= count // 2, f"only {killed} of {count} trials were killed mid-sync"
    assert_converges(world, session)


def test_sigkill_at_random_moments_never_damages_the_copy(server: Any, tmp_path: Path) -> None:
    _trials(server, tmp_path / "OfflineDB", ALWAYS_TRIALS, seed=1)


@pytest.mark.slow
def test_sigkill_at_random_moments_many_trials(server: Any, tmp_path: Path) -> None:
    count = int(os.environ.get("PROOF_KILL_TRIALS", "50"))
    _trials(server, tmp_path / "OfflineDB", count, seed=int(os.environ.get("PROOF_KILL_SEED", "2")))
