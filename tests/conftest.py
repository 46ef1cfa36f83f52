"""Fixtures shared by the test folders: the real reference server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The reference server (waitress in a thread) on a fresh data folder."""
    with running_server(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def demo(server: RunningServer) -> RunningServer:
    """Database ``demo`` (offline allowed) with users alice and bob (offline right, 7 days)."""
    server.admin.create_database("demo", offline_allowed=True)
    server.admin.create_user("alice", "alice-pw", offline_right=True, validity_days=7)
    server.admin.create_user("bob", "bob-pw", offline_right=True, validity_days=7)
    return server
