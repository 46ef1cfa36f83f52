"""Fixtures of the docs tests: the real reference server on a free loopback port, with the
data the guides' examples expect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reference_server.testing import RunningServer, running_server

DB = "demo"
USER = "alice"
PASSWORD = "alice-pw"
RECORDS = [
    {"name": "Mail", "fields": {"username": "alice", "password": "mail-pw",
                                "url": "https://mail.example"}},
    {"name": "Bank", "fields": {"username": "alice-b", "password": "bank-pw"}},
    {"name": "Wiki", "fields": {"username": "alice", "password": "wiki-pw",
                                "notes": "team wiki"}},
]


@contextmanager
def demo_site(data_dir: Path) -> Iterator[RunningServer]:
    """A server on ``data_dir`` with database ``demo`` (offline allowed), user ``alice``
    (offline right, 7 days) and three records alice may read, write and export."""
    with running_server(data_dir) as server:
        server.admin.create_database(DB, offline_allowed=True)
        server.admin.create_user(USER, PASSWORD, offline_right=True, validity_days=7)
        server.admin.import_records(DB, RECORDS, grant={USER: "rwe"})
        yield server


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[RunningServer]:
    """:func:`demo_site` on ``tmp_path/server-data`` for the test."""
    with demo_site(tmp_path / "server-data") as server:
        yield server
