"""Fixtures: the reference server on a free loopback port, logged-in sessions, copy paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from hookspecs import Session
from offline_addon.storage.paths import CopyPaths
from reference_server.testing import RunningServer

CLIENT_ID = "engine-test-client"


def login(url: str, database: str, username: str, password: str) -> Session:
    """A real online login (POST /session) as the host would do it."""
    with requests.post(
        f"{url}/api/v1/session",
        json={
            "database": database,
            "username": username,
            "password": password,
            "client_id": CLIENT_ID,
        },
        timeout=10,
    ) as response:
        response.raise_for_status()
        body = response.json()
    return Session(
        server_url=url,
        database=database,
        user_id=body["user_id"],
        username=username,
        client_id=CLIENT_ID,
        token=body["token"],
        password=password,
    )


def paths_of(folder: Path, session: Session) -> CopyPaths:
    return CopyPaths.for_copy(
        folder, session.server_url, session.database, session.username, session.client_id
    )


def sample_records(count: int, prefix: str = "Rec") -> list[dict[str, object]]:
    return [
        {
            "name": f"{prefix} {i:05d}",
            "fields": {
                "username": f"user{i}",
                "password": f"pw-secret-{i}",
                "url": f"https://site{i}.example",
                "notes": f"note number {i}",
            },
        }
        for i in range(count)
    ]


@pytest.fixture
def alice(demo: RunningServer) -> Session:
    return login(demo.url, "demo", "alice", "alice-pw")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "copies"
