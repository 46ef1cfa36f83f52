"""A property over random interleavings of offline edits, creates and deletes, online edits
by others, syncs (push before pull), syncs whose write answers are lost after the server
applied them, and rights taken away or given back (issue 15). After a final successful sync:

(a) the server holds every offline field value that did not conflict,
(b) every conflicting offline value is in the conflict list,
(c) the copy equals the server's exportable view (and nothing is left pending),
(d) no record was created twice.

The model: each offline value is tracked per (record, field) until it is *settled* (its
record has no pending entry after a sync, or the server holds the value: a write whose answer
was lost may have been applied); a value that others overwrote only after it was
settled, or whose record the user deleted or changed again, is not asked for. Each example
gets a fresh database on the proof suite's one server.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_addon.errors import OfflineAddonError
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from reference_server.errors import ApiError
from tests.support.checks import read_copy, sync
from tests.support.edits import SECRET, LosingTransport, client_of, editing_world
from tests.support.worlds import World

FIELDS = ("password", "notes", "url")
OPS = (
    "offline_edit",
    "offline_edit",
    "offline_create",
    "offline_delete",
    "online_edit",
    "online_delete",
    "take_write",
    "give_write",
    "sync",
    "lost_answer",
)

steps_strategy = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(min_value=0, max_value=10_000)),
    min_size=1,
    max_size=10,
)


@dataclass
class Typed:
    """One value typed offline, and what has happened to it since."""

    record_id: str
    field: str
    value: str
    settled: bool = False
    excused: bool = False
    """Overwritten by others after it was settled, or its record deleted or changed again
    by the user: the server need not hold it."""


class Model:
    """What the user typed offline and what others did afterwards."""

    def __init__(self) -> None:
        self.typed: list[Typed] = []
        self.created: list[str] = []

    def typed_now(self, record_id: str, field: str, value: str) -> None:
        for item in self.typed:
            if (item.record_id, item.field) == (record_id, field):
                item.excused = True  # the user's own later value supersedes it
        self.typed.append(Typed(record_id, field, value))

    def deleted_offline(self, record_id: str) -> None:
        for item in self.typed:
            if item.record_id == record_id:
                item.excused = True

    def changed_online(self, record_id: str, field: str | None) -> None:
        for item in self.typed:
            if item.record_id == record_id and item.settled and field in (None, item.field):
                item.excused = True

    def settle(self, pending_ids: set[str], view: dict[str, Any]) -> None:
        """After a sync: a value is settled when its record has no pending entry, or when
        the server holds it already (a write applied whose answer was lost)."""
        for item in self.typed:
            record = view.get(item.record_id)
            if item.record_id not in pending_ids or (
                record is not None and record[2].get(item.field) == item.value
            ):
                item.settled = True


def _offline(world: World, model: Model, op: str, n: int) -> None:
    with OfflineCopy.open(world.paths(), world.password) as copy:
        local = LocalChanges(copy)
        records = sorted(copy.list_records(), key=lambda r: r.record_id)
        if op == "offline_create":
            name, value = f"Prop create {len(model.created)}", f"{SECRET}-made-{n}"
            made = local.create_record(name, {"password": value})
            model.created.append(name)
            model.typed_now(made.record_id, "password", value)
            return
        if not records:
            return
        record = records[n % len(records)]
        if op == "offline_delete":
            local.delete_record(record.record_id)
            model.deleted_offline(record.record_id)
            return
        field, value = FIELDS[n % len(FIELDS)], f"{SECRET}-{n}"
        if local.edit_record(record.record_id, fields={**record.fields, field: value}):
            model.typed_now(record.record_id, field, value)


def _online(world: World, model: Model, op: str, n: int) -> None:
    admin, db, user = world.admin, world.database, world.username
    rid = world.ids[n % len(world.ids)]
    field = FIELDS[(n // 7) % len(FIELDS)]
    with contextlib.suppress(ApiError):  # a record deleted already: nothing changes
        if op == "online_edit":
            row = admin.exportable_view(db, user).get(rid)
            fields = dict(row[2]) if row else {}
            admin.update_record(db, rid, fields={**fields, field: f"others-{n}"})
            model.changed_online(rid, field)
        elif op == "online_delete":
            admin.delete_record(db, rid)
            model.changed_online(rid, None)
        elif op == "take_write":
            admin.set_rights(db, user, rid, write=False)
        elif op == "give_write":
            admin.set_rights(db, user, rid, write=True)


def _sync(world: World, model: Model, session: Any, op: str, n: int) -> None:
    with contextlib.suppress(OfflineAddonError):
        if op == "sync":
            sync(world, session)
        else:
            losing = LosingTransport(lose=1 + n % 2)
            sync(world, session, client=client_of(session, losing))
    with OfflineCopy.open(world.paths(), world.password) as copy:
        pending_ids = {entry.record_id for entry in LocalChanges(copy).pending()}
    model.settle(pending_ids, world.expected())


def _check(world: World, model: Model) -> None:
    with OfflineCopy.open(world.paths(), world.password) as copy:
        local = LocalChanges(copy)
        assert local.pending() == [], "a change is still pending after a successful sync"
        conflicts = {(c.record_id, c.slot, c.mine) for c in local.conflicts()}
    view = world.expected()
    for item in model.typed:
        if item.excused:
            continue
        record = view.get(item.record_id)
        on_server = record is not None and record[2].get(item.field) == item.value
        kept = (item.record_id, item.field, item.value) in conflicts
        assert on_server or kept, f"an offline value of {item.field} was lost"  # (a), (b)
    assert read_copy(world.paths(), world.password).records == view  # (c)
    names = collections.Counter(n for _, _, n, _ in world.admin.list_records(world.database))
    assert all(names[name] <= 1 for name in model.created), "a record was created twice"  # (d)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps_strategy)
def test_offline_edits_converge_and_lose_nothing(
    server: Any, tmp_path: Path, steps: list[tuple[str, int]]
) -> None:
    folder = tmp_path / f"ex{len(list(tmp_path.iterdir()))}"
    world = editing_world(server, folder, records=5)
    session = world.login()
    sync(world, session, create=True)
    model = Model()
    for op, n in steps:
        if op.startswith("offline_"):
            _offline(world, model, op, n)
        elif op in ("sync", "lost_answer"):
            _sync(world, model, session, op, n)
        else:
            _online(world, model, op, n)
    sync(world, session)
    _check(world, model)
