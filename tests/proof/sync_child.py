"""A syncing process for the SIGKILL trials: ``python sync_child.py`` with a JSON job on stdin.

Imports everything first, prints ``ready``, then runs one sync and prints ``page <done>`` after
each committed page and ``done <outcome>`` at the end, so that the parent can aim its SIGKILL
at a random moment *inside* the sync (not during interpreter start-up). The token arrives on
stdin, never on the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hookspecs import Session
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy


def _progress(done: int, total: int) -> None:
    print(f"page {done} {total}", flush=True)


def main() -> int:
    job = json.loads(sys.stdin.readline())
    session = Session(**job["session"])
    paths = CopyPaths.for_copy(
        Path(job["folder"]), job["copy_url"], session.database, session.username, session.client_id
    )
    print("ready", flush=True)
    result = sync_copy(paths, session, create=True, progress=_progress, page_limit=job["limit"])
    print(f"done {result.outcome}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
