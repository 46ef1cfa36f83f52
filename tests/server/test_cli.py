"""The psr-server command as a new user runs it: serve, admin commands, import, read the feed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from reference_server.testing import ServerProcess

from .apiclient import API


def _admin(data: Path, *args: str, stdin: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_server.cli", "admin", "--data", str(data), *args],
        input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, check=False,
    )


def test_new_user_walkthrough_serve_create_import_and_read_feed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = _admin(data, "db", "create", "demo", "--offline")
    assert out.returncode == 0, out.stderr
    assert "created database demo (offline allowed)" in out.stdout
    out = _admin(data, "user", "create", "alice", "--offline-right", "--validity-days", "3",
                 "--password-stdin", stdin="alice-pw\n")
    assert out.returncode == 0, out.stderr
    assert "created user alice" in out.stdout
    assert "alice-pw" not in out.stdout
    lines = tmp_path / "records.jsonl"
    lines.write_text("".join(
        json.dumps({"name": f"Record {i}", "fields": {"password": f"pw{i}"}}) + "\n"
        for i in range(1000)), encoding="utf-8")
    out = _admin(data, "import", "demo", str(lines), "--grant", "alice=rwe")
    assert out.returncode == 0, out.stderr
    assert "imported 1000 records into demo" in out.stdout

    with ServerProcess(data) as proc:
        http = requests.Session()
        r = http.post(f"{proc.url}{API}/session", json={
            "database": "demo", "username": "alice", "password": "alice-pw", "client_id": "c"})
        http.headers["Authorization"] = "Bearer " + r.json()["token"]
        assert http.get(f"{proc.url}{API}/databases/demo/offline/policy").json()[
            "validity_seconds"] == 3 * 86400
        r = http.get(f"{proc.url}{API}/databases/demo/offline/changes",
                     params={"limit": 5000}, headers={"Accept-Encoding": "gzip"})
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
        [sys.executable, "-m", "reference_server.cli", "serve", "--data", str(tmp_path),
         "--host", "0.0.0.0", "--port", "0"],  # noqa: S104 - the refusal is the point
        capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 2
    assert "plain HTTP" in out.stderr


def test_admin_commands_report_changes_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _admin(data, "db", "create", "demo", "--no-offline").returncode == 0
    out = _admin(data, "db", "create", "demo")
    assert out.returncode == 1
    assert "exists already" in out.stderr
    assert "offline use of database demo is now on" in _admin(
        data, "db", "offline", "demo", "on").stdout
    created = _admin(data, "user", "create", "bob", env={"PSR_NEW_PASSWORD": "pw"})
    assert "without offline right" in created.stdout
    assert "offline right of user bob is now on, validity 2 days" in _admin(
        data, "user", "offline", "bob", "on", "--validity-days", "2").stdout
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
    assert "new epoch" in _admin(data, "epoch", "bump").stdout
    assert "dropped 0 tombstones" in _admin(data, "compact").stdout
    assert "dropped 1 tombstones" in _admin(data, "compact", "--horizon-days", "0").stdout
    out = _admin(data, "record", "delete", "demo", "no-such-id")
    assert out.returncode == 1
    assert "No such record" in out.stderr
