"""``psr-server``: ``serve`` the API, or ``admin`` (the server manager)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from reference_server.admin_cli import add_admin_parser, run_admin
from reference_server.app import create_app
from reference_server.errors import ApiError
from reference_server.serving import LOOPBACK_HOSTS, ApiServer


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``psr-server``."""
    parser = argparse.ArgumentParser(
        prog="psr-server", description="Reference Password Safe server and server manager.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--data", type=Path, required=True, help="data folder (created if absent)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    serve.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback --host (the server speaks plain HTTP)")
    add_admin_parser(sub)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    if args.host not in LOOPBACK_HOSTS and not args.allow_remote:
        print(f"psr-server: refusing to listen on {args.host!r}: the server speaks plain HTTP. "
              "Use 127.0.0.1, or add --allow-remote behind a TLS proxy.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    try:
        if args.command == "serve":
            return serve(args)
        return run_admin(args)
    except ApiError as exc:
        print(f"psr-server: {exc.detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"psr-server: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
