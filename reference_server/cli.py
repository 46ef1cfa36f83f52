"""``psr-server``: ``serve`` the API, or ``admin`` (the server manager).

No user error ends in a traceback: refusals and unusable folders are one line on stderr with
exit 1, bad arguments argparse's usage message with exit 2, and a reader that stops early
(``psr-server admin ... | head``) an ordinary, quiet exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path
from types import FrameType

from reference_server.admin_cli import add_admin_parser, run_admin
from reference_server.app import create_app
from reference_server.errors import ApiError, CommandError, DataFolderError
from reference_server.serving import LOOPBACK_HOSTS, ApiServer

DEFAULT_PORT = 8080
INTERRUPTED_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``psr-server``."""
    parser = argparse.ArgumentParser(
        prog="psr-server",
        description="Reference Password Safe server and server manager. "
        "Start with 'psr-server admin --data DIR init'; see docs/admin.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the HTTP API (/api/v1) until SIGTERM or Ctrl-C.",
    )
    serve.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="the server's data folder; it must exist (create one with "
        "'psr-server admin --data DIR init')",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    serve.add_argument("--threads", type=int, default=4, help="worker threads (default: 4)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host, for use behind a TLS proxy only: the "
        "server speaks plain HTTP (default: loopback only)",
    )
    add_admin_parser(sub)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    if args.host not in LOOPBACK_HOSTS and not args.allow_remote:
        print(
            f"psr-server: refusing to listen on {args.host!r}: the server speaks plain HTTP. "
            "Use 127.0.0.1, or add --allow-remote behind a TLS proxy.",
            file=sys.stderr,
        )
        return 2
    server = ApiServer(create_app(args.data), args.host, args.port, threads=args.threads)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"listening on {server.url}", flush=True)
    server.serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``psr-server``."""
    args = build_parser().parse_args(argv)
    _log_to_stderr(args.command)
    try:
        code = serve(args) if args.command == "serve" else run_admin(args)
        # Piped output is buffered: a reader that went away shows up here, not at print.
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except (ApiError, CommandError, DataFolderError, OSError, sqlite3.Error, EOFError) as exc:
        return _fail(_message(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED_EXIT)
    return code


def _log_to_stderr(command: str) -> None:
    # serve: timestamped log lines; admin: a warning reads like the command's other messages.
    fmt = (
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
        if command == "serve"
        else "psr-server: %(message)s"
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=fmt)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.detail
    if isinstance(exc, EOFError):
        return "no input where some was needed; nothing was changed"
    if isinstance(exc, sqlite3.Error):
        return f"the server's database file cannot be used: {exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _fail(message: str, code: int = 1) -> int:
    # If stderr is gone too, the exit code is all that is left to say it.
    with contextlib.suppress(OSError):
        print(f"psr-server: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at devnull, so that the interpreter's own flush at
    exit does not fail again (the recipe of the Python docs, "Note on SIGPIPE")."""
    # ValueError/OSError: stdout is not a real file (an in-process test); nothing to redirect.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
