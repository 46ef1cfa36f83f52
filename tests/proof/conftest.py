"""Fixtures of the proof suite: one real reference server per session, a fresh database and
user per test (see :mod:`proofkit` for the checks every fault test ends with)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_server.testing import running_server

from .proofkit import World, new_world


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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The reference server, in a thread on a free loopback port, for the whole session."""
    with running_server(tmp_path_factory.mktemp("proof-server")) as srv:
        yield srv


@pytest.fixture
def world(server: Any, tmp_path: Path) -> World:
    """A fresh database of 300 records for a fresh user; copies go under ``tmp_path``."""
    return new_world(server, tmp_path / "OfflineDB")
