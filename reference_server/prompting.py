"""Reading a secret for ``psr-server admin``: from stdin, the environment, or a prompt.

Never from the command line: other users of the computer can read a process's arguments, and
the shell keeps them in its history. Secrets are returned, never printed or put in messages.
"""

from __future__ import annotations

import getpass
import os
import sys

from reference_server.errors import CommandError

NEW_PASSWORD_ENV = "PSR_NEW_PASSWORD"  # noqa: S105 - the variable's name, not a password
NO_TERMINAL = "no terminal: use --password-stdin or ${env}"


def read_stdin_line() -> str:
    """The first line of stdin without its line end (``--password-stdin``)."""
    return sys.stdin.readline().rstrip("\r\n")


def new_password(from_stdin: bool, user: str) -> str:
    """A user's new password: from stdin, else ``$PSR_NEW_PASSWORD``, else typed twice at a
    prompt without echo. :class:`CommandError` when there is no terminal to prompt on."""
    if from_stdin:
        return read_stdin_line()
    from_env = os.environ.get(NEW_PASSWORD_ENV)
    if from_env:
        return from_env
    return prompt_twice(f"New password for {user}: ", NO_TERMINAL.format(env=NEW_PASSWORD_ENV))


def prompt_twice(prompt: str, no_terminal: str) -> str:
    """A secret typed twice without echo; :class:`CommandError` with ``no_terminal`` when
    there is no terminal, or when the two differ."""
    if not has_terminal():
        raise CommandError(no_terminal)
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat it: ") != first:
        raise CommandError("the two entries differ; nothing was changed")
    return first


def has_terminal() -> bool:
    """Whether :func:`getpass.getpass` can prompt without echo.

    On POSIX it prompts on ``/dev/tty`` (so even with stdin redirected); without one it would
    fall back to reading stdin with echo, or fail with ``EOFError``. On Windows it uses the
    console, which is there when stdin is one.
    """
    if os.name != "posix":
        return sys.stdin.isatty()
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True
