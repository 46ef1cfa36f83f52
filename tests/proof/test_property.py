"""A property over random interleavings of server writes, grants, revocations, seals, deletes,
syncs and interrupted syncs: after a final complete sync the copy equals exactly the user's
exportable view, and the stored cursor never went backwards (within a server epoch).

Each example gets a fresh database and user on the session's one server; pages are tiny so
that interruptions land between pages of a multi-page sync.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_addon.errors import OfflineAddonError
from offline_addon.sync.transport import SyncClient
from reference_server.errors import ApiError
from tests.support.checks import assert_converges, assert_nothing_lost, read_copy, sync
from tests.support.faults import Fault, FaultProxy
from tests.support.records import server_records
from tests.support.worlds import World, new_world

START_RECORDS = 12
PAGE = 4


class Interrupted(Exception):
    """Raised from the progress callback: the sync stops between two pages."""


Op = tuple[str, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "update",
                "create",
                "grant",
                "revoke",
                "revoke_read",
                "seal",
                "unseal",
                "delete",
                "sync",
                "interrupt",
                "reset",
                "restore",
            ]
        ),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=18,
)


def _apply(world: World, op: str, n: int) -> None:
    admin, db, user = world.admin, world.database, world.username
    rid = world.ids[n % len(world.ids)]
    try:
        if op == "update":
            admin.update_record(db, rid, fields={"password": f"v{n}"})
        elif op == "create":
            world.ids += admin.import_records(
                db, server_records(1 + n % 3, "Prop", n), grant={user: "rwe"}
            )
        elif op == "grant":
            admin.set_rights(db, user, rid, read=True, export=True)
        elif op == "revoke":
            admin.set_rights(db, user, rid, export=False)
        elif op == "revoke_read":
            admin.set_rights(db, user, rid, read=False)
        elif op == "seal":
            admin.seal_record(db, rid)
        elif op == "unseal":
            admin.unseal_record(db, rid)
        elif op == "delete":
            admin.delete_record(db, rid)
        elif op == "restore":
            admin.bump_epoch()
    except ApiError:
        pass  # e.g. granting a deleted record: the server refuses, nothing changed


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_random_interleavings_converge_and_never_go_back(
    server: Any, tmp_path: Path, steps: list[Op]
) -> None:
    world = new_world(
        server, tmp_path / f"ex{len(list(tmp_path.iterdir()))}", records=START_RECORDS, tag="Prop"
    )
    session = world.login()
    state = read_copy(world.paths(), world.password)
    with FaultProxy(server.url) as proxy:
        for op, n in steps:
            if op not in ("sync", "interrupt", "reset"):
                _apply(world, op, n)
                continue
            if op == "sync":
                sync(world, session, create=True, page_limit=PAGE)
            elif op == "interrupt":
                stop_after = 1 + n % 3

                def progress(done: int, total: int, stop_after: int = stop_after) -> None:
                    progress.pages += 1  # type: ignore[attr-defined]
                    if progress.pages >= stop_after:  # type: ignore[attr-defined]
                        raise Interrupted

                progress.pages = 0  # type: ignore[attr-defined]
                with contextlib.suppress(Interrupted):
                    sync(world, session, create=True, page_limit=PAGE, progress=progress)
            else:  # a connection reset on the n-th page request
                proxy.arm(Fault("reset", nth=1 + n % 3))
                client = SyncClient(proxy.url, session.token, session.client_id, retries=0)
                with client, contextlib.suppress(OfflineAddonError):
                    sync(world, session, create=True, page_limit=PAGE, client=client)
                proxy.clear()
            new = read_copy(world.paths(), world.password)
            gone = set(state.records) - set(world.expected())
            assert_nothing_lost(state, new, allowed_gone=gone)
            state = new
    final = assert_converges(world, session)
    assert_nothing_lost(state, final, allowed_gone=set(state.records) - set(world.expected()))
