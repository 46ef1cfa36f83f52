"""Fixtures of the add-on tests: the real reference server on loopback, and a real host
(``reference_host``) that loads the add-on by its entry point, driven line by line."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

import offline_addon.plugin as plugin_module
from hookspecs import Session
from offline_addon.api import OfflineCopies
from reference_host.host import Host
from reference_host.services import Console
from reference_host.session import LoginTarget
from reference_host.shell import Shell
from reference_host.timer import HostClock
from reference_server.testing import RunningServer, running_server

DB = "demo"
RECORDS = 40


@dataclass(frozen=True)
class Site:
    """The server with database ``demo``: alice (offline right, 7 days) and bob share the
    records; ``ids`` are the records' ids."""

    server: RunningServer
    ids: list[str]
    stop: Callable[[], None]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with ExitStack() as stack:
        server = stack.enter_context(running_server(tmp_path / "srv"))
        admin = server.admin
        admin.create_database(DB, offline_allowed=True)
        admin.create_user("alice", "alice-pw", offline_right=True, validity_days=7)
        admin.create_user("bob", "bob-pw", offline_right=True, validity_days=7)
        items = [{"name": f"Record {i:03d}", "fields": {"username": f"u{i}",
                                                          "password": f"secret-{i}"}}
                 for i in range(RECORDS)]
        ids = admin.import_records(DB, items, grant={"alice": "rwe", "bob": "rwe"})
        yield Site(server, ids, stack.close)


class HostRun:
    """One running host process (in this test process) with a shell for one user."""

    def __init__(self, config_dir: Path, offline_dir: Path, server_url: str, user: str,
                 settings: dict[str, object] | None = None) -> None:
        self.out = io.StringIO()
        self.host = Host(config_dir, Console(self.out, rich_progress=False))
        self.host.set_setting("offline", "database_path", str(offline_dir))
        for key, value in (settings or {}).items():
            self.host.set_setting("offline", key, value)
        self.host.start()
        self.clock = HostClock()
        self.shell = Shell(self.host, LoginTarget(server_url, DB, user), self.clock, 3600.0,
                           io.StringIO(""), interactive=False)
        self._seen = 0
        self._session: Session | None = None

    @property
    def copies(self) -> OfflineCopies:
        return plugin_module.addon.copies

    def login(self, password: str) -> bool:
        ok = self.shell.login(password)
        if self.shell.online is not None:
            self._session = self.shell.online.session
        return ok

    def syncs(self) -> int:
        """How many syncs of this user's copy the add-on finished in this process (its live
        status), so that a test sees a sync that said nothing."""
        assert self._session is not None, "log in online first"
        return self.copies.status(self._session).status.syncs

    def run(self, *lines: str) -> str:
        """Run shell lines; return what they (and the add-on meanwhile) printed."""
        for line in lines:
            self.shell.execute(line)
        return self.new_output()

    def new_output(self) -> str:
        text = self.out.getvalue()
        fresh, self._seen = text[self._seen:], len(text)
        return fresh

    def settle(self, timeout: float = 30.0) -> str:
        assert self.copies.wait_idle(timeout), "the add-on did not become idle"
        return self.new_output()

    def close(self) -> None:
        self.shell.logout()
        self.host.shutdown()


@pytest.fixture
def offline_dir(tmp_path: Path) -> Path:
    return tmp_path / "offline"


@pytest.fixture
def make_run(tmp_path: Path, site: Site, offline_dir: Path
             ) -> Iterator[Callable[..., HostRun]]:
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


