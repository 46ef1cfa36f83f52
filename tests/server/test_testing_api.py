"""The test helpers other packages rely on: running_server and ServerProcess."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from reference_server.testing import ServerProcess, running_server
from tests.support.api import API, ApiClient


def test_running_server_stops_promptly_with_an_idle_keep_alive_client(tmp_path: Path) -> None:
    http = requests.Session()
    # Servers of other tests (module- or session-scoped fixtures) may be running meanwhile.
    others = {t for t in threading.enumerate() if t.name == "psr-server"}
    try:
        with running_server(tmp_path / "srv") as srv:
            assert http.get(srv.url + API + "/session").status_code == 405
            start = time.monotonic()
        assert time.monotonic() - start < 5
        assert not [t for t in threading.enumerate() if t.name == "psr-server" and t not in others]
    finally:
        http.close()


def test_killed_process_keeps_committed_data_and_cursors(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    try:
        proc.admin.create_database("demo")
        proc.admin.create_user("alice", "alice-pw", offline_right=True)
        proc.admin.import_records(
            "demo", [{"name": f"R{i}", "fields": {}} for i in range(20)], grant={"alice": "rwe"}
        )
        client = ApiClient(proc.url, "demo").login("alice", "alice-pw")
        cursor = client.changes(limit=5).json()["next_cursor"]
        client.close()
        proc.kill()
        proc.start()
        client = ApiClient(proc.url, "demo").login("alice", "alice-pw")
        changes, last = client.read_all(cursor)
        client.close()
        assert len(changes) == 15
        assert last["digest"]["count"] == 20
    finally:
        proc.stop()
