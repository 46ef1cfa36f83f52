"""Offline edits for the push tests: a world whose database allows offline editing, the copy
opened for edits, and the one fault seam a real server cannot produce on demand: an answer
lost *after* the server applied a write (:class:`LosingTransport`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from hookspecs import Session
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.sync.transport import HttpAnswer, RequestsTransport, SyncClient, TimedOut
from reference_server.testing import RunningServer

from .worlds import World, new_world

SECRET = "Qx7-offline-secret-91zz"
"""A password typed offline in the tests: a string that cannot occur by chance."""


def editing_world(server: RunningServer, folder: Path, records: int = 4) -> World:
    """A fresh database of ``records`` records that allows offline editing, and its user
    (with read, write, export and delete rights on them)."""
    world = new_world(server, folder, records=records, tag="Edit")
    world.admin.set_database_editing(world.database, True)
    for record_id in world.ids:
        world.admin.set_rights(world.database, world.username, record_id, delete=True)
    return world


@contextmanager
def offline(world: World) -> Iterator[LocalChanges]:
    """The world's copy opened as an offline session would (no server), for edits."""
    with OfflineCopy.open(world.paths(), world.password) as copy:
        yield LocalChanges(copy)


def server_record(world: World, record_id: str) -> tuple[int, str, dict[str, str]] | None:
    """The record as the user may export it now (None: not in the user's view)."""
    return world.expected().get(record_id)


def records_named(world: World, name: str) -> int:
    """How many records of the world's database have ``name`` (whatever the rights)."""
    return sum(1 for _, _, n, _ in world.admin.list_records(world.database) if n == name)


class LosingTransport(RequestsTransport):
    """The real transport, except that the answers of the next ``lose`` writes (``PUT``,
    ``DELETE``) are dropped after the server applied them: the caller sees a timeout, as
    after a connection that broke while the answer was on its way."""

    def __init__(self, lose: int = 1, methods: tuple[str, ...] = ("PUT", "DELETE")) -> None:
        super().__init__()
        self.lose = lose
        self.methods = methods
        self.lost: list[str] = []

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        answer = super().send(method, url, headers, body, deadline=deadline, max_bytes=max_bytes)
        if self.lose > 0 and method in self.methods:
            self.lose -= 1
            self.lost.append(f"{method} {answer.status}")
            raise TimedOut("The server timed out (test: the answer was lost).")
        return answer


def client_of(session: Session, transport: RequestsTransport) -> SyncClient:
    """A sync client for ``session`` over ``transport``."""
    return SyncClient(session.server_url, session.token, session.client_id, transport=transport)
