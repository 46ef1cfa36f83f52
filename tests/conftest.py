"""Fixtures shared by the test folders: the real reference server on a free loopback port.

Every helper of the tests lives in :mod:`tests.support` (its ``__init__`` has the map); the
``conftest.py`` files hold fixtures only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer
from tests.support.servers import seed, serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The reference server (waitress in a thread) on a fresh data folder."""
    with serve(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def demo(server: RunningServer) -> RunningServer:
    """Database ``demo`` (offline allowed) with users alice and bob (offline right, 7 days)."""
    seed(server, "demo", {"alice": "alice-pw", "bob": "bob-pw"})
    return server
