"""Fixtures of the add-on tests: the real reference server on loopback, and a real host
(``reference_host``) that loads the add-on by its entry point, driven line by line."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import offline_addon.plugin as plugin_module
from tests.support.host import DB, HostRun, Site, site_records
from tests.support.servers import seed, serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with ExitStack() as stack:
        server = stack.enter_context(serve(tmp_path / "srv"))
        seeded = seed(server, DB, {"alice": "alice-pw", "bob": "bob-pw"}, site_records())
        yield Site(server, seeded.ids, stack.close)


@pytest.fixture
def offline_dir(tmp_path: Path) -> Path:
    return tmp_path / "offline"


@pytest.fixture
def make_run(tmp_path: Path, site: Site, offline_dir: Path) -> Iterator[Callable[..., HostRun]]:
    """Start hosts sharing one config folder (one client installation); all are shut down
    and the add-on's injected clock is reset after the test."""
    runs: list[HostRun] = []

    def start(user: str = "alice", **settings: object) -> HostRun:
        run = HostRun(tmp_path / "config", offline_dir, site.url, user, settings)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()
    plugin_module.addon.wall_clock = time.time
