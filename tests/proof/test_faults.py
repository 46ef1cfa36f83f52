"""Every fault the network, the server or the disk can throw at a sync, each as a test.

The pattern of each test: a copy synced in full, then a batch of server changes of every kind
(updates, new records, deletes, seals, revocations) spread over several small pages, then a
sync that meets the fault (through the fault proxy, a killed server process, or a full disk).
After it: the copy opens, ``PRAGMA integrity_check`` is ok, no record is lost or rolled back,
the cursor did not go back, the error says in a sentence what happened, and the next sync
converges to exactly what the user may export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon import errors
from offline_addon.sync.transport import SyncClient
from tests.support.accounts import CLIENT_ID
from tests.support.checks import (
    CopyState,
    assert_converges,
    assert_nothing_lost,
    assert_user_message,
    read_copy,
    sync,
)
from tests.support.faults import Fault, FaultProxy
from tests.support.records import server_records
from tests.support.worlds import World, new_world

PAGE = 40  # small pages: the 190 changes below take five of them


@pytest.fixture
def proxy(server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(server.url) as p:
        yield p


def _server_changes(world: World) -> set[str]:
    """Changes of every kind on the server; returns the ids the user may no longer export."""
    admin, db, user = world.admin, world.database, world.username
    for rid in world.ids[:120]:
        admin.update_record(db, rid, fields={"password": "rotated", "notes": "changed"})
    world.ids += admin.import_records(db, server_records(50, "Extra", 99), grant={user: "rwe"})
    gone = set(world.ids[120:125] + world.ids[125:130] + world.ids[130:135])
    for rid in world.ids[120:125]:
        admin.delete_record(db, rid)
    for rid in world.ids[125:130]:
        admin.seal_record(db, rid)
    for rid in world.ids[130:135]:
        admin.set_rights(db, user, rid, export=False)
    return gone


def _prepared(world: World) -> tuple[Session, CopyState, set[str]]:
    session = world.login()
    sync(world, session, create=True)
    gone = _server_changes(world)
    return session, read_copy(world.paths(), world.password), gone


def _client(url: str, session: Session, **kwargs: Any) -> SyncClient:
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout", (2.0, 5.0))
    return SyncClient(url, session.token, CLIENT_ID, **kwargs)


def _sync_through(world: World, session: Session, proxy: FaultProxy, **client_kwargs: Any) -> Any:
    with _client(proxy.url, session, **client_kwargs) as client:
        return sync(world, session, client=client, page_limit=PAGE)


def _after_fault(world: World, session: Session, before: CopyState, gone: set[str]) -> CopyState:
    """The checks every fault test ends with; returns the state right after the fault."""
    after = read_copy(world.paths(), world.password)
    assert_nothing_lost(before, after, allowed_gone=gone)
    final = assert_converges(world, session)
    assert_nothing_lost(after, final, allowed_gone=gone)
    return after


FAULTS = [
    pytest.param(Fault("reset", nth=2), errors.ServerUnreachable, ("reach", "network"), id="reset"),
    pytest.param(Fault("status", nth=2, status=500), errors.ServerError, ("failed",), id="500"),
    pytest.param(
        Fault("truncate", nth=2),
        errors.ServerUnreachable,
        ("reach", "network", "incomplete"),
        id="truncated-body",
    ),
    pytest.param(
        Fault("malformed_json", nth=2), errors.ProtocolError, ("json",), id="malformed-json"
    ),
    pytest.param(
        Fault("mutate", nth=2, mutate=lambda p: {**p, "changes": [{"op": "upsert", "id": "x"}]}),
        errors.ProtocolError,
        ("invalid",),
        id="schema-violation-upsert-without-record",
    ),
    pytest.param(
        Fault("mutate", nth=2, mutate=lambda p: {**p, "next_cursor": None}),
        errors.ProtocolError,
        ("invalid",),
        id="schema-violation-no-cursor",
    ),
    pytest.param(
        Fault(
            "mutate",
            nth=2,
            mutate=lambda p: {
                **p,
                "changes": [{**c, "rev": str(c.get("rev"))} for c in p["changes"]],
            },
        ),
        errors.ProtocolError,
        ("invalid",),
        id="schema-violation-rev-as-string",
    ),
]


@pytest.mark.parametrize(("fault", "error", "words"), FAULTS)
def test_fault_on_the_second_page_keeps_the_first_and_converges(
    world: World, proxy: FaultProxy, fault: Fault, error: type[Exception], words: tuple[str, ...]
) -> None:
    session, before, gone = _prepared(world)
    proxy.arm(fault)
    with pytest.raises(error) as info:
        _sync_through(world, session, proxy)
    assert proxy.fired == 1
    assert_user_message(info.value, *words)
    after = _after_fault(world, session, before, gone)
    # The first page was committed with its cursor: the sync resumes rather than restarts.
    assert after.position > before.position


def test_read_timeout_fires_when_the_server_stops_answering(
    world: World, proxy: FaultProxy
) -> None:
    session, before, gone = _prepared(world)
    proxy.arm(Fault("stall", nth=2, stall_seconds=10))
    with pytest.raises(errors.ServerUnreachable) as info:
        _sync_through(world, session, proxy, timeout=(2.0, 0.5))
    proxy.clear()
    assert_user_message(info.value, "timed out")
    _after_fault(world, session, before, gone)


def test_oversized_page_is_refused_without_change(world: World, proxy: FaultProxy) -> None:
    session, before, gone = _prepared(world)
    proxy.arm(Fault("oversized", nth=1, oversize_factor=200))
    with pytest.raises(errors.ProtocolError) as info:
        _sync_through(world, session, proxy, max_body_bytes=1 << 20)
    assert_user_message(info.value, "larger")
    after = _after_fault(world, session, before, gone)
    assert after == before, "an oversized first page changed the copy"


def test_page_delivered_twice_changes_nothing_and_never_moves_back(
    world: World, proxy: FaultProxy
) -> None:
    session, before, gone = _prepared(world)
    proxy.arm(Fault("replay", nth=2, times=2))  # pages 2 and 3 answer with the page before
    result = _sync_through(world, session, proxy)
    assert proxy.fired == 2
    assert result.outcome == "synced"
    # Re-delivered changes are not counted (or applied) twice.
    assert (result.added, result.changed, result.removed) == (50, 120, 15)
    after = read_copy(world.paths(), world.password)
    assert_nothing_lost(before, after, allowed_gone=gone)
    assert after.records == world.expected()


@pytest.mark.parametrize("status", [503, 429])
def test_short_retry_after_is_waited_out_and_the_sync_completes(
    world: World, proxy: FaultProxy, status: int
) -> None:
    session, before, gone = _prepared(world)
    waits: list[float] = []
    proxy.arm(Fault("status", nth=2, status=status, retry_after=2))
    result = _sync_through(world, session, proxy, retries=2, sleep=waits.append)
    assert waits == [2.0], "Retry-After was not honoured"
    assert result.outcome == "synced"
    after = read_copy(world.paths(), world.password)
    assert_nothing_lost(before, after, allowed_gone=gone)
    assert after.records == world.expected()


@pytest.mark.parametrize("status", [503, 429])
def test_long_retry_after_reaches_the_scheduler(
    world: World, proxy: FaultProxy, status: int
) -> None:
    from offline_addon.runtime.schedule import SyncSchedule

    session, before, gone = _prepared(world)
    waits: list[float] = []
    proxy.arm(Fault("status", nth=2, status=status, retry_after=600))
    with pytest.raises(errors.ServerBusy) as info:
        _sync_through(world, session, proxy, retries=2, sleep=waits.append)
    assert waits == [], "the client blocked a thread for a long Retry-After"
    assert info.value.retry_after == 600
    assert_user_message(info.value, "busy")
    schedule = SyncSchedule(1800.0)
    schedule.arm(1000.0)
    schedule.started(1000.0)
    verdict = schedule.failed(1000.0, "ServerBusy", retry_after=600, retryable=True)
    assert verdict.retry_at is not None
    assert verdict.retry_at >= 1600.0, "the next automatic sync ignores Retry-After"
    _after_fault(world, session, before, gone)


def test_disk_full_while_writing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PRAGMA max_page_count`` just above the current size makes SQLite answer SQLITE_FULL,
    exactly what a full disk gives, without filling a real disk."""
    from offline_addon.storage import cipher

    session, before, gone = _prepared(world)
    # Enough new content that the incremental sync must grow the file.
    world.ids += world.admin.import_records(
        world.database, server_records(400, "Bulk", 7), grant={world.username: "rwe"}
    )
    real_connect = cipher.connect

    def tight_connect(db_path: Path, password: str) -> Any:
        conn = real_connect(db_path, password)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 3}").fetchall()
        return conn

    monkeypatch.setattr(cipher, "connect", tight_connect)
    with pytest.raises(errors.StorageError) as info:
        sync(world, session, page_limit=PAGE)
    monkeypatch.undo()
    assert_user_message(info.value, "disk")
    after = _after_fault(world, session, before, gone)
    assert after.position >= before.position


