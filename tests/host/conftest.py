"""Fixtures of the host tests: a site folder for test add-ons, hosts over tmp_path, the
reference server with alice's records, and ``psr-client`` as a subprocess."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference_host.host import Host
from reference_host.services import Console
from tests.support.host import (
    BANK_PIN,
    MAIL_SECRET,
    PASSWORD,
    AddonSite,
    Cli,
    ScriptedShell,
    World,
    discovered,
)
from tests.support.servers import seed, serve

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
    with serve(tmp_path / "srv") as srv:
        seeded = seed(
            srv,
            "demo",
            {"alice": PASSWORD},
            [
                {"name": "Mail", "fields": {"username": "alice", "password": MAIL_SECRET}},
                {"name": "Bank", "fields": {"username": "a123", "pin": BANK_PIN}},
            ],
        )
        mail_id, bank_id = seeded.ids
        yield World(srv, seeded.user_ids["alice"], mail_id, bank_id)


@pytest.fixture
def session_for(addon_site: AddonSite, make_host: HostFactory) -> Callable[..., ScriptedShell]:
    """A host with the probe add-on, started, and a shell for alice at ``url``."""

    def build(url: str, timer_seconds: float = 3600.0) -> ScriptedShell:
        probe = addon_site.install("probe")
        host, out = make_host("probe")
        host.start()
        return ScriptedShell(host, out, probe, url, timer_seconds)

    return build


@pytest.fixture
def cli(tmp_path: Path, addon_site: AddonSite) -> Cli:
    """``psr-client`` as a subprocess with the test site on its path."""
    return Cli(tmp_path, addon_site.site)
