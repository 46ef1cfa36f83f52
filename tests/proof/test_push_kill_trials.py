"""A push killed with SIGKILL at random moments (issue 15): each trial makes offline edits,
creates and deletes (and some online changes by others), then a child process syncs (push
before pull) and is killed at a random moment, anywhere in opening, merging, marking,
sending or settling (after a random number of its writes went out, plus a random delay).
After each trial the copy opens whole, no record was created twice, and no change id was
applied twice; after all trials one sync pushes what is left and the server holds every
offline value (none conflicts: others change other fields; only a delete of a record others
changed is reported, not applied), the copy equals the server's view, and the queue is
empty.

Always on: :data:`ALWAYS_TRIALS` trials. Behind ``-m slow``: ``PROOF_KILL_TRIALS`` (default
30)."""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from offline_addon.protocol.merge import PASSWORD_FIELD
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.checks import read_copy, sync
from tests.support.edits import SECRET, editing_world, offline
from tests.support.kill import Child
from tests.support.worlds import World, child_job

ALWAYS_TRIALS = 4


def _offline_round(world: World, rng: random.Random, trial: int, wanted: dict[str, str]) -> None:
    """Random offline changes; ``wanted`` (record id -> password typed offline) follows."""
    with OfflineCopy.open(world.paths(), world.password) as copy:
        local = LocalChanges(copy)
        live = [r.record_id for r in copy.list_records()]
        for k in range(rng.randint(1, 4)):
            rid = rng.choice(live)
            record = copy.get(rid)
            assert record is not None
            value = f"{SECRET}-t{trial}-{k}"
            local.edit_record(rid, fields={**record.fields, PASSWORD_FIELD: value})
            wanted[rid] = value
        for k in range(rng.randint(0, 2)):
            made = local.create_record(f"Kill create t{trial}-{k}", {PASSWORD_FIELD: SECRET})
            wanted[made.record_id] = SECRET
        if len(live) > 4 and rng.random() < 0.4:
            victim = rng.choice(live)
            local.delete_record(victim)
            wanted.pop(victim, None)


def _online_round(world: World, rng: random.Random, trial: int) -> None:
    """Others change the notes of some records (never the password the user types)."""
    view = world.expected()
    for rid in rng.sample(sorted(view), k=min(2, len(view))):
        fields = {**view[rid][2], "notes": f"others t{trial}"}
        world.admin.update_record(world.database, rid, fields=fields)


def _assert_once(world: World, trial: int) -> None:
    names = collections.Counter(n for _, _, n, _ in world.admin.list_records(world.database))
    twice_made = [name for name, n in names.items() if n > 1]
    assert not twice_made, f"trial {trial}: created twice: {twice_made}"
    entries = world.admin.audit_entries(user=world.username, db=world.database, limit=100_000)
    applied = collections.Counter(e.change_id for e in entries if e.change_id)
    twice = [cid for cid, n in applied.items() if n > 1]
    assert not twice, f"trial {trial}: change ids applied twice: {twice[:3]}"


def _run_and_kill(world: World, session: Any, rng: random.Random) -> bool:
    """A syncing child killed after a random number of its writes were sent (their answers
    on the way or not) plus a random delay; whether it was killed mid-sync."""
    child = Child(child_job(world, session, create=False, print_writes=True))
    for _ in range(rng.randint(1, 4)):
        line = child.until("write", timeout=30)
        if not line.startswith("write"):
            break
    time.sleep(rng.choice([0.0, rng.uniform(0, 0.005), rng.uniform(0, 0.05)]))
    return child.kill() and child.returncode == -signal.SIGKILL


def _trials(server: Any, folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    world = editing_world(server, folder, records=8)
    session = world.login()
    sync(world, session, create=True)
    wanted: dict[str, str] = {}
    killed = 0
    for trial in range(count):
        _offline_round(world, rng, trial, wanted)
        if rng.random() < 0.5:
            _online_round(world, rng, trial)
        killed += _run_and_kill(world, session, rng)
        read_copy(world.paths(), world.password)  # opens, passes integrity_check
        _assert_once(world, trial)
    assert killed >= count // 2, f"only {killed} of {count} trials were killed mid-sync"
    result = sync(world, session)
    assert result.outcome in ("synced", "unchanged", "repaired")
    with offline(world) as local:
        assert local.pending() == []
        # Only deletes of records others changed meanwhile are reported (not applied).
        assert {(c.slot, c.reason) for c in local.conflicts()} <= {(None, "conflict")}
    view = world.expected()
    for rid, value in wanted.items():
        assert rid in view, f"record {rid[:8]} lost"
        assert view[rid][2][PASSWORD_FIELD] == value, f"record {rid[:8]}: an offline value lost"
    assert read_copy(world.paths(), world.password).records == view
    _assert_once(world, count)


def test_kills_during_a_push_lose_nothing_and_apply_nothing_twice(
    server: Any, tmp_path: Path
) -> None:
    _trials(server, tmp_path / "OfflineDB", ALWAYS_TRIALS, seed=15)


@pytest.mark.slow
def test_many_kills_during_a_push(server: Any, tmp_path: Path) -> None:
    count = int(os.environ.get("PROOF_KILL_TRIALS", "30"))
    _trials(server, tmp_path / "OfflineDB", count, seed=1515)
