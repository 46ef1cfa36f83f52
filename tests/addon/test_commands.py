"""The ``offline`` commands as a user and a script meet them: ``psr-client`` as a real process
against the real server; one message per outcome, exit codes, ``--json``, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline_addon.commands import EXIT_INTERRUPTED, EXIT_NO_COPY, EXIT_NOT_ALLOWED, EXIT_OK
from reference_server.testing import ServerProcess

PSR_CLIENT = Path(sys.executable).parent / "psr-client"
DB = "cmds"
PASSWORD = "pw-Wq5!commands-alice"
SMALL = 30
LARGE = 60_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "srv").start() as running:
        running.admin.create_database(DB, offline_allowed=True)
        running.admin.create_user("alice", PASSWORD, offline_right=True, validity_days=7)
        yield running


def _import(server: ServerProcess, count: int) -> None:
    items = [
        {"name": f"Entry {i:06d}", "fields": {"username": f"user{i}", "password": f"pw-{i}-Zk3"}}
        for i in range(count)
    ]
    server.admin.import_records(DB, items, grant={"alice": "rwe"})


def _env(tmp_path: Path, server: ServerProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSR_")}
    env.update(
        PSR_CLIENT_CONFIG_DIR=str(tmp_path / "client"),
        PSR_SERVER=server.url,
        PSR_DATABASE=DB,
        PSR_USER="alice",
        PSR_PASSWORD=PASSWORD,
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PSR_CLIENT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_create_reports_once_and_scripts_read_json(tmp_path: Path, server: ServerProcess) -> None:
    _import(server, SMALL)
    env = _env(tmp_path, server)
    created = _client(env, "offline", "create")
    assert created.returncode == EXIT_OK, created.stdout + created.stderr
    assert created.stdout.count(f"{SMALL} added") == 1, created.stdout
    again = _client(env, "offline", "create")
    assert "exists; synchronising it" in again.stdout
    assert "first synchronisation" not in again.stdout
    listing = json.loads(_client(env, "offline", "list", "--json").stdout)
    (copy,) = listing["copies"]
    assert (copy["database"], copy["username"], copy["record_count"]) == (DB, "alice", SMALL)
    status = _client(env, "offline", "status", "--json")
    assert status.returncode == EXIT_OK, status.stdout + status.stderr
    shown = json.loads(status.stdout)
    assert shown["copy"]["copy_id"] == copy["copy_id"]
    assert shown["state"] == "idle"
    assert shown["validity_left_s"] > 6 * 86400


def test_delete_works_without_the_server(tmp_path: Path, server: ServerProcess) -> None:
    _import(server, SMALL)
    env = _env(tmp_path, server)
    assert _client(env, "offline", "create").returncode == EXIT_OK
    server.stop()
    deleted = _client(env, "offline", "delete")
    assert deleted.returncode == EXIT_OK, deleted.stdout + deleted.stderr
    assert "was deleted" in deleted.stdout
    assert json.loads(_client(env, "offline", "list", "--json").stdout)["copies"] == []
    assert _client(env, "offline", "delete").returncode == EXIT_NO_COPY


def test_create_without_the_right_is_refused_and_deletes_nothing(
    tmp_path: Path, server: ServerProcess
) -> None:
    _import(server, SMALL)
    server.admin.set_user_offline("alice", enabled=False)
    result = _client(_env(tmp_path, server), "offline", "create")
    assert result.returncode == EXIT_NOT_ALLOWED, result.stdout + result.stderr
    assert "offline right" in result.stdout
    assert "deleted" not in result.stdout.lower()


def test_ctrl_c_stops_a_first_sync_and_keeps_what_it_received(
    tmp_path: Path, server: ServerProcess
) -> None:
    _import(server, LARGE)
    env = _env(tmp_path, server)
    child = subprocess.Popen(
        [str(PSR_CLIENT), "offline", "create"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    for line in child.stdout:
        seen.append(line)
        if line.startswith("[progress]") and f"/{LARGE}" in line:
            child.send_signal(signal.SIGINT)  # the first page is in
            break
        assert time.monotonic() < deadline, "".join(seen)
    rest, _ = child.communicate(timeout=60)
    out = "".join(seen) + rest
    assert child.returncode == EXIT_INTERRUPTED, out
    assert "Stopped" in out
    assert "Traceback" not in out
    finished = _client(env, "offline", "sync")
    assert finished.returncode == EXIT_OK, finished.stdout
    (copy,) = json.loads(_client(env, "offline", "list", "--json").stdout)["copies"]
    assert copy["record_count"] == LARGE
