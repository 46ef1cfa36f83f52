"""Fixtures: the reference server on a free loopback port, and logged-in API clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer, running_server

from .apiclient import ApiClient


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def demo(server: RunningServer) -> RunningServer:
    """A server with database ``demo`` (offline allowed) and users alice and bob."""
    server.admin.create_database("demo", offline_allowed=True)
    server.admin.create_user("alice", "alice-pw", offline_right=True, validity_days=7)
    server.admin.create_user("bob", "bob-pw", offline_right=True, validity_days=7)
    return server


@pytest.fixture
def alice(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("alice", "alice-pw")
    yield client
    client.close()


@pytest.fixture
def bob(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("bob", "bob-pw")
    yield client
    client.close()
