"""``psr-client``: the reference host's command line.

The add-ons are discovered before the command line is parsed, because their commands
(``register_commands``) become sub-commands: ``psr-client offline sync``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hookspecs import Account, HostCommand
from reference_host.commands import add_command_parsers, invocation_args, run_command
from reference_host.config import ConfigError, default_config_dir
from reference_host.host import Host
from reference_host.logs import setup_logging
from reference_host.manage import add_manage_parsers, run_manage, switched_off_text
from reference_host.services import Console
from reference_host.session import LoginTarget, log_in
from reference_host.shell import Shell, read_secret
from reference_host.timer import HostClock

log = logging.getLogger("psr.host")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _base_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psr-client",
        add_help=add_help,
        description="Reference host client of the Password Safe and Repository server.",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        help="settings folder (default: $PSR_CLIENT_CONFIG_DIR or the user config folder)",
    )
    parser.add_argument("--server", help="server URL (default: $PSR_SERVER)")
    parser.add_argument("--database", help="database name (default: $PSR_DATABASE)")
    parser.add_argument("--user", help="user name (default: $PSR_USER)")
    parser.add_argument(
        "--tick-seconds",
        type=_positive,
        help="seconds between timer ticks while logged in (default: settings)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show more of the log on stderr (default: the host's warnings "
        "and all errors; -v: info, -vv: debug)",
    )
    return parser


def _command_word(args: Sequence[str]) -> str | None:
    """The command word of a command line (the first word after the global options)."""
    pre = _base_parser(add_help=False)
    pre.add_argument("command", nargs="?")
    pre.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        ns, _ = pre.parse_known_args(list(args))
    except SystemExit:  # a bad global option: the real parser says what is wrong
        return None
    return ns.command if isinstance(ns.command, str) else None


def _stderr_notice(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _target(ns: argparse.Namespace) -> LoginTarget | str:
    """The login target from options and environment, or what is missing."""
    server = ns.server or os.environ.get("PSR_SERVER")
    database = ns.database or os.environ.get("PSR_DATABASE")
    user = ns.user or os.environ.get("PSR_USER")
    missing = [
        f"{opt} ({env})"
        for opt, env, value in (
            ("--server", "PSR_SERVER", server),
            ("--database", "PSR_DATABASE", database),
            ("--user", "PSR_USER", user),
        )
        if not value
    ]
    if missing or not (server and database and user):
        return "cannot log in: give " + ", ".join(missing)
    return LoginTarget(server_url=server, database=database, username=user)


def _run(host: Host, ns: argparse.Namespace) -> int:
    out = host.console.line
    if ns.command in ("addons", "settings"):
        return run_manage(host, ns, out)
    timer_seconds = ns.tick_seconds or host.config.timer_seconds
    contributed: tuple[str, HostCommand] | None = getattr(ns, "contributed", None)
    target = _target(ns)
    if contributed is not None and not contributed[1].needs_session:
        host.start()
        addon_id, command = contributed
        account = None if isinstance(target, str) else target.account(host.config.client_id)
        return run_command(
            addon_id,
            command,
            invocation_args(ns, command),
            None,
            host.services_for(addon_id),
            out,
            account=account,
        )
    if isinstance(target, str):
        out(f"error: {target}")
        return 2
    host.start()
    if ns.command == "login":
        interactive = sys.stdin.isatty()
        shell = Shell(
            host,
            target,
            HostClock(),
            timer_seconds,
            sys.stdin,
            interactive,
            line_editing=interactive and sys.stdout.isatty(),
        )
        return shell.main()
    assert contributed is not None
    return _run_online(host, ns, target, contributed, timer_seconds)


def _run_online(
    host: Host,
    ns: argparse.Namespace,
    target: LoginTarget,
    contributed: tuple[str, HostCommand],
    timer_seconds: float,
) -> int:
    """A contributed command that needs a session: log in, run it, log out; its exit code is
    the process's."""
    out = host.console.line
    addon_id, command = contributed
    password = read_secret(f"password for {target.username}: ", "PSR_PASSWORD", sys.stdin)
    outcome = log_in(
        host,
        target,
        password,
        HostClock(),
        timer_seconds,
        offline_fallback=False,
        notice=_stderr_notice,
    )
    if outcome.online is None:
        out(f"error: {outcome.message}")
        return 1
    outcome.online.start()
    account: Account = outcome.online.account
    try:
        return run_command(
            addon_id,
            command,
            invocation_args(ns, command),
            outcome.online.session,
            host.services_for(addon_id),
            out,
            account=account,
        )
    finally:
        outcome.online.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``psr-client``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    pre, _ = _base_parser(add_help=False).parse_known_args(args)
    setup_logging(pre.verbose)
    try:
        host = Host(pre.config_dir or default_config_dir(), Console())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        host.load()
        parser = _base_parser()
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
        add_manage_parsers(sub)
        sub.add_parser(
            "login",
            help="log in and read commands (online, or offline from an "
            "add-on's copy when the server cannot be reached)",
        )
        add_command_parsers(sub, host.commands())
        word = _command_word(args)
        explained = None if word is None or word in sub.choices else switched_off_text(host, word)
        if explained is not None:
            print(f"psr-client: error: {explained}", file=sys.stderr)
            return 2
        try:
            ns = parser.parse_args(args)
        except SystemExit as exc:
            return int(exc.code or 0)
        return _run(host, ns)
    except ConfigError as exc:
        host.console.line(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        host.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
