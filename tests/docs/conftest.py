"""Fixtures of the docs tests: the real reference server on a free loopback port, with the
data the guides' examples expect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer
from tests.support.mdrun import demo_site


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[RunningServer]:
    """:func:`~tests.support.mdrun.demo_site` on ``tmp_path/server-data`` for the test."""
    with demo_site(tmp_path / "server-data") as server:
        yield server
