"""Commands contributed by add-ons (``register_commands``) as argparse sub-commands."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from hookspecs import Account, CommandInvocation, HostCommand, HostServices, Session

log = logging.getLogger("psr.host.commands")


class UsageError(Exception):
    """A command line did not parse; the message says what is wrong (usage included)."""


class ShellParser(argparse.ArgumentParser):
    """An argparse parser that raises :class:`UsageError` instead of ending the process, for
    the interactive session."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # -h/--help printed its text already; stop parsing without ending the shell.
        raise UsageError(message or "")


def _dest(name: str) -> str:
    return "cmd_" + name.replace("-", "_")


def add_command_parsers(
    subparsers: Any,
    commands: Sequence[tuple[str, HostCommand]],
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> None:
    """Add ``GROUP NAME [args]`` parsers for ``commands`` (add-on id, command) to
    ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    groups: dict[str, Any] = {}
    for addon_id, command in commands:
        if command.group not in groups:
            group = subparsers.add_parser(command.group, help=f"commands of add-on {addon_id}")
            groups[command.group] = group.add_subparsers(
                dest="group_command", metavar="COMMAND", required=True, parser_class=parser_class
            )
        sub = groups[command.group].add_parser(
            command.name, help=command.help, description=command.help
        )
        for argument in command.arguments:
            if argument.kind == "positional":
                sub.add_argument(
                    _dest(argument.name),
                    metavar=argument.name.upper(),
                    help=argument.help,
                    default=argument.default,
                    nargs=None if argument.required else "?",
                )
            elif argument.kind == "flag":
                sub.add_argument(
                    f"--{argument.name}",
                    dest=_dest(argument.name),
                    action="store_true",
                    help=argument.help,
                )
            else:
                sub.add_argument(
                    f"--{argument.name}",
                    dest=_dest(argument.name),
                    required=argument.required,
                    default=argument.default,
                    help=argument.help,
                )
        sub.set_defaults(contributed=(addon_id, command))


def invocation_args(
    namespace: argparse.Namespace, command: HostCommand
) -> dict[str, str | bool | None]:
    """The parsed values of ``command``'s arguments, keyed by argument name."""
    return {a.name: getattr(namespace, _dest(a.name), None) for a in command.arguments}


def run_command(
    addon_id: str,
    command: HostCommand,
    args: dict[str, str | bool | None],
    session: Session | None,
    services: HostServices,
    output: Callable[[str], None],
    *,
    account: Account | None = None,
) -> int:
    """Run a contributed command's handler; a handler that raises is logged, told to the user
    and gives exit code 1. ``KeyboardInterrupt`` (the user pressed Ctrl-C) passes through to
    the caller, which decides whether that ends the program."""
    invocation = CommandInvocation(
        args=args, session=session, services=services, output=output, account=account
    )
    try:
        code = command.handler(invocation)
    except Exception as exc:
        log.error(
            "add-on %r: command %s %s failed: %s: %s",
            addon_id,
            command.group,
            command.name,
            type(exc).__name__,
            exc,
        )
        log.debug("traceback of the failure", exc_info=True)
        output(f"error: {command.group} {command.name} failed: {exc or type(exc).__name__}")
        return 1
    if isinstance(code, bool) or not isinstance(code, int):
        return 0 if code is None else 1
    return code
