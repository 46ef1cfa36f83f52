"""Fixtures of the host tests: a site folder for test add-ons, and hosts over tmp_path."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference_host.host import Host
from reference_host.services import Console
from reference_server.testing import running_server

from .kit import BANK_PIN, MAIL_SECRET, PASSWORD, AddonSite, ScriptedShell, World, discovered

HostFactory = Callable[..., tuple[Host, io.StringIO]]


@pytest.fixture
def addon_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AddonSite]:
    """A site folder on ``sys.path`` for test add-ons; their modules are forgotten after."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    sites = AddonSite(site)
    yield sites
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in sites.modules):
            del sys.modules[name]


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[Callable[..., tuple[Host, io.StringIO]]]:
    """Build hosts over a config folder in tmp_path, restricted to the given add-on ids;
    every host is shut down after the test."""
    hosts: list[Host] = []

    def build(*ids: str, config_dir: Path | None = None) -> tuple[Host, io.StringIO]:
        out = io.StringIO()
        host = Host(config_dir or tmp_path / "config", Console(out), addons=discovered(*ids))
        hosts.append(host)
        return host, out

    yield build
    for host in hosts:
        host.shutdown()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The reference server on a free loopback port with alice, Mail and Bank."""
    with running_server(tmp_path / "srv") as srv:
        admin = srv.admin
        admin.create_database("demo", offline_allowed=True)
        alice_id = admin.create_user("alice", PASSWORD, offline_right=True, validity_days=7)
        mail_id, bank_id = admin.import_records("demo", [
            {"name": "Mail", "fields": {"username": "alice", "password": MAIL_SECRET}},
            {"name": "Bank", "fields": {"username": "a123", "pin": BANK_PIN}},
        ], grant={"alice": "rwe"})
        yield World(srv, alice_id, mail_id, bank_id)


@pytest.fixture
def session_for(addon_site: AddonSite,
                make_host: HostFactory) -> Callable[..., ScriptedShell]:
    """A host with the probe add-on, started, and a shell for alice at ``url``."""
    def build(url: str, timer_seconds: float = 3600.0) -> ScriptedShell:
        probe = addon_site.install("probe")
        host, out = make_host("probe")
        host.start()
        return ScriptedShell(host, out, probe, url, timer_seconds)

    return build
