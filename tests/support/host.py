"""The host for tests: test add-ons installed through REAL entry points (a package plus a
``*.dist-info`` folder written into a temporary site folder that is put on ``sys.path`` or
``PYTHONPATH``), servers that are not the reference server, hosts and shells driven in-process
(:class:`ScriptedShell`, :class:`HostRun`), ``psr-client`` as a subprocess (:class:`Cli`) and in
a real terminal (:class:`TerminalClient`)."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import http.server
import importlib
import io
import json
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import offline_addon.plugin as plugin_module
from hookspecs import Session
from offline_addon.api import OfflineCopies
from offline_addon.storage.paths import CopyPaths
from offline_addon.storage.sidecar import list_copies
from reference_host.addons import AddonInfo, discover
from reference_host.host import Host
from reference_host.services import Console
from reference_host.session import LoginTarget
from reference_host.shell import Shell
from reference_host.timer import HostClock
from reference_server.testing import RunningServer

from .checks import read_copy
from .worlds import World as ProofWorld

ROOT = Path(__file__).resolve().parents[2]
PSR_CLIENT = Path(sys.executable).parent / "psr-client"

# A probe add-on: records every hook call (in CALLS, and in the file $PROBE_LOG for
# subprocess tests), contributes `GROUP ping` and `GROUP whoami`, and can answer
# offline_login with a tiny in-memory session.
PROBE_SOURCE = """
import json, logging, os, threading, time
from hookspecs import (CommandArgument, HostCommand, OfflineLoginResult, RecordView,
                       hookimpl)

CALLS = []
SERVICES = []
# "none" | "session" | "message"; $PROBE_OFFLINE sets it for subprocess tests.
OFFLINE_ANSWER = {"mode": os.environ.get("PROBE_OFFLINE", "none")}
# The offline session's records beyond "Mail" ("Item 0000"...), and whether it can count the
# matches of a search (contract 1.1); its search stops at 500 like the Offline Add-on's.
OFFLINE_RECORDS = {"extra": 0, "count": False}
SLOW_TIMER = {"seconds": 0}   # on_timer sleeps, then reads its settings through the host
SETTINGS_SEEN = []
ADDON_ID = __ADDON_ID__
WAIT_S = 30.0


