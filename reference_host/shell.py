"""The interactive session of ``psr-client login``: one command per line.

On a terminal the line is read with prompt_toolkit (editing, history, completion, a status
line: ``terminal.py``); piped scripts (tests, the demo) are read line by line without a prompt,
and their output is deterministic. Online the user reads and saves records; offline (an
add-on's copy) the session is read-only. When the server goes away during an online session,
the shell moves to the offline copy with the same credentials, without a new login.

Ctrl-C on a terminal stops the running command, never the shell; Ctrl-D (or ``quit``) ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from hookspecs import Account, OfflineSession, SavedRecord, WritableOfflineSession
from reference_host.client import LOGIN_TIMEOUT, HostApiError, ServerUnreachable
from reference_host.clipboard import Clipboard, ClipboardUnavailable
from reference_host.commands import (
    ShellParser,
    UsageError,
    add_command_parsers,
    invocation_args,
    run_command,
)
from reference_host.host import Host
from reference_host.manage import add_manage_parsers, run_manage, switched_off_text
from reference_host.records import (
    MASK,
    ShownRecord,
    count_line,
    describe_candidates,
    is_password_like,
    pick_record,
)
from reference_host.session import (
    LoginOutcome,
    LoginTarget,
    OnlineSession,
    continue_offline,
    log_in,
)
from reference_host.sources import OfflineRecords, OnlineRecords, RecordSource
from reference_host.timer import HostClock

if TYPE_CHECKING:
    from reference_host.terminal import PromptScreen

__all__ = ["Shell", "ShownRecord", "is_password_like", "parse_assignments", "read_secret"]

log = logging.getLogger("psr.host.shell")

MAX_SLEEP_SECONDS = 600.0
READ_ONLY = "read-only while offline"
NOT_LOGGED_IN = "not logged in; use `login`"
INTERRUPTED = "stopped (Ctrl-C)"
DEFAULT_COPY_FIELD = "password"
SIMPLE_COMMANDS = (
    "help",
    "list",
    "search",
    "show",
    "copy",
    "new",
    "edit",
    "delete",
    "passwd",
    "tick",
    "sleep",
    "say",
    "login",
    "logout",
    "quit",
    "exit",
)
READ_COMMANDS = frozenset({"list", "search", "show", "copy"})
"""Commands that the offline copy answers as well: run again from it after the server left."""


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


def _field_of(record: ShownRecord, name: str) -> str | None:
    """The field ``name`` of ``record``: exactly so named, else the one so named ignoring case."""
    if name in record.fields:
        return name
    return next((k for k in record.fields if k.casefold() == name.casefold()), None)


class Shell:
    """Reads commands line by line and runs them against the current session.

    ``interactive``: a person types (prompts, hidden password input, Ctrl-C stops a command).
    ``line_editing``: use prompt_toolkit (both stdin and stdout are a terminal).
    """

    def __init__(
        self,
        host: Host,
        target: LoginTarget,
        clock: HostClock,
        timer_seconds: float,
        stdin: IO[str],
        interactive: bool,
        *,
        line_editing: bool = False,
        clipboard: Clipboard | None = None,
        login_timeout: tuple[float, float] = LOGIN_TIMEOUT,
    ) -> None:
        self.host = host
        self.target = target
        self.clock = clock
        self.timer_seconds = timer_seconds
        self._lines: Iterator[str] = iter(stdin.readline, "")
        self._interactive = interactive
        self._line_editing = interactive and line_editing
        self._screen: PromptScreen | None = None
        self.clipboard = clipboard or Clipboard()
        host.clipboard = self.clipboard
        self._login_timeout = login_timeout
        self.online: OnlineSession | None = None
        self.offline: OfflineSession | None = None
        self.out: Callable[[str], None] = host.console.line
        host.enter_shell()

    # -- reading ------------------------------------------------------------------------------

    def _read_line(self, prompt: str) -> str | None:
        if self._screen is not None:
            return self._screen.read_line(prompt)
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
        if self._screen is not None:
            return self._screen.read_secret(prompt)
        if self._interactive:
            return getpass.getpass(prompt)
        return self._read_line("") or ""

    def _notice(self, text: str) -> None:
        """Tell that the shell waits (a slow login). Piped scripts get it on stderr, so that
        their output stays the same however fast the server answers."""
        if self._interactive:
            self.out(text)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    @contextlib.contextmanager
    def _terminal(self) -> Iterator[None]:
        if not self._line_editing:
            yield
            return
        from reference_host.terminal import PromptScreen, history_in

        self._screen = PromptScreen(
            self.host.console,
            history_in(self.host.config_dir),
            self.completion_words,
            self.session_state,
        )
        try:
            with self._screen.active():
                yield
        finally:
            self._screen = None

    # -- session ------------------------------------------------------------------------------

    def main(self) -> int:
        """``psr-client login``: log in, run commands until the end; the exit code."""
        with self._terminal():
            if not self.login():
                return 1
            return self.run()

    def login(self, password: str | None = None) -> bool:
        """Log in online, or offline when the server cannot be reached. Prints the outcome."""
        self.logout()
        if password is None:
            password = self.ask_secret(f"password for {self.target.username}: ", "PSR_PASSWORD")
        outcome = log_in(
            self.host,
            self.target,
            password,
            self.clock,
            self.timer_seconds,
            notice=self._notice,
            timeout=self._login_timeout,
        )
        self._take(outcome)
        if self.online is not None:
            self.online.start()
        return self.online is not None or self.offline is not None

    def _take(self, outcome: LoginOutcome) -> None:
        self.online, self.offline = outcome.online, outcome.offline
        if outcome.message:
            self.out(outcome.message)

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

    def account(self) -> Account:
        """The account the shell is set up for (as the server named the user, when online)."""
        if self.online is not None:
            return self.online.account
        return self.target.account(self.host.config.client_id)

    def session_state(self) -> str:
        """The start of the status line: who is logged in where, and how."""
        who = f"{self.target.username}@{self.target.database}"
        if self.online is not None:
            return f"online: {who}"
        if self.offline is not None:
            return f"offline ({self._offline_mode()}): {who}"
        return "not logged in"

    def _offline_mode(self) -> str:
        session = self.offline
        if isinstance(session, WritableOfflineSession):
            try:
                if session.read_only_reason is None:
                    return "editing"
            except Exception:  # the status line must never fail
                log.debug("read_only_reason failed", exc_info=True)
        return "read-only"

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
            self.clipboard.clear_now()
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
        if not self._interactive:
            self._execute(stripped, word)
            return True
        try:
            self._execute(stripped, word)
        except KeyboardInterrupt:
            # The command stops; the user stays in the shell (a contributed command's
            # handler cancels its own work on its side).
            self.out(INTERRUPTED)
        return True

    def _execute(self, stripped: str, word: str) -> None:
        try:
            if not self._explain_switched_off(word):
                self._dispatch(self._parser().parse_args(shlex.split(stripped)))
        except UsageError as exc:
            if str(exc):
                self.out(str(exc))
        except ValueError as exc:  # shlex: unbalanced quotes
            self.out(f"error: {exc}")
        except ServerUnreachable as exc:
            if self._continue_offline(exc) and word in READ_COMMANDS:
                self._execute(stripped, word)
        except HostApiError as exc:
            self.out(f"error: {exc}")
        except Exception as exc:  # one failing command must not end the session
            log.error("command %r failed: %s", word, type(exc).__name__, exc_info=True)
            self.out(f"error: {word} failed: {exc or type(exc).__name__}")

    def _continue_offline(self, exc: ServerUnreachable) -> bool:
        """The server went away: go on from the offline copy if there is one (the login's
        credentials open it); ``True`` when the shell is offline now."""
        if self.online is None:
            self.out(f"error: {exc}")
            return False
        outcome = continue_offline(self.host, self.target, self.online)
        if outcome.offline is None:
            self.out(f"error: {exc}")
            return False
        self._take(outcome)
        return True

    def _explain_switched_off(self, word: str) -> bool:
        """Say so when ``word`` is the command group of an add-on that is switched off."""
        if word in SIMPLE_COMMANDS or word in ("addons", "settings"):
            return False
        if any(command.group == word for _, command in self.host.commands()):
            return False
        text = switched_off_text(self.host, word)
        if text is None:
            return False
        self.out(text)
        return True

    def completion_words(self) -> dict[str, Any]:
        """The command words the prompt completes: commands, their actions, add-on ids."""
        words: dict[str, Any] = dict.fromkeys(SIMPLE_COMMANDS)
        ids = {status.info.addon_id: None for status in self.host.statuses()}
        words["addons"] = {"list": None, "enable": ids, "disable": ids}
        words["settings"] = {"show": ids, "set": ids}
        for _addon_id, command in self.host.commands():
            words.setdefault(command.group, {})[command.name] = None
        return words

    def _parser(self) -> ShellParser:
        parser = ShellParser(prog="psr", add_help=False)
        sub = parser.add_subparsers(
            dest="command", metavar="COMMAND", required=True, parser_class=ShellParser
        )
        sub.add_parser("help")
        sub.add_parser("list")
        sub.add_parser("search").add_argument("text", nargs="+")
        show = sub.add_parser("show")
        show.add_argument("name", metavar="NAME", nargs="+")  # a name may have spaces
        show.add_argument("--reveal", action="store_true")
        copy = sub.add_parser("copy")
        copy.add_argument("name", metavar="NAME")
        copy.add_argument("field", metavar="FIELD", nargs="?", default=DEFAULT_COPY_FIELD)
        new = sub.add_parser("new")
        new.add_argument("name")
        new.add_argument("fields", nargs="*", metavar="key=value")
        edit = sub.add_parser("edit")
        edit.add_argument("record", metavar="NAME")
        edit.add_argument("fields", nargs="*", metavar="key=value")
        edit.add_argument("--name", dest="new_name")
        delete = sub.add_parser("delete")
        delete.add_argument("record", metavar="NAME")
        delete.add_argument("--yes", action="store_true")
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
            # The exit code is not shown: the handler has said what happened.
            run_command(
                addon_id,
                contributed,
                invocation_args(ns, contributed),
                session,
                self.host.services_for(addon_id),
                self.out,
                account=self.account(),
            )
        else:
            getattr(self, f"_cmd_{command}")(ns)

    # -- commands -----------------------------------------------------------------------------

    def _cmd_help(self, _: argparse.Namespace) -> None:
        self.out(
            "commands: list | search TEXT | show NAME [--reveal] | copy NAME [FIELD] | "
            "new NAME key=value... | edit NAME key=value... [--name NEW] | "
            "delete NAME [--yes] | passwd | "
            "tick [MINUTES] | sleep SECONDS | say TEXT | addons ... | settings ... | "
            "login | logout | quit"
        )
        self.out("  NAME: a record's id, its name, or a unique part of the name")
        for _addon, command in self.host.commands():
            self.out(f"  {command.group} {command.name}: {command.help}")

    def _source(self) -> RecordSource | None:
        if self.online is not None:
            return OnlineRecords(self.online.client, self.online.session.database)
        if self.offline is not None:
            return OfflineRecords(self.offline)
        self.out(NOT_LOGGED_IN)
        return None

    def _print_list(
        self, records: list[ShownRecord], total: int | None = None, capped: bool = False
    ) -> None:
        for record in records:
            self.out(f"{record.record_id}\trev {record.rev}\t{record.name}")
        self.out(count_line(len(records), total, capped))

    def _cmd_list(self, _: argparse.Namespace) -> None:
        source = self._source()
        if source is not None:
            self._print_list(source.all())

    def _cmd_search(self, ns: argparse.Namespace) -> None:
        source = self._source()
        if source is not None:
            found = source.search(" ".join(ns.text))
            self._print_list(found.records, found.total, found.capped)
            if found.provisional:
                self.out(
                    "(the search index is still being built, for a few seconds after the "
                    "first sync: words may also have matched inside other words)"
                )

    def _resolve(self, typed: str) -> ShownRecord | None:
        """The record ``typed`` names (id, name, unique part of the name); else says why not."""
        source = self._source()
        if source is None:
            return None
        record = source.by_id(typed)
        if record is not None:
            return record
        pick = pick_record(typed, source.named(typed))
        if pick.record is not None:
            return pick.record
        if pick.candidates:
            for line in describe_candidates(typed, pick.candidates):
                self.out(line)
        else:
            self.out(f"no record {typed!r}")
        return None

    def _cmd_show(self, ns: argparse.Namespace) -> None:
        found = self._resolve(" ".join(ns.name))
        source = None if found is None else self._source()
        if found is None or source is None:
            return
        record = source.shown(found)  # read to be shown (an offline copy notes it)
        if record is None:
            self.out(f"no record {found.record_id!r}")
            return
        self.out(f"{record.name}  (id {record.record_id}, rev {record.rev})")
        for key, value in sorted(record.fields.items()):
            hidden = is_password_like(key) and bool(value)
            if hidden and ns.reveal:
                value = source.reveal(record, key)
            self.out(f"  {key}: {MASK if hidden and not ns.reveal else value}")

    def _cmd_copy(self, ns: argparse.Namespace) -> None:
        record = self._resolve(ns.name)
        if record is None:
            return
        key = _field_of(record, ns.field)
        if key is None:
            fields = ", ".join(sorted(record.fields)) or "none"
            self.out(f"{record.name!r} has no field {ns.field!r} (its fields: {fields})")
            return
        value = record.fields[key]
        if not value:
            self.out(f"the {key} of {record.name!r} is empty; nothing copied")
            return
        try:
            self.clipboard.copy(value)
        except ClipboardUnavailable as exc:
            self.out(f"{exc}; use `show {shlex.quote(ns.name)} --reveal` to see the value")
            return
        source = self._source()
        if source is not None:
            source.copied(record, key)
        self.out(
            f"copied the {key} of {record.name!r} to the clipboard; it is cleared in "
            f"{self.clipboard.clear_after:g} s"
        )

    def _writable(self) -> OnlineSession | None:
        if self.offline is not None:
            self.out(READ_ONLY)
            return None
        if self.online is None:
            self.out(NOT_LOGGED_IN)
        return self.online

    def _offline_writable(self) -> WritableOfflineSession | None:
        """The offline session when it may write now; else says why not (the add-on's own
        sentence for a session of contract 1.2, :data:`READ_ONLY` for an older one)."""
        session = self.offline
        if not isinstance(session, WritableOfflineSession):
            self.out(READ_ONLY)
            return None
        try:
            refusal = session.read_only_reason
        except Exception as exc:  # an add-on's failure must not end the command badly
            log.error("read_only_reason of the offline session failed: %s", type(exc).__name__)
            refusal = READ_ONLY
        if refusal is not None:
            self.out(refusal)
            return None
        return session

    def _offline_write(self, write: Callable[[], Any]) -> Any | None:
        """Run one write of the offline session; the add-on's refusal is told as it says it
        (its sentence says what to do) and ``None`` returned."""
        try:
            return write()
        except Exception as exc:
            log.info("the offline write was refused: %s", type(exc).__name__)
            self.out(f"error: {exc or type(exc).__name__}")
            return None

    def _saved(self, online: OnlineSession, record_id: str) -> None:
        session = online.session
        saved = SavedRecord(
            record_id=record_id, database=session.database, saved_by=session.user_id
        )
        self.host.hooks.call("on_record_saved", session=session, record=saved)

    def _cmd_new(self, ns: argparse.Namespace) -> None:
        if self.offline is not None:
            self._new_offline(ns)
            return
        online = self._writable()
        if online is None:
            return
        fields = parse_assignments(ns.fields)
        record = online.client.create_record(online.session.database, ns.name, fields)
        self.out(f"created {record.record_id} (rev {record.rev})")
        self._saved(online, record.record_id)

    def _new_offline(self, ns: argparse.Namespace) -> None:
        session = self._offline_writable()
        if session is None:
            return
        fields = parse_assignments(ns.fields)
        made = self._offline_write(lambda: session.create(ns.name, fields))
        if made is not None:
            self.out(f"created {made} offline; it is sent to the server at your next online login")

    def _cmd_edit(self, ns: argparse.Namespace) -> None:
        if self.offline is not None:
            self._edit_offline(ns)
            return
        online = self._writable()
        if online is None:
            return
        changes = parse_assignments(ns.fields)
        found = self._resolve(ns.record)
        if found is None:
            return
        database = online.session.database
        # Read again by id: the list the name was found in may be older than the record.
        current = online.client.get_record(database, found.record_id)
        fields = {**current.fields, **changes}
        try:
            record = online.client.update_record(
                database, current.record_id, current.rev, ns.new_name or current.name, fields
            )
        except HostApiError as exc:
            if exc.code == "stale_revision":
                self.out(
                    "the record was changed by someone else meanwhile; nothing saved. "
                    "Show it again and repeat your change."
                )
                return
            raise
        self.out(f"saved {record.record_id} (rev {record.rev})")
        self._saved(online, record.record_id)

    def _edit_offline(self, ns: argparse.Namespace) -> None:
        session = self._offline_writable()
        if session is None:
            return
        changes = parse_assignments(ns.fields)
        found = self._resolve(ns.record)
        if found is None:
            return
        # Only the typed fields: the others stay as the copy holds them when it is written.
        shown = self._offline_write(
            lambda: session.edit_fields(found.record_id, changes, name=ns.new_name or None)
        )
        if shown is not None:
            self.out(
                f"saved {found.record_id} offline; it is sent to the server at your next "
                "online login"
            )

    def _cmd_delete(self, ns: argparse.Namespace) -> None:
        if self.offline is not None:
            if self._offline_writable() is None:
                return
        elif self._writable() is None:
            return
        found = self._resolve(ns.record)
        if found is None or not self._confirmed(ns, f"delete {found.name!r}? [y/N] "):
            return
        if self.offline is not None:
            self._delete_offline(found)
            return
        online = self._writable()
        if online is None:
            return
        try:
            online.client.delete_record(online.session.database, found.record_id, found.rev)
        except HostApiError as exc:
            if exc.code == "revision_moved":
                self.out(
                    "the record was changed by someone else meanwhile; nothing deleted. "
                    "Show it again and decide."
                )
                return
            raise
        self.out(f"deleted {found.record_id}")
        self._saved(online, found.record_id)

    def _delete_offline(self, found: ShownRecord) -> None:
        session = self._offline_writable()
        if session is None:
            return

        def delete() -> bool:
            session.delete(found.record_id)
            return True

        if self._offline_write(delete):
            self.out(
                f"deleted {found.record_id} offline; the delete is sent to the server at your "
                "next online login"
            )

    def _confirmed(self, ns: argparse.Namespace, question: str) -> bool:
        """``--yes``, or the user answers yes (Ctrl-C or anything else: no, nothing done)."""
        if ns.yes:
            return True
        answer = self._read_line(question)
        if answer is None or answer.strip().casefold() not in ("y", "yes"):
            self.out("nothing deleted")
            return False
        return True

    def _cmd_passwd(self, _: argparse.Namespace) -> None:
        online = self._writable()
        if online is None:
            return
        old = self.ask_secret("current password: ", "PSR_PASSWORD")
        new = self.ask_secret("new password: ", "PSR_NEW_PASSWORD")
        if not new:
            self.out("the new password must not be empty; nothing changed")
            return
        again = self.ask_secret("new password again: ", "PSR_NEW_PASSWORD")
        if again != new:
            self.out("the two new passwords differ; nothing changed")
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
