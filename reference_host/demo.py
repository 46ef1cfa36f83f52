"""``make demo``: the Offline Add-on's main job, start to end, on a fresh temporary folder.

Starts the reference server, creates a database with offline use allowed, a user with the
offline right and a few thousand records, then drives ``psr-client`` as a user would: log in,
create the offline copy by hand (with its progress), edit a record (the copy syncs after the
save), let the 30-minute interval pass (``tick 31``), stop the server and log in offline, then
revoke the user's offline right and watch the copy disappear. Every step is checked; the demo
exits non-zero when one did not do what it should, and always cleans up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from reference_server.testing import ServerProcess

DATABASE = "demo"
USER = "alice"
PASSWORD = "alice-demo-pw"  # noqa: S105  (throw-away demo account)
RECORD_COUNT = 3000
STEP_TIMEOUT_S = 60.0
UP_TO_DATE = f"Up to date: {RECORD_COUNT:,} records"


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and what was seen."""


def say(text: str) -> None:
    """Narrate for the user."""
    print()
    print(textwrap.fill(text, width=92))
    sys.stdout.flush()


def client(env: dict[str, str], args: Sequence[str], stdin: str = "") -> str:
    """Run ``psr-client ARGS`` with ``stdin``; show and return its output."""
    shown = " ".join(["psr-client", *args])
    print(f"\n  $ {shown}")
    for line in stdin.strip().splitlines():
        print(f"  psr> {line}")
    done = subprocess.run(
        [sys.executable, "-m", "reference_host.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=env,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    for line in output.rstrip().splitlines():
        print(f"    {line}")
    sys.stdout.flush()
    return output


def expect(condition: bool, what: str) -> None:
    """Fail the demo with ``what`` unless ``condition``."""
    if not condition:
        raise DemoFailed(what)


def restart_on(data_dir: Path, url: str) -> subprocess.Popen[str]:
    """Start the server again on the same address (the copy belongs to that server URL)."""
    port = urlsplit(url).port
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reference_server.cli",
            "serve",
            "--data",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on"):
        proc.kill()
        proc.wait()
        raise DemoFailed(f"the server did not start again on port {port}: {line.strip()!r}")
    return proc


def run_demo(work: Path) -> None:
    """All steps of the demo inside the folder ``work``."""
    data_dir, config_dir, offline_dir = work / "server", work / "config", work / "offline"
    say("1. Starting the reference server (the server manager side) on a fresh data folder.")
    server = ServerProcess(data_dir).start()
    restarted: subprocess.Popen[str] | None = None
    try:
        admin = server.admin
        admin.create_database(DATABASE, offline_allowed=True)
        admin.create_user(USER, PASSWORD, offline_right=True, validity_days=7)
        items = [
            {
                "name": f"Record {i:04d}",
                "fields": {
                    "username": f"user{i}",
                    "password": f"pw-{i}",
                    "url": f"https://service{i}.example",
                },
            }
            for i in range(RECORD_COUNT)
        ]
        ids = admin.import_records(DATABASE, items, grant={USER: "rwe"})
        print(
            f"   server at {server.url}: database '{DATABASE}' allows offline use; user "
            f"'{USER}' has the offline right (7 days); {RECORD_COUNT} records."
        )
        env = dict(
            os.environ,
            PSR_CLIENT_CONFIG_DIR=str(config_dir),
            PSR_SERVER=server.url,
            PSR_DATABASE=DATABASE,
            PSR_USER=USER,
            PSR_PASSWORD=PASSWORD,
        )
        env.pop("PSR_NEW_PASSWORD", None)

        say(
            "2. The add-on is installed in the client. Its offline copies go into the demo "
            "folder (setting 'database_path')."
        )
        out = client(env, ["settings", "set", "offline", "database_path", str(offline_dir)])
        expect("error" not in out.lower(), "the database_path setting was not accepted")

        say(
            "3. Log in online. The first offline copy is always created by hand "
            "('offline create'); watch its progress. Then edit a record: the add-on syncs a "
            "moment after the save, and its status line says so. Then let the 30-minute "
            "interval pass ('tick 31'): another sync, without anyone asking; with nothing new "
            "it says nothing, and 'offline status' shows the next one 30 minutes on."
        )
        out = client(
            env,
            ["login"],
            "\n".join(
                [
                    "offline create",
                    f"edit {ids[42]} notes=changed-in-the-demo",
                    "sleep 4",
                    "tick 31",
                    "sleep 3",
                    "offline status",
                    "quit",
                ]
            ),
        )
        expect("[progress] offline:" in out, "no progress was shown during the first sync")
        expect(
            f"is synchronised: {RECORD_COUNT:,} added" in out,
            "the first sync did not copy all records",
        )
        expect(
            out.count(UP_TO_DATE) >= 2,
            "expected the first sync and the sync after the save to end 'Up to date'",
        )
        expect(
            "Offline synchronisation completed" not in out,
            "a sync was announced in the scroll-back instead of the status line",
        )
        expect(
            "Next automatic sync in 30 min" in out,
            "the interval sync did not run (the next one is not 30 minutes away)",
        )

        say(
            "4. The server goes away. The user logs in anyway: the client falls back to the "
            "offline copy (read-only) and can search and show records."
        )
        server.stop()
        out = client(env, ["login"], f"search Record 0042\nshow {ids[42]}\nquit")
        expect("Record 0042" in out, "the offline search did not find the record")
        expect("changed-in-the-demo" in out, "the offline copy lacks the edit made online")

        say(
            "5. The server is back, and the administrator revokes the user's offline right. "
            "At the next login the add-on asks the server, learns this and deletes the copy."
        )
        restarted = restart_on(data_dir, server.url)
        server.admin.set_user_offline(USER, enabled=False)
        out = client(env, ["login"], "sleep 3\nquit")
        expect("Offline copy deleted" in out, "the user was not told that the copy was deleted")
        out = client(env, ["offline", "list"])
        expect("No offline copies" in out, "the offline copy is still on disk")
        leftovers = sorted(p.name for p in offline_dir.glob("*")) if offline_dir.exists() else []
        expect(not leftovers, f"files left in the offline folder: {leftovers}")
    finally:
        server.stop()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(timeout=15)
            if restarted.stdout is not None:
                restarted.stdout.close()


def main() -> int:
    """Run the demo in a temporary folder; 0 when every step did what it should."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="psr-offline-demo-"))
    try:
        run_demo(work)
    except (DemoFailed, subprocess.TimeoutExpired, RuntimeError) as exc:
        say(f"DEMO FAILED: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(
        f"Demo finished in {time.monotonic() - started:.0f} s: every step did what it should. "
        "The temporary folder was removed."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