def _note(hook, **info):
    CALLS.append((hook, info))
    path = os.environ.get("PROBE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"addon": ADDON_ID, "hook": hook, **info}) + "\\n")


class _OfflineSession:
    database = "demo"
    username = "alice"
    valid_until = 4102444800.0

    def __init__(self):
        self._records = [RecordView("r1", 3, "Mail", {"username": "alice",
                                                      "password": "probe-Kx7!offline-pw"})]
        self._records += [RecordView(f"x{i}", 1, f"Item {i:04d}", {"password": f"pw-{i}"})
                          for i in range(OFFLINE_RECORDS["extra"])]
        self.closed = False
        if OFFLINE_RECORDS["count"]:
            self.count_matches = lambda query: len(self._matching(query))

    def list_records(self):
        return list(self._records)

    def _matching(self, query):
        return [r for r in self._records if query.lower() in r.name.lower()]

    def search(self, query):
        return self._matching(query)[:500]

    def get_record(self, record_id):
        return next((r for r in self._records if r.record_id == record_id), None)

    def close(self):
        self.closed = True
        _note("offline_session_closed")


def _ping(invocation):
    invocation.output("pong " + str(invocation.args.get("word")))
    return int(invocation.args.get("code") or 0)


def _whoami(invocation):
    invocation.output("session user " + (invocation.session.username
                                         if invocation.session else "none"))
    return 0


def _explode(invocation):
    raise RuntimeError("handler exploded")


def _account(invocation):
    account = invocation.account
    invocation.output("account " + (" ".join([account.server_url, account.database,
                                              account.username, account.client_id])
                                     if account else "none"))
    return 0


def _hint(invocation):
    command_text = getattr(invocation.services, "command_text", None)
    invocation.output("run " + (command_text(ADDON_ID, "ping") if command_text else "?"))
    return 0


def _wait(invocation):
    invocation.output("waiting")
    try:
        time.sleep(WAIT_S)
    except KeyboardInterrupt:
        _note("wait_interrupted")
        raise
    return 0


def _later(invocation):
    host = invocation.services

    def background():
        time.sleep(0.3)
        host.progress("job", 1, 4, "Working")
        host.notify("Probe", "from the background", "warning")
        host.progress("job", 4, 4, "Working")
        host.notify("Probe", "background info")

    threading.Thread(target=background, daemon=True).start()
    return 0


def _grumble(invocation):
    logging.getLogger("probe_addon.worker").warning("grumble-warning from the add-on")
    logging.getLogger("probe_addon.worker").error("grumble-error from the add-on")
    return 0


class Probe:
    @hookimpl
    def on_addon_enabled(self, host):
        SERVICES.append(host)
        _note("on_addon_enabled")

    @hookimpl
    def on_addon_disabled(self):
        _note("on_addon_disabled")

    @hookimpl
    def on_settings_changed(self, addon_id, settings):
        _note("on_settings_changed", addon_id=addon_id, settings=dict(settings))

    @hookimpl
    def on_login(self, session):
        _note("on_login", user_id=session.user_id, username=session.username)

    @hookimpl
    def on_logout(self, session):
        _note("on_logout", user_id=session.user_id)

    @hookimpl
    def on_record_saved(self, session, record):
        _note("on_record_saved", record_id=record.record_id, saved_by=record.saved_by,
              user_id=session.user_id)

    @hookimpl
    def on_timer(self, session, now):
        _note("on_timer", now=now)
        if SLOW_TIMER["seconds"]:
            time.sleep(SLOW_TIMER["seconds"])
            SETTINGS_SEEN.append(dict(SERVICES[-1].addon_settings(ADDON_ID)))

    @hookimpl
    def offline_login(self, credentials):
        _note("offline_login", username=credentials.username, database=credentials.database)
        mode = OFFLINE_ANSWER["mode"]
        if mode == "session":
            return OfflineLoginResult(_OfflineSession(), "opened the offline copy")
        if mode == "message":
            return OfflineLoginResult(None, "the offline copy has expired; connect to renew it")
        return None

    @hookimpl
    def on_password_changed(self, session, old_password):
        _note("on_password_changed", new_is_old=session.password == old_password)

    @hookimpl
    def register_commands(self):
        _note("register_commands")
        return [
            HostCommand(ADDON_ID, "ping", "answer pong", _ping, (
                CommandArgument("word", "a word", kind="positional"),
                CommandArgument("code", "exit code to return"))),
            HostCommand(ADDON_ID, "whoami", "show the session user", _whoami,
                        needs_session=True),
            HostCommand(ADDON_ID, "explode", "a handler that raises", _explode),
            HostCommand(ADDON_ID, "account", "show the account", _account),
            HostCommand(ADDON_ID, "hint", "how to type ping here", _hint),
            HostCommand(ADDON_ID, "wait", "wait a long time", _wait),
            HostCommand(ADDON_ID, "later", "report from a background thread", _later),
            HostCommand(ADDON_ID, "grumble", "log a warning and an error", _grumble),
        ]


addon = Probe()
"""

# An add-on that raises in every hook.
BROKEN_SOURCE = """
from hookspecs import hookimpl

ATTEMPTS = []


def _fail(hook):
    ATTEMPTS.append(hook)
    raise RuntimeError("broken add-on fails in " + hook)


class Broken:
    @hookimpl
    def on_addon_enabled(self, host):
        _fail("on_addon_enabled")

    @hookimpl
    def on_addon_disabled(self):
        _fail("on_addon_disabled")

    @hookimpl
    def on_settings_changed(self, addon_id, settings):
        _fail("on_settings_changed")

    @hookimpl
    def on_login(self, session):
        _fail("on_login")

    @hookimpl
    def on_logout(self, session):
        _fail("on_logout")

    @hookimpl
    def on_record_saved(self, session, record):
        _fail("on_record_saved")

    @hookimpl
    def on_timer(self, session, now):
        _fail("on_timer")

    @hookimpl
    def offline_login(self, credentials):
        _fail("offline_login")

    @hookimpl
    def on_password_changed(self, session, old_password):
        _fail("on_password_changed")

    @hookimpl
    def register_commands(self):
        _fail("register_commands")


addon = Broken()
"""

ALL_HOOKS = [
    "on_addon_enabled",
    "on_addon_disabled",
    "on_settings_changed",
    "on_login",
    "on_logout",
    "on_record_saved",
    "on_timer",
    "offline_login",
    "on_password_changed",
    "register_commands",
]


def probe_manifest(addon_id: str, module: str) -> dict[str, Any]:
    """A valid manifest for a test add-on."""
    return {
        "id": addon_id,
        "name": f"Probe {addon_id}",
        "version": "0.3.1",
        "description": "A test add-on that records the hooks it receives.",
        "entry_point": f"{module}.plugin:addon",
        "contract_version": "1.0",
        "hooks": ALL_HOOKS,
        "rights": [],
        "server_settings": [],
        "settings": {
            "loud": {"type": "boolean", "default": False, "description": "Say more."},
            "level": {
                "type": "integer",
                "default": 3,
                "minimum": 1,
                "maximum": 9,
                "description": "How much.",
            },
            "label": {"type": "string", "default": "", "description": "A label."},
        },
    }


@dataclass(frozen=True)
class InstalledAddon:
    """A test add-on installed into a temporary site folder."""

    addon_id: str
    module: str
    site: Path

    def plugin_module(self) -> Any:
        """The add-on's plugin module as the host loaded it (same module object)."""
        return importlib.import_module(f"{self.module}.plugin")


class AddonSite:
    """A temporary site folder that holds test add-ons with real dist-info entry points."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.modules: list[str] = []

    def install(
        self,
        addon_id: str,
        source: str = PROBE_SOURCE,
        manifest: dict[str, Any] | str | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> InstalledAddon:
        """Write package ``<addon_id>_<random>`` with ``source`` as its plugin module, its
        manifest (``edit`` may corrupt it; a str is written as is) and a dist-info folder."""
        module = f"{addon_id.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        package = self.site / module
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("", encoding="utf-8")
        (package / "plugin.py").write_text(
            source.replace("__ADDON_ID__", repr(addon_id)), encoding="utf-8"
        )
        data = copy.deepcopy(manifest) if manifest is not None else probe_manifest(addon_id, module)
        if edit is not None and isinstance(data, dict):
            edit(data)
        text = data if isinstance(data, str) else json.dumps(data, indent=2)
        (package / "manifest.json").write_text(text, encoding="utf-8")
        dist = self.site / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8"
        )
        (dist / "entry_points.txt").write_text(
            f"[psr.addons]\n{addon_id} = {module}.plugin:addon\n", encoding="utf-8"
        )
        self.modules.append(module)
        return InstalledAddon(addon_id, module, self.site)


def discovered(*ids: str) -> list[AddonInfo]:
    """The discovered add-ons with these ids only (keeps the real add-on out of a test)."""
    return [a for a in discover() if a.addon_id in ids]


# -- servers that are not the reference server ------------------------------------------------


class SilentServer:
    """Accepts connections on a loopback port and never answers (a hung server, or one behind
    a black-holing network). Closes everything when stopped, or after ``lifetime`` seconds at
    the latest, so that a failing test cannot leave it behind."""

    def __init__(self, lifetime: float = 60.0) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                self._held.append(conn)
                self.accepted += 1
        finally:
            for conn in self._held:
                conn.close()
            self._sock.close()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not here\n")

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def web_server_that_is_not_psr() -> Iterator[str]:
    """A real HTTP server on loopback that answers 404 to everything (a wrong URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- a world on the reference server, and shells driven by a script -----------------------

PASSWORD = "pw-Kx7!alice-host"
MAIL_SECRET = "mail-Kx7!secret"
BANK_PIN = "pin-Qz8!bank"


@dataclass(frozen=True)
class World:
    """The reference server with database ``demo`` (offline allowed) and alice, who may read
    and write the records Mail and Bank."""

    server: RunningServer
    alice_id: str
    mail_id: str
    bank_id: str


def closed_port_url() -> str:
    """The URL of a loopback port where nothing listens (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class ScriptedShell:
    """A host with the probe add-on and a shell fed from a script."""

    def __init__(
        self,
        host: Host,
        out: io.StringIO,
        probe: InstalledAddon,
        url: str,
        timer_seconds: float = 3600.0,
    ) -> None:
        self.host, self.out, self.probe = host, out, probe
        self.clock = HostClock()
        self.url = url
        self.timer_seconds = timer_seconds

    def shell(self, script: str = "", **options: Any) -> Shell:
        """A shell over this host that reads ``script``."""
        return Shell(
            self.host,
            LoginTarget(self.url, "demo", "alice"),
            self.clock,
            self.timer_seconds,
            io.StringIO(script),
            interactive=False,
            **options,
        )

    def run(self, script: str, password: str = PASSWORD, **options: Any) -> tuple[bool, list[str]]:
        """Log in, run ``script``, quit; (logged in?, output lines)."""
        shell = self.shell(script, **options)
        ok = shell.login(password)
        if ok:
            shell.run()
        return ok, self.out.getvalue().splitlines()

    def calls(self, hook: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        calls: list[tuple[str, dict[str, Any]]] = list(self.probe.plugin_module().CALLS)
        return [c for c in calls if hook is None or c[0] == hook]


# -- a real terminal ------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>78]|\r")
# Makes the pseudo-terminal the child's controlling terminal, so that Ctrl-C typed into it
# reaches the child as SIGINT, as in a terminal window.
_CONTROLLING_TTY = (
    "import fcntl, os, sys, termios; os.setsid(); "
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"
)


class TerminalClient:
    """``psr-client`` in a pseudo-terminal (80x24): keys in, screen text out, cursor position
    requests answered.

    :meth:`screen` is what was written so far with the terminal's control sequences taken
    out, which is enough to see lines, prompts and the status line appear.
    """

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self._master = master
        self._raw: list[bytes] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CONTROLLING_TTY, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm"},
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._raw.append(chunk)
            # Answer cursor position requests as a terminal does (top left will do): without
            # the answer prompt_toolkit does not know the room below the prompt and leaves
            # its bottom toolbar out.
            for _ in range(chunk.count(b"\x1b[6n")):
                os.write(self._master, b"\x1b[1;1R")

    def raw(self) -> str:
        """Everything written to the terminal, control sequences included."""
        with self._lock:
            return b"".join(self._raw).decode("utf-8", "replace")

    def screen(self) -> str:
        """What was written, without control sequences."""
        return _ANSI.sub("", self.raw())

    def type(self, keys: str) -> None:
        """Type ``keys`` (``"\\r"`` is Enter, ``"\\x03"`` Ctrl-C, ``"\\x04"`` Ctrl-D)."""
        os.write(self._master, keys.encode("utf-8"))

    def expect(self, text: str, timeout: float = 15.0, after: int = 0) -> int:
        """Wait until ``text`` appears on the screen after position ``after``; its end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.screen().find(text, after)
            if found >= 0:
                return found + len(text)
            time.sleep(0.05)
        raise AssertionError(f"{text!r} did not appear; the screen had:\n{self.screen()}")

    def close(self, timeout: float = 20.0) -> int:
        """Wait for the program to end (killing it if it does not); its exit code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._reader.join(timeout=5)
            if self._master >= 0:
                os.close(self._master)
                self._master = -1


# -- psr-client as a subprocess -------------------------------------------------------------


class Cli:
    """Runs ``psr-client`` with its own config folder under ``home``, its default copies
    folder in ``home`` (never the user's own), the probe's call log, and the test ``site`` (if
    any) on ``PYTHONPATH``; ``env`` is added to its environment."""

    def __init__(self, home: Path, site: Path | None = None, **env: str) -> None:
        self.config_dir = home / "client-config"
        self.probe_log = home / "probe.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PSR_")}
        self.env.update(
            PSR_CLIENT_CONFIG_DIR=str(self.config_dir),
            PROBE_LOG=str(self.probe_log),
            XDG_DATA_HOME=str(home / "xdg-data"),
            XDG_CONFIG_HOME=str(home / "xdg-config"),
            **env,
        )
        if site is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])

    def __call__(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PSR_CLIENT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start a command without waiting (for a test that kills it)."""
        return subprocess.Popen(
            [str(PSR_CLIENT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def probe_calls(self) -> list[dict[str, Any]]:
        if not self.probe_log.exists():
            return []
        lines = self.probe_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.config_dir / "host.json").read_text("utf-8"))
        return data

    def stored_folder(self) -> str:
        """The copies folder the client stored for the Offline Add-on."""
        return str(self.config()["addons"]["offline"]["settings"].get("database_path", ""))

    def copies(self) -> OfflineCopies:
        """An ``OfflineCopies`` over the folder the client stored."""
        from offline_addon import AddonSettings

        return OfflineCopies(AddonSettings(database_path=self.stored_folder()))


def world_client(world: ProofWorld, home: Path) -> Cli:
    """``psr-client`` one-shot commands logged in as ``world``'s user (the password comes from
    the environment, never the command line)."""
    return Cli(
        home,
        PSR_SERVER=world.url,
        PSR_DATABASE=world.database,
        PSR_USER=world.username,
        PSR_PASSWORD=world.password,
    )


def client_with_copy(world: ProofWorld, home: Path) -> Cli:
    """:func:`world_client` with the copies folder set to ``world.folder`` and a copy made."""
    client = world_client(world, home)
    assert client("settings", "set", "offline", "database_path", str(world.folder)).returncode == 0
    created = client("offline", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    return client


def copy_files(folder: Path) -> list[str]:
    """The names of the files in ``folder`` (none when it does not exist)."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def assert_one_whole_copy(client: Cli, world: ProofWorld, other: Path) -> None:
    """Exactly one listed copy, in the stored folder, opening with all its records; the other
    folder holds no copy (listed or not)."""
    copies = client.copies()
    try:
        [info] = copies.list()
        assert info.complete
        paths = CopyPaths(copies.folder, info.copy_id)
        assert read_copy(paths, world.password).records == world.expected()
    finally:
        copies.shutdown()
    assert list_copies(other) == []
    left = [name for name in copy_files(other) if ".offline.db" in name or ".json" in name]
    assert not left, f"left in the other folder: {left}"


# -- the real add-on in a host, in this process -----------------------------------------------

DB = "demo"
RECORDS = 40


@dataclass(frozen=True)
class Site:
    """The server with database ``demo``: alice (offline right, 7 days) and bob share the
    records; ``ids`` are the records' ids."""

    server: RunningServer
    ids: list[str]
    stop: Callable[[], None]

    @property
    def url(self) -> str:
        return self.server.url


def site_records() -> list[dict[str, Any]]:
    """The :data:`RECORDS` records of a :class:`Site` (``Record 000``...)."""
    return [
        {"name": f"Record {i:03d}", "fields": {"username": f"u{i}", "password": f"secret-{i}"}}
        for i in range(RECORDS)
    ]


class HostRun:
    """One running host process (in this test process) with a shell for one user."""

    def __init__(
        self,
        config_dir: Path,
        offline_dir: Path,
        server_url: str,
        user: str,
        settings: dict[str, object] | None = None,
    ) -> None:
        self.out = io.StringIO()
        self.host = Host(config_dir, Console(self.out, rich_progress=False))
        self.host.set_setting("offline", "database_path", str(offline_dir))
        for key, value in (settings or {}).items():
            self.host.set_setting("offline", key, value)
        self.host.start()
        self.clock = HostClock()
        self.shell = Shell(
            self.host,
            LoginTarget(server_url, DB, user),
            self.clock,
            3600.0,
            io.StringIO(""),
            interactive=False,
        )
        self._seen = 0
        self._session: Session | None = None

    @property
    def copies(self) -> OfflineCopies:
        return plugin_module.addon.copies

    def login(self, password: str) -> bool:
        ok = self.shell.login(password)
        if self.shell.online is not None:
            self._session = self.shell.online.session
        return ok

    def syncs(self) -> int:
        """How many syncs of this user's copy the add-on finished in this process (its live
        status), so that a test sees a sync that said nothing."""
        assert self._session is not None, "log in online first"
        return self.copies.status(self._session).status.syncs

    def run(self, *lines: str) -> str:
        """Run shell lines; return what they (and the add-on meanwhile) printed."""
        for line in lines:
            self.shell.execute(line)
        return self.new_output()

    def new_output(self) -> str:
        text = self.out.getvalue()
        fresh, self._seen = text[self._seen :], len(text)
        return fresh

    def settle(self, timeout: float = 30.0) -> str:
        assert self.copies.wait_idle(timeout), "the add-on did not become idle"
        return self.new_output()

    def close(self) -> None:
        self.shell.logout()
        self.host.shutdown()


FAKE_CLIPBOARD_TOOL = """#!/bin/sh
# Stands in for xclip where no display exists: the clipboard is the file beside it.
case "$*" in
  *-o*) cat "$(dirname "$0")/clipboard" ;;
  *) cat > "$(dirname "$0")/clipboard" ;;
esac
"""


def fake_clipboard_tools(folder: Path) -> Path:
    """A folder with an ``xclip`` whose clipboard is the file ``folder/clipboard`` (for a
    ``Clipboard(path=...)``); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "xclip"
    tool.write_text(FAKE_CLIPBOARD_TOOL, encoding="utf-8")
    tool.chmod(0o700)
    return folder
