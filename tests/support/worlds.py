"""A fresh database and user per test on a server shared by a whole suite (a :class:`World`):
the proof suite's way of keeping tests apart without a server each."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookspecs import Session
from offline_addon.storage.paths import CopyPaths
from reference_server.testing import RunningServer

from .accounts import CLIENT_ID, log_in
from .records import server_records

_counter = itertools.count(1)


@dataclass
class World:
    """One test's corner of the shared server: a database, a user with rwe on its records."""

    url: str
    admin: Any
    database: str
    username: str
    password: str
    user_id: str
    ids: list[str]
    folder: Path
    copy_url: str = ""
    """The server URL the copy is named after (fixed, also when the server moves port)."""

    def login(self, url: str | None = None) -> Session:
        """A fresh online session at the server, naming ``url`` (default: the server) as its
        server (a proxy in front of it, say)."""
        return log_in(self.url, self.database, self.username, self.password, session_url=url)

    def paths(self) -> CopyPaths:
        """The copy's paths (always named after the real server, also when a test talks to it
        through the fault proxy, so that every sync of a test works on one copy)."""
        url = self.copy_url or self.url
        return CopyPaths.for_copy(self.folder, url, self.database, self.username, CLIENT_ID)

    def expected(self) -> dict[str, tuple[int, str, dict[str, str]]]:
        """What the user may export now: the ground truth a complete sync must equal."""
        view: dict[str, tuple[int, str, dict[str, str]]] = self.admin.exportable_view(
            self.database, self.username
        )
        return {rid: (rev, name, dict(fields)) for rid, (rev, name, fields) in view.items()}


def new_world(server: RunningServer, folder: Path, records: int = 300, tag: str = "Proof") -> World:
    """A fresh database with ``records`` records and a fresh user holding rwe on them."""
    n = next(_counter)
    database, username, password = f"proofdb{n}", f"user{n}", f"pw-{n}-Tr0ub4dor&3"
    admin = server.admin
    admin.create_database(database, offline_allowed=True)
    user_id = admin.create_user(username, password, offline_right=True, validity_days=7)
    ids = list(
        admin.import_records(database, server_records(records, tag, n), grant={username: "rwe"})
    )
    return World(server.url, admin, database, username, password, user_id, ids, folder, server.url)


def child_job(world: World, session: Session, **extra: Any) -> dict[str, Any]:
    """The job of a syncing :class:`~tests.support.kill.Child` for ``world``'s copy (secrets
    travel on stdin)."""
    job: dict[str, Any] = {
        "session": session.__dict__,
        "folder": str(world.folder),
        "copy_url": world.copy_url,
        "limit": 100,
    }
    job.update(extra)
    return job
