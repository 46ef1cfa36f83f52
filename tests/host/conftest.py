"""Fixtures of the host tests: a site folder for test add-ons, and hosts over tmp_path."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference_host.host import Host
from reference_host.services import Console

from .kit import AddonSite, discovered


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
