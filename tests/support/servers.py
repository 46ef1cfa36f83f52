"""Starting the reference server for tests: :func:`serve` (waitress in a thread on a free
loopback port, over a fresh data folder) and :func:`seed` (a database with users and records);
and ``psr-server``'s command line run in-process (:class:`CliResult`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_server.testing import RunningServer, running_server


@contextmanager
def serve(data_dir: Path) -> Iterator[RunningServer]:
    """The reference server on ``data_dir``, stopped when the block ends."""
    with running_server(data_dir) as server:
        yield server


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` created: the users' ids by name and the records' ids in order."""

    user_ids: dict[str, str]
    ids: list[str]


def seed(
    server: RunningServer,
    database: str,
    users: Mapping[str, str],
    records: Sequence[dict[str, Any]] = (),
    *,
    grant: str = "rwe",
) -> Seeded:
    """Database ``database`` (offline allowed), ``users`` (name -> password, each with the
    offline right for 7 days) and ``records``, on which every user gets ``grant``."""
    admin = server.admin
    admin.create_database(database, offline_allowed=True)
    user_ids = {
        name: admin.create_user(name, password, offline_right=True, validity_days=7)
        for name, password in users.items()
    }
    ids = (
        list(admin.import_records(database, list(records), grant=dict.fromkeys(users, grant)))
        if records
        else []
    )
    return Seeded(user_ids, ids)


@dataclass(frozen=True)
class CliResult:
    """What one ``psr-server`` run left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


PsrRunner = Callable[..., CliResult]
