"""One writer per copy, across real processes: two programs syncing, rebuilding or creating
the same copy at once never destroy it nor show it as whole when it is not; a second writer
waits or is told it is busy; readers keep reading meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offline_addon import AddonSettings, OfflineCopies
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.checks import assert_converges, copy_meta, read_copy
from tests.support.kill import Child
from tests.support.worlds import World, child_job, new_world

RECORDS = 1000
LIMIT = 20  # 50 pages: the first process is still writing when the second one starts


def _prepare(world: World, kind: str) -> None:
    """The server state before the two processes start."""
    if kind == "first":
        return
    assert_converges(world)
    if kind == "rebuild":
        world.admin.bump_epoch()  # a server restored from backup: both must rebuild
    else:
        for rid in world.ids[:40]:
            world.admin.update_record(world.database, rid, fields={"notes": "changed"})


@pytest.fixture
def big_world(server: Any, tmp_path: Path) -> World:
    return new_world(server, tmp_path / "OfflineDB", records=RECORDS, tag="Two")


@pytest.mark.parametrize("kind", ["first", "incremental", "rebuild"])
@pytest.mark.parametrize("second_waits", [True, False], ids=["waits", "busy"])
def test_two_processes_writing_one_copy_never_damage_it(
    big_world: World, kind: str, second_waits: bool
) -> None:
    world = big_world
    _prepare(world, kind)
    first = Child(child_job(world, world.login(), limit=LIMIT))
    assert first.until("page").startswith(("page", "done"))
    second = Child(
        child_job(world, world.login(), limit=LIMIT, lock_wait_s=60.0 if second_waits else 0.2)
    )
    a, b = first.finish(), second.finish()
    assert a.startswith("done"), f"first: {a} {first.err[-1500:]}"
    if second_waits:
        assert b.startswith("done"), f"second: {b} {second.err[-1500:]}"
    else:
        assert b.startswith("done") or b == "error CopyBusy", f"second: {b} {second.err[-1500:]}"
    # The copy is whole and says so; nothing was left half-written beside it.
    state = read_copy(world.paths(), world.password)
    assert state.records == world.expected()
    assert copy_meta(world.paths(), world.password).complete
    assert not world.paths().partial.exists()
    copies = OfflineCopies(AddonSettings(database_path=str(world.folder)))
    try:
        [info] = copies.list()
        assert info.complete
        assert info.record_count == len(world.expected())
    finally:
        copies.shutdown()
    assert_converges(world)


def test_a_reader_keeps_reading_while_another_process_rebuilds(big_world: World) -> None:
    world = big_world
    assert_converges(world)
    world.admin.bump_epoch()
    reader = OfflineCopy.open(world.paths(), world.password)
    try:
        writer = Child(child_job(world, world.login(), limit=LIMIT))
        seen = []
        while (line := writer.line()).startswith("page"):
            seen.append(len(reader.list_records()))
        assert line == "done repaired", writer.finish()
        writer.finish()
        assert seen
        assert set(seen) == {RECORDS}
        assert len(reader.list_records()) == RECORDS  # the old file, still open, still reads
    finally:
        reader.close()
    assert_converges(world)
