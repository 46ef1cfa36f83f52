"""Fixtures shared by the test folders: the real reference server on a free loopback port.

Every helper of the tests lives in :mod:`tests.support` (its ``__init__`` has the map); the
``conftest.py`` files hold fixtures only.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer
from tests.support.servers import seed, serve


def pytest_configure(config: pytest.Config) -> None:
    """A run started with Ctrl-C ignored (a background job of a shell without job control)
    passes that on to every program it starts, and the Ctrl-C tests would then see none:
    take Ctrl-C back, so that the programs the tests start get it as a user's would."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
