"""Fixtures: the reference server on a free loopback port, and logged-in API clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_server.testing import RunningServer

from .apiclient import ApiClient


@pytest.fixture
def alice(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("alice", "alice-pw")
    yield client
    client.close()


@pytest.fixture
def bob(demo: RunningServer) -> Iterator[ApiClient]:
    client = ApiClient(demo.url, "demo").login("bob", "bob-pw")
    yield client
    client.close()
