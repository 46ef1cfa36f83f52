"""The interactive session of ``psr-client login``: one command per line from stdin.

A prompt is shown only on a terminal, so that tests and the demo can pipe a script. Online the
user reads and saves records; offline (an add-on's copy) the session is read-only.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from hookspecs import OfflineSession, SavedRecord
from reference_host.client import HostApiError
from reference_host.commands import (
    ShellParser,
    UsageError,
    add_command_parsers,
    invocation_args,
    run_command,
)
from reference_host.host import Host
from reference_host.manage import add_manage_parsers, run_manage
from reference_host.services import services_for
from reference_host.session import LoginTarget, OnlineSession, log_in
from reference_host.timer import HostClock

log = logging.getLogger("psr.host.shell")

PASSWORD_LIKE = ("password", "passwd", "pwd", "secret", "pin", "token", "otp")
MASK = "********"
MAX_SLEEP_SECONDS = 600.0
READ_ONLY = "read-only while offline"
NOT_LOGGED_IN = "not logged in; use `login`"


@dataclass(frozen=True)
class ShownRecord:
    """A record as the shell shows it, from either the server or an offline copy."""

    record_id: str
    rev: int
    name: str
    fields: dict[str, str]


def is_password_like(field_name: str) -> bool:
    """Whether a field's value is masked unless the user asks to reveal it."""
    lowered = field_name.lower()
    return any(part in lowered for part in PASSWORD_LIKE)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``key=value`` words into a dict; :class:`UsageError` for a word without ``=``."""
    result: dict[str, str] = {}
    for position, item in enumerate(items, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key:
            # Not echoed: the word may be a password typed in the wrong place.
            raise UsageError(f"expected key=value; value {position} has no key")
        result[key] = value
    return result


def read_secret(prompt: str, env_name: str, stdin: IO[str]) -> str:
    """A secret from the environment, else a hidden prompt on a terminal, else one line of
    ``stdin`` (piped scripts)."""
    value = os.environ.get(env_name)
    if value is not None:
        return value
    if stdin.isatty():
        return getpass.getpass(prompt)
    return stdin.readline().rstrip("\n")


class Shell:
    """Reads commands line by line and runs them against the current session."""

    def __init__(self, host: Host, target: LoginTarget, clock: HostClock, timer_seconds: float,
                 stdin: IO[str], interactive: bool) -> None:
        self.host = host
        self.target = target
        self.clock = clock
        self.timer_seconds = timer_seconds
        self._lines: Iterator[str] = iter(stdin.readline, "")
        self._interactive = interactive
        self.online: OnlineSession | None = None
        self.offline: OfflineSession | None = None
        self.out: Callable[[str], None] = host.console.line

    # -- reading ------------------------------------------------------------------------------

    def _read_line(self, prompt: str) -> str | None:
        if self._interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = next(self._lines, None)
        return None if line is None else line.rstrip("\n")

    def ask_secret(self, prompt: str, env_name: str) -> str:
        """A secret from the environment, else a hidden prompt, else the next input line."""
        value = os.environ.get(env_name)
        if value is not None:
            return value
        if self._interactive:
            return getpass.getpass(prompt)
        return self._read_line("") or ""

    # -- session ------------------------------------------------------------------------------

    def login(self, password: str | None = None) -> bool:
        """Log in online, or offline when the server cannot be reached. Prints the outcome."""
        self.logout()
        if password is None:
            password = self.ask_secret(f"password for {self.target.username}: ", "PSR_PASSWORD")
        outcome = log_in(self.host, self.target, password, self.clock, self.timer_seconds)
        self.online, self.offline = outcome.online, outcome.offline
        if outcome.message:
            self.out(outcome.message)
        if self.online is not None:
            self.online.start()
        return self.online is not None or self.offline is not None

    def logout(self) -> None:
        """End the current session, if any."""
        online, offline = self.online, self.offline
        self.online = self.offline = None
        if online is not None:
            online.close()
            self.out("logged out")
        if offline is not None:
            try:
                offline.close()
            except Exception as exc:
                log.error("closing the offline session failed: %s", type(exc).__name__)
            self.out("offline session closed")

    # -- loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run commands until ``quit`` or end of input; then log out."""
        try:
            while True:
                line = self._read_line("psr> ")
                if line is None or not self.execute(line):
                    break
        finally:
            self.logout()
        return 0

    def execute(self, line: str) -> bool:
        """Run one command line; ``False`` when the user asked to quit."""
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return True
        word, _, rest = stripped.partition(" ")
        if word == "say":
            self.out(rest.strip())
            return True
        if word in ("quit", "exit"):
            return False
        try:
            ns = self._parser().parse_args(shlex.split(stripped))
            self._dispatch(ns)
        except UsageError as exc:
            if str(exc):
                self.out(str(exc))
        except ValueError as exc:  # shlex: unbalanced quotes
            self.out(f"error: {exc}")
        except HostApiError as exc:
            self.out(f"error: {exc}")
        except Exception as exc:  # one failing command must not end the session
            log.error("command %r failed: %s", word, type(exc).__name__, exc_info=True)
            self.out(f"error: {word} failed: {exc or type(exc).__name__}")
        return True

    def _parser(self) -> ShellParser:
        parser = ShellParser(prog="psr", add_help=False)
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                    parser_class=ShellParser)
        sub.add_parser("help")
        sub.add_parser("list")
        sub.add_parser("search").add_argument("text", nargs="+")
        show = sub.add_parser("show")
        show.add_argument("record_id")
        show.add_argument("--reveal", action="store_true")
        new = sub.add_parser("new")
        new.add_argument("name")
        new.add_argument("fields", nargs="*", metavar="key=value")
        edit = sub.add_parser("edit")
        edit.add_argument("record_id")
        edit.add_argument("fields", nargs="*", metavar="key=value")
        edit.add_argument("--name", dest="new_name")
        sub.add_parser("passwd")
        sub.add_parser("tick").add_argument("minutes", nargs="?", type=float, default=0.0)
        sub.add_parser("sleep").add_argument("seconds", type=float)
        sub.add_parser("login")
        sub.add_parser("logout")
        add_manage_parsers(sub)
        add_command_parsers(sub, self.host.commands(), parser_class=ShellParser)
        return parser

    def _dispatch(self, ns: argparse.Namespace) -> None:
        command: str = ns.command
        if command in ("addons", "settings"):
            before = set(self.host.hooks.registered())
            run_manage(self.host, ns, self.out)
            if self.online is not None:
                # An add-on switched on during an online session learns of it as at a login.
                for addon_id in sorted(set(self.host.hooks.registered()) - before):
                    self.host.hooks.call_one(addon_id, "on_login", session=self.online.session)
        elif getattr(ns, "contributed", None) is not None:
            addon_id, contributed = ns.contributed
            session = self.online.session if self.online else None
            services = services_for(addon_id, self.host.console, self.host.settings)
            code = run_command(addon_id, contributed, invocation_args(ns, contributed),
                               session, services, self.out)
            if code:
                self.out(f"({contributed.group} {contributed.name} exited with {code})")
        else:
            getattr(self, f"_cmd_{command}")(ns)

    # -- commands -----------------------------------------------------------------------------

    def _cmd_help(self, _: argparse.Namespace) -> None:
        self.out("commands: list | search TEXT | show ID [--reveal] | new NAME key=value... | "
                 "edit ID key=value... [--name NAME] | passwd | tick [MINUTES] | "
                 "sleep SECONDS | say TEXT | addons ... | settings ... | login | logout | quit")
        for _addon, command in self.host.commands():
            self.out(f"  {command.group} {command.name}: {command.help}")

    def _records(self, query: str | None = None) -> list[ShownRecord] | None:
        if self.online is not None:
            database = self.online.session.database
            return [ShownRecord(r.record_id, r.rev, r.name, dict(r.fields))
                    for r in self.online.client.list_records(database, query or "")]
        if self.offline is not None:
            views = (self.offline.search(query) if query else self.offline.list_records())
            return [ShownRecord(v.record_id, v.rev, v.name, dict(v.fields)) for v in views]
        self.out(NOT_LOGGED_IN)
        return None

    def _print_list(self, records: list[ShownRecord] | None) -> None:
        if records is None:
            return
        for record in records:
            self.out(f"{record.record_id}\trev {record.rev}\t{record.name}")
        self.out(f"({len(records)} record{'s' if len(records) != 1 else ''})")

    def _cmd_list(self, _: argparse.Namespace) -> None:
        self._print_list(self._records())

    def _cmd_search(self, ns: argparse.Namespace) -> None:
        self._print_list(self._records(" ".join(ns.text)))

    def _fetch(self, record_id: str) -> ShownRecord | None:
        if self.online is not None:
            r = self.online.client.get_record(self.online.session.database, record_id)
            return ShownRecord(r.record_id, r.rev, r.name, dict(r.fields))
        if self.offline is not None:
            view = self.offline.get_record(record_id)
            if view is None:
                return None
            return ShownRecord(view.record_id, view.rev, view.name, dict(view.fields))
        self.out(NOT_LOGGED_IN)
        return None

    def _cmd_show(self, ns: argparse.Namespace) -> None:
        if self.online is None and self.offline is None:
            self.out(NOT_LOGGED_IN)
            return
        try:
            record = self._fetch(ns.record_id)
        except HostApiError as exc:
            if exc.code != "unknown_record":
                raise
            record = None
        if record is None:
            self.out(f"no record {ns.record_id!r}")
            return
        self.out(f"{record.name}  (id {record.record_id}, rev {record.rev})")
        for key, value in sorted(record.fields.items()):
            shown = MASK if is_password_like(key) and not ns.reveal and value else value
            self.out(f"  {key}: {shown}")

    def _writable(self) -> OnlineSession | None:
        if self.offline is not None:
            self.out(READ_ONLY)
            return None
        if self.online is None:
            self.out(NOT_LOGGED_IN)
        return self.online

    def _saved(self, online: OnlineSession, record_id: str) -> None:
        session = online.session
        saved = SavedRecord(record_id=record_id, database=session.database,
                            saved_by=session.user_id)
        self.host.hooks.call("on_record_saved", session=session, record=saved)

    def _cmd_new(self, ns: argparse.Namespace) -> None:
        online = self._writable()
        if online is None:
            return
        fields = parse_assignments(ns.fields)
        record = online.client.create_record(online.session.database, ns.name, fields)
        self.out(f"created {record.record_id} (rev {record.rev})")
        self._saved(online, record.record_id)

    def _cmd_edit(self, ns: argparse.Namespace) -> None:
        online = self._writable()
        if online is None:
            return
        changes = parse_assignments(ns.fields)
        database = online.session.database
        current = online.client.get_record(database, ns.record_id)
        fields = {**current.fields, **changes}
        try:
            record = online.client.update_record(database, current.record_id, current.rev,
                                                 ns.new_name or current.name, fields)
        except HostApiError as exc:
            if exc.code == "stale_revision":
                self.out("the record was changed by someone else meanwhile; nothing saved. "
                         "Show it again and repeat your change.")
                return
            raise
        self.out(f"saved {record.record_id} (rev {record.rev})")
        self._saved(online, record.record_id)

    def _cmd_passwd(self, _: argparse.Namespace) -> None:
        online = self._writable()
        if online is None:
            return
        old = self.ask_secret("current password: ", "PSR_PASSWORD")
        new = self.ask_secret("new password: ", "PSR_NEW_PASSWORD")
        if not new:
            self.out("the new password must not be empty; nothing changed")
            return
        online.client.change_password(old, new)
        session = online.session
        online.replace_session(dataclasses.replace(session, password=new))
        self.out("password changed")
        self.host.hooks.call("on_password_changed", session=online.session, old_password=old)

    def _cmd_tick(self, ns: argparse.Namespace) -> None:
        if self.online is None:
            self.out("the timer runs only while logged in online")
            return
        self.clock.advance(max(ns.minutes, 0.0) * 60.0)
        if not self.online.timer.tick_now():
            self.out("the timer tick did not finish in time")

    def _cmd_sleep(self, ns: argparse.Namespace) -> None:
        time.sleep(min(max(ns.seconds, 0.0), MAX_SLEEP_SECONDS))

    def _cmd_login(self, _: argparse.Namespace) -> None:
        self.login()

    def _cmd_logout(self, _: argparse.Namespace) -> None:
        if self.online is None and self.offline is None:
            self.out("not logged in")
        self.logout()
