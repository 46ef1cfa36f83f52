"""Helpers of the proof suite: a fresh database and user per test (a ``World``), and the
checks every fault test ends with (the copy opens, passes
``PRAGMA integrity_check``, lost and rolled back nothing, and converges on the next sync).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hookspecs import Session

CLIENT_ID = "proof-client-0001"
_counter = itertools.count(1)


def cursor_position(cursor: str | None) -> tuple[str, int]:
    """(epoch, seq) of an opaque cursor; ("", -1) for none.

    The cursor is signed, not encrypted: its first part is base64url JSON. Reading it here (and
    only here, in tests) is how the suite proves that the stored position never goes back.
    """
    if cursor is None:
        return ("", -1)
    body = cursor.split(".", 1)[0]
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return (str(data["epoch"]), int(data["seq"]))


def make_records(count: int, tag: str, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` records whose content is recognisable (``tag`` marks every value)."""
    rng = random.Random(seed)
    return [
        {
            "name": f"{tag} Account {i:05d}",
            "fields": {
                "username": f"{tag}-user-{i}@example.com",
                "password": f"{tag}-pw-{rng.randrange(10**9):09d}",
                "url": f"https://{tag.lower()}-{i}.example.com/",
                "notes": f"{tag} note {i}",
            },
        }
        for i in range(count)
    ]


@dataclass
class World:
    """One test's corner of the shared server: a database, a user with rwe on its records."""

    url: str
    admin: Any
    database: str
    username: str
    password: str
    user_id: str
    ids: list[str]
    folder: Path
    copy_url: str = ""
    """The server URL the copy is named after (fixed, also when the server moves port)."""

    def login(self, url: str | None = None) -> Session:
        """A fresh online session (POST /session) against ``url`` (default: the server)."""
        base = url or self.url
        resp = requests.post(
            f"{self.url}/api/v1/session",
            json={
                "database": self.database,
                "username": self.username,
                "password": self.password,
                "client_id": CLIENT_ID,
            },
            timeout=10,
        )
        resp.raise_for_status()
        body = resp.json()
        return Session(
            server_url=base,
            database=self.database,
            user_id=body["user_id"],
            username=self.username,
            client_id=CLIENT_ID,
            token=body["token"],
            password=self.password,
        )

    def paths(self) -> Any:
        """The copy's paths (always named after the real server, also when a test talks to it
        through the fault proxy, so that every sync of a test works on one copy)."""
        from offline_addon.storage.paths import CopyPaths

        url = self.copy_url or self.url
        return CopyPaths.for_copy(self.folder, url, self.database, self.username, CLIENT_ID)

    def expected(self) -> dict[str, tuple[int, str, dict[str, str]]]:
        """What the user may export now: the ground truth a complete sync must equal."""
        view: dict[str, tuple[int, str, dict[str, str]]] = self.admin.exportable_view(
            self.database, self.username
        )
        return {rid: (rev, name, dict(fields)) for rid, (rev, name, fields) in view.items()}


@dataclass(frozen=True)
class CopyState:
    """What a copy holds: records (id -> (rev, name, fields)) and the cursor position."""

    records: dict[str, tuple[int, str, dict[str, str]]]
    position: tuple[str, int]


EMPTY = CopyState({}, ("", -1))


def read_copy(paths: Any, password: str) -> CopyState:
    """Open the copy, require ``PRAGMA integrity_check`` ok, and read what it holds."""
    from offline_addon.storage.offline_copy import OfflineCopy

    if not paths.db.exists():
        return EMPTY
    with OfflineCopy.open(paths, password) as copy:
        assert copy.integrity_ok(), "PRAGMA integrity_check failed"
        records = {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}
        return CopyState(records, cursor_position(copy.cursor))


def assert_nothing_lost(before: CopyState, after: CopyState, *, allowed_gone: set[str]) -> None:
    """No record lost (unless the server removed it) or rolled back; the cursor never went
    back. Within one epoch positions are compared by seq; a new epoch means a full resync."""
    if before.position[0] == after.position[0]:
        assert after.position[1] >= before.position[1], "the stored cursor went backwards"
    if after == EMPTY and before != EMPTY:
        raise AssertionError("the copy disappeared")
    for rid, (rev, _, _) in before.records.items():
        if rid in after.records:
            assert after.records[rid][0] >= rev, f"record {rid[:8]} was rolled back"
        else:
            assert rid in allowed_gone, f"record {rid[:8]} was lost"


def sync(world: World, session: Session, *, create: bool = False, **kwargs: Any) -> Any:
    """One engine sync of ``world``'s copy for ``session``."""
    from offline_addon.sync.engine import sync_copy

    kwargs.setdefault("progress", None)
    return sync_copy(world.paths(), session, create=create, **kwargs)


def assert_converges(world: World, session: Session | None = None) -> CopyState:
    """A complete sync (direct to the server) makes the copy equal the exportable view."""
    session = session or world.login()
    sync(world, session, create=True)
    state = read_copy(world.paths(), world.password)
    expected = world.expected()
    assert state.records.keys() == expected.keys(), "the copy holds other records than the view"
    assert state.records == expected, "a record's rev, name or fields differ from the server"
    return state


