"""Fixtures of the engine tests: alice logged in to ``demo``, and a folder for copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookspecs import Session
from reference_server.testing import RunningServer
from tests.support.accounts import log_in


@pytest.fixture
def alice(demo: RunningServer) -> Session:
    """A real online session of alice (``POST /session`` through the host's client)."""
    return log_in(demo.url, "demo", "alice", "alice-pw")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "copies"
