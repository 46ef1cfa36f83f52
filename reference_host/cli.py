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

from hookspecs import HostCommand
from reference_host.commands import add_command_parsers, invocation_args, run_command
from reference_host.config import ConfigError, default_config_dir
from reference_host.host import Host
from reference_host.manage import add_manage_parsers, run_manage
from reference_host.services import Console, services_for
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
        prog="psr-client", add_help=add_help,
        description="Reference host client of the Password Safe and Repository server.")
    parser.add_argument("--config-dir", type=Path, help="settings folder "
                        "(default: $PSR_CLIENT_CONFIG_DIR or the user config folder)")
    parser.add_argument("--server", help="server URL (default: $PSR_SERVER)")
    parser.add_argument("--database", help="database name (default: $PSR_DATABASE)")
    parser.add_argument("--user", help="user name (default: $PSR_USER)")
    parser.add_argument("--tick-seconds", type=_positive,
                        help="seconds between timer ticks while logged in (default: settings)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug); the log goes to stderr")
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else \
        logging.DEBUG
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, level=level,
                            format="%(levelname)s %(name)s: %(message)s")
    root.setLevel(level)


def _target(ns: argparse.Namespace) -> LoginTarget | str:
    """The login target from options and environment, or what is missing."""
    server = ns.server or os.environ.get("PSR_SERVER")
    database = ns.database or os.environ.get("PSR_DATABASE")
    user = ns.user or os.environ.get("PSR_USER")
    missing = [f"{opt} ({env})" for opt, env, value in (
        ("--server", "PSR_SERVER", server), ("--database", "PSR_DATABASE", database),
        ("--user", "PSR_USER", user)) if not value]
    if missing or not (server and database and user):
        return "cannot log in: give " + ", ".join(missing)
    return LoginTarget(server_url=server, database=database, username=user)


def _run(host: Host, ns: argparse.Namespace) -> int:
    out = host.console.line
    if ns.command in ("addons", "settings"):
        return run_manage(host, ns, out)
    timer_seconds = ns.tick_seconds or host.config.timer_seconds
    contributed: tuple[str, HostCommand] | None = getattr(ns, "contributed", None)
    if contributed is not None and not contributed[1].needs_session:
        host.start()
        addon_id, command = contributed
        return run_command(addon_id, command, invocation_args(ns, command), None,
                           services_for(addon_id, host.console, host.settings), out)
    target = _target(ns)
    if isinstance(target, str):
        out(f"error: {target}")
        return 2
    host.start()
    if ns.command == "login":
        shell = Shell(host, target, HostClock(), timer_seconds, sys.stdin, sys.stdin.isatty())
        if not shell.login():
            return 1
        return shell.run()
    assert contributed is not None
    addon_id, command = contributed
    password = read_secret(f"password for {target.username}: ", "PSR_PASSWORD", sys.stdin)
    outcome = log_in(host, target, password, HostClock(), timer_seconds, offline_fallback=False)
    if outcome.online is None:
        out(f"error: {outcome.message}")
        return 1
    outcome.online.start()
    try:
        return run_command(addon_id, command, invocation_args(ns, command),
                           outcome.online.session,
                           services_for(addon_id, host.console, host.settings), out)
    finally:
        outcome.online.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``psr-client``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    pre, _ = _base_parser(add_help=False).parse_known_args(args)
    _setup_logging(pre.verbose)
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
        sub.add_parser("login", help="log in and read commands (online, or offline from an "
                                     "add-on's copy when the server cannot be reached)")
        add_command_parsers(sub, host.commands())
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
