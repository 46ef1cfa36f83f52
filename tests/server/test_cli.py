"""The psr-server command as a new user runs it: serve, admin commands, import, read the feed."""

from __future__ import annotations

import json
import os
import select
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from reference_server.admin import Admin
from reference_server.testing import ServerProcess
from tests.support.api import API, ApiClient

SECRET = "pw-Zq8#server-test"


def _admin(
    data: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_server.cli", "admin", "--data", str(data), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_new_user_walkthrough_serve_create_import_and_read_feed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = _admin(data, "init")
    assert out.returncode == 0, out.stderr
    assert f"created the server data folder {data}" in out.stdout
    out = _admin(data, "db", "create", "demo", "--offline")
    assert out.returncode == 0, out.stderr
    assert "created database demo (offline allowed)" in out.stdout
    out = _admin(
        data,
        "user",
        "create",
        "alice",
        "--offline-right",
        "--validity-days",
        "3",
        "--password-stdin",
        stdin="alice-pw\n",
    )
    assert out.returncode == 0, out.stderr
    assert "created user alice" in out.stdout
    assert "alice-pw" not in out.stdout
    lines = tmp_path / "records.jsonl"
    lines.write_text(
        "".join(
            json.dumps({"name": f"Record {i}", "fields": {"password": f"pw{i}"}}) + "\n"
            for i in range(1000)
        ),
        encoding="utf-8",
    )
    out = _admin(data, "import", "demo", str(lines), "--grant", "alice=rwe")
    assert out.returncode == 0, out.stderr
    assert "imported 1000 records into demo" in out.stdout

    with ServerProcess(data) as proc:
        http = requests.Session()
        r = http.post(
            f"{proc.url}{API}/session",
            json={
                "database": "demo",
                "username": "alice",
                "password": "alice-pw",
                "client_id": "c",
            },
        )
        http.headers["Authorization"] = "Bearer " + r.json()["token"]
        assert (
            http.get(f"{proc.url}{API}/databases/demo/offline/policy").json()["validity_seconds"]
            == 3 * 86400
        )
        r = http.get(
            f"{proc.url}{API}/databases/demo/offline/changes",
            params={"limit": 5000},
            headers={"Accept-Encoding": "gzip"},
        )
        assert r.headers["Content-Encoding"] == "gzip"
        page = r.json()
        assert len(page["changes"]) == 1000
        assert page["digest"]["count"] == 1000
        assert r.headers.get("Connection", "keep-alive") != "close"  # HTTP/1.1 keep-alive
        rid = page["changes"][0]["id"]
        http.close()
        out = _admin(data, "record", "seal", "demo", rid)
        assert f"sealed record {rid}" in out.stdout
        out = _admin(data, "db", "list")
        assert "demo\toffline allowed\t1000 records" in out.stdout


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data").start()
    assert requests.get(proc.url + API + "/session", timeout=5).status_code == 405
    raw = proc._proc
    assert raw is not None
    proc.stop()
    assert raw.returncode == 0


def test_serve_refuses_a_remote_address_without_allow_remote(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference_server.cli",
            "serve",
            "--data",
            str(tmp_path),
            "--host",
            "0.0.0.0",  # noqa: S104 - the refusal to bind all interfaces is what is tested
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "plain HTTP" in out.stderr


def test_admin_commands_report_changes_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _admin(data, "init").returncode == 0
    assert _admin(data, "db", "create", "demo", "--no-offline").returncode == 0
    out = _admin(data, "db", "create", "demo")
    assert out.returncode == 1
    assert "exists already" in out.stderr
    assert (
        "offline use of database demo is now on"
        in _admin(data, "db", "offline", "demo", "on").stdout
    )
    created = _admin(data, "user", "create", "bob", env={"PSR_NEW_PASSWORD": "pw"})
    assert "without offline right" in created.stdout
    assert (
        "offline right of user bob is now on, validity 2 days"
        in _admin(data, "user", "offline", "bob", "on", "--validity-days", "2").stdout
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "ok", "fields": {}}\n{broken\n', encoding="utf-8")
    out = _admin(data, "import", "demo", str(bad))
    assert out.returncode == 1
    assert "bad.jsonl:2" in out.stderr
    good = tmp_path / "good.jsonl"
    good.write_text('{"name": "one", "fields": {}}\n', encoding="utf-8")
    _admin(data, "import", "demo", str(good), "--grant", "bob=re")
    rid = _admin(data, "record", "list", "demo").stdout.split("\t")[0]
    out = _admin(data, "right", "set", "demo", "bob", rid, "--no-export", "--write")
    assert f"rights of bob on record {rid} in demo: rw" in out.stdout
    assert "deleted record" in _admin(data, "record", "delete", "demo", rid).stdout
    assert "started a new feed epoch" in _admin(data, "epoch", "bump").stdout
    assert _admin(data, "compact").stdout == (
        "Nothing to compact: there are no tombstones older than 7 days.\n"
    )
    out = _admin(data, "compact", "--horizon-days", "0").stdout
    assert out.startswith(
        "Compacted the change feed: 1 tombstone removed; clients that last synced before "
    )
    out = _admin(data, "record", "delete", "demo", "no-such-id")
    assert out.returncode == 1
    assert "No such record" in out.stderr


def _initialised(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert _admin(data, "init").returncode == 0
    with Admin(data) as admin:
        admin.create_database("demo")
    return data


def test_a_listing_piped_into_head_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    data = _initialised(tmp_path)
    with Admin(data) as admin:
        # Far more than a pipe holds, so that the command is still writing when head leaves.
        admin.import_records(
            "demo", [{"name": f"Record {i:05d}", "fields": {}} for i in range(20_000)]
        )
    command = (
        f"set -o pipefail; {shlex.quote(sys.executable)} -m reference_server.cli admin "
        f"--data {shlex.quote(str(data))} record list demo | head -n 2"
    )
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert (out.returncode, out.stderr) == (0, "")
    assert [line.split("\t")[-1] for line in out.stdout.splitlines()] == [
        "Record 00000",
        "Record 00001",
    ]


def test_without_a_terminal_a_password_prompt_says_what_to_use_instead(tmp_path: Path) -> None:
    data = _initialised(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PSR_NEW_PASSWORD"}
    # A new session has no controlling terminal: there is no /dev/tty to prompt on.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference_server.cli",
            "admin",
            "--data",
            str(data),
            "user",
            "create",
            "carol",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        start_new_session=True,
        check=False,
    )
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == "psr-server: no terminal: use --password-stdin or $PSR_NEW_PASSWORD\n"
    with Admin(data) as admin:
        assert admin.list_users() == []


# Run as a session leader on a pseudo-terminal: opening it makes it the controlling terminal
# (so /dev/tty is that terminal), then become psr-server.
_ON_A_TERMINAL = (
    "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _read_until(fd: int, wanted: str, timeout: float = 30.0) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} never came; the terminal showed {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk.decode("utf-8", "replace")
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals as on Linux")
def test_on_a_terminal_the_new_password_is_asked_twice_without_echo(tmp_path: Path) -> None:
    data = _initialised(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PSR_NEW_PASSWORD"}
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _ON_A_TERMINAL,
            "-m",
            "reference_server.cli",
            "admin",
            "--data",
            str(data),
            "user",
            "create",
            "carol",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        shown = _read_until(master, "New password for carol: ")
        os.write(master, f"{SECRET}\n".encode())
        shown += _read_until(master, "Repeat it: ")
        os.write(master, f"{SECRET}\n".encode())
        shown += _read_until(master, "\x00never")  # everything up to the end
        assert proc.wait(timeout=30) == 0, shown
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "created user carol" in shown
    assert SECRET not in shown  # the terminal did not echo it
    with ServerProcess(data) as server:
        ApiClient(server.url, "demo").login("carol", SECRET).close()


def test_opening_a_world_readable_folder_tightens_it_and_says_so_on_stderr(
    tmp_path: Path,
) -> None:
    data = _initialised(tmp_path)
    os.chmod(data / "server.sqlite3", 0o644)
    out = _admin(data, "db", "list")
    assert out.returncode == 0
    assert out.stderr == (
        f"psr-server: made {data / 'server.sqlite3'} readable by its owner "
        "only (mode 0600, was 0644): the data folder holds record passwords\n"
    )
    assert stat.S_IMODE((data / "server.sqlite3").stat().st_mode) == 0o600
