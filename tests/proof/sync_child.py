"""A writing process for the SIGKILL trials and the two-writer tests: ``python sync_child.py``
with a JSON job on stdin.

Imports everything first, prints ``ready``, then runs one job and prints ``page <done>
<total>`` after each committed page and ``done <outcome>`` at the end (``error <Type>`` and exit
code 3 for an add-on error), so that the parent can aim its SIGKILL at a random moment *inside*
the job (not during interpreter start-up). Secrets (the token, the passwords) arrive on stdin,
never on the command line.

Jobs (``action``): ``sync`` (the engine, as a host's worker runs it; ``create`` by default) and
``rekey`` (the public API's re-key of every copy of the user, from ``old_password`` to the
session's password).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hookspecs import Session
from offline_addon import AddonSettings, OfflineAddonError, OfflineCopies
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
    action = job.get("action", "sync")
    print("ready", flush=True)
    try:
        if action == "rekey":
            copies = OfflineCopies(AddonSettings(database_path=job["folder"]))
            try:
                copies.rekey(session, job["old_password"])
            finally:
                copies.shutdown()
            print("done rekeyed", flush=True)
            return 0
        result = sync_copy(paths, session, create=job.get("create", True), progress=_progress,
                           page_limit=job["limit"], lock_wait_s=job.get("lock_wait_s", 5.0))
    except OfflineAddonError as exc:
        print(f"error {type(exc).__name__}", flush=True)
        return 3
    print(f"done {result.outcome}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