def assert_user_message(exc: BaseException, *words: str) -> None:
    """The error is an add-on error whose message is a sentence that says what happened."""
    from offline_addon.errors import OfflineAddonError

    assert isinstance(exc, OfflineAddonError), f"{type(exc).__name__} is not an add-on error"
    message = str(exc)
    assert len(message) > 20, f"not a user sentence: {message!r}"
    assert message[0].isupper(), f"not a user sentence: {message!r}"
    lowered = message.lower()
    assert any(w in lowered for w in words), f"{message!r} mentions none of {words}"


def new_world(server: Any, folder: Path, records: int = 300, tag: str = "Proof") -> World:
    """A fresh database with ``records`` records and a fresh user holding rwe on them."""
    n = next(_counter)
    database, username, password = f"proofdb{n}", f"user{n}", f"pw-{n}-Tr0ub4dor&3"
    admin = server.admin
    admin.create_database(database, offline_allowed=True)
    user_id = admin.create_user(username, password, offline_right=True, validity_days=7)
    ids = list(
        admin.import_records(database, make_records(records, tag, n), grant={username: "rwe"})
    )
    return World(server.url, admin, database, username, password, user_id, ids, folder, server.url)


CHILD = Path(__file__).with_name("sync_child.py")


class Child:
    """A writing process (``sync_child.py``) fed a job on stdin; started and ready."""

    def __init__(self, job: dict[str, Any]) -> None:
        import subprocess
        import sys

        from reference_server.testing import read_line

        self._read_line = read_line
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=CHILD.parent,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.close()
        assert self.line(30) == "ready", "child did not start"

    def line(self, timeout: float = 60) -> str:
        """The next line the child prints ("" when it ended or stayed silent)."""
        assert self.proc.stdout is not None
        return self._read_line(self.proc.stdout, timeout).strip()

    def until(self, prefix: str, timeout: float = 60) -> str:
        """Read lines until one starts with ``prefix`` (or with "done"/"error"); return it."""
        while True:
            line = self.line(timeout)
            if not line or line.startswith((prefix, "done", "error")):
                return line

    def finish(self, timeout: float = 120) -> str:
        """Wait for the end; the last line ("done ..." or "error ...")."""
        last = ""
        while True:
            line = self.line(timeout)
            if not line:
                break
            last = line
        self.proc.wait(timeout)
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()
        self.close()
        return last

    def kill(self) -> bool:
        """SIGKILL now; whether it was still running."""
        import signal

        running = self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)
        self.close()
        return running

    def close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def child_job(world: World, session: Session, **extra: Any) -> dict[str, Any]:
    """The job of a syncing child for ``world``'s copy (secrets travel on stdin)."""
    job: dict[str, Any] = {"session": session.__dict__, "folder": str(world.folder),
                           "copy_url": world.copy_url, "limit": 100}
    job.update(extra)
    return job


def copy_meta(paths: Any, password: str) -> Any:
    """The copy's bookkeeping (complete, expected total, generation), read with the password."""
    from offline_addon.storage.offline_copy import OfflineCopy

    with OfflineCopy.open(paths, password) as copy:
        return copy.meta


# -- the real psr-client, one-shot -------------------------------------------------------------

PSR_CLIENT = Path(sys.executable).parent / "psr-client"


class Client:
    """``psr-client`` one-shot commands with their own settings folder, logged in as the
    world's user (the password comes from the environment, never the command line)."""

    def __init__(self, world: World, home: Path) -> None:
        self.world = world
        self.config_dir = home / "client-config"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PSR_")}
        self.env.update(PSR_CLIENT_CONFIG_DIR=str(self.config_dir), PSR_SERVER=world.url,
                        PSR_DATABASE=world.database, PSR_USER=world.username,
                        PSR_PASSWORD=world.password, XDG_DATA_HOME=str(home / "xdg-data"))

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PSR_CLIENT), *args], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(PSR_CLIENT), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def stored_folder(self) -> str:
        data: dict[str, Any] = json.loads((self.config_dir / "host.json").read_text("utf-8"))
        return str(data["addons"]["offline"]["settings"].get("database_path", ""))

    def copies(self) -> Any:
        """An ``OfflineCopies`` over the folder the client stored."""
        from offline_addon import AddonSettings, OfflineCopies

        return OfflineCopies(AddonSettings(database_path=self.stored_folder()))


def client_with_copy(world: World, home: Path) -> Client:
    client = Client(world, home)
    assert client("settings", "set", "offline", "database_path", str(world.folder)).returncode == 0
    created = client("offline", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    return client


def copy_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def assert_one_whole_copy(client: Client, other: Path) -> None:
    """Exactly one listed copy, in the stored folder, opening with all its records; the other
    folder holds no copy (listed or not)."""
    from offline_addon.storage.paths import CopyPaths
    from offline_addon.storage.sidecar import list_copies

    copies = client.copies()
    try:
        [info] = copies.list()
        assert info.complete
        paths = CopyPaths(copies.folder, info.copy_id)
        assert read_copy(paths, client.world.password).records == client.world.expected()
    finally:
        copies.shutdown()
    assert list_copies(other) == []
    left = [name for name in copy_files(other) if ".offline.db" in name or ".json" in name]
    assert not left, f"left in the other folder: {left}"


