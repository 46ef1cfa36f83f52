"""A sync in its own process that SIGKILLs itself after page N (run by test_kill.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from hookspecs import Session
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy


def main() -> None:
    args = json.loads(sys.argv[1])
    session = Session(**args["session"])
    paths = CopyPaths.for_copy(
        Path(args["folder"]),
        session.server_url,
        session.database,
        session.username,
        session.client_id,
    )
    pages = 0

    def progress(done: int, total: int) -> None:
        nonlocal pages
        pages += 1
        if pages == args["kill_after"]:
            os.kill(os.getpid(), signal.SIGKILL)

    sync_copy(paths, session, create=args["create"], progress=progress, page_limit=args["limit"])


if __name__ == "__main__":
    main()
