"""Fixtures of the proof suite: one real reference server per session, a fresh database and
user per test (see :mod:`tests.support.checks` for the checks every fault test ends with)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer
from tests.support.servers import serve
from tests.support.worlds import World, new_world


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long trials (``@pytest.mark.slow``) run only when asked for: ``-m slow`` or
    ``PROOF_KILL_TRIALS`` set. Their short always-on versions keep ``make test`` fast."""
    wanted = "slow" in (config.getoption("markexpr", "") or "") or "PROOF_KILL_TRIALS" in os.environ
    if wanted:
        return
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason="long trial: run with -m slow or PROOF_KILL_TRIALS=N")
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The reference server, in a thread on a free loopback port, for the whole session."""
    with serve(tmp_path_factory.mktemp("proof-server")) as srv:
        yield srv


@pytest.fixture
def world(server: RunningServer, tmp_path: Path) -> World:
    """A fresh database of 300 records for a fresh user; copies go under ``tmp_path``."""
    return new_world(server, tmp_path / "OfflineDB")