def test_server_killed_in_the_middle_of_a_sync(tmp_path: Path) -> None:
    """The real server process gets SIGKILL while the client is between pages; the client
    reports the server unreachable; a restarted server (same data) lets the copy converge."""
    from reference_server.testing import ServerProcess

    proc = ServerProcess(tmp_path / "srv").start()
    try:
        world = new_world(_Srv(proc), tmp_path / "OfflineDB")
        session, before, gone = _prepared(world)
        pages = []

        def kill_after_first_page(done: int, total: int) -> None:
            pages.append(done)
            if len(pages) == 1:
                proc.kill()

        client = _client(world.url, session, timeout=(1.0, 2.0))
        with client, pytest.raises(errors.ServerUnreachable) as info:
            sync(world, session, client=client, page_limit=PAGE, progress=kill_after_first_page)
        assert_user_message(info.value, "reach", "network")
        after = read_copy(world.paths(), world.password)
        assert_nothing_lost(before, after, allowed_gone=gone)
        assert after.position > before.position

        proc = ServerProcess(tmp_path / "srv").start()
        world.url, world.admin = proc.url, proc.admin
        fresh = world.login()
        final = assert_converges(world, fresh)
        assert_nothing_lost(after, final, allowed_gone=gone)
    finally:
        proc.stop()


class _Srv:
    """The bits of a running server new_world needs, for a ServerProcess."""

    def __init__(self, proc: Any) -> None:
        self.url = proc.url
        self.admin = proc.admin
