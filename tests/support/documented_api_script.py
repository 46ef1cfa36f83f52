"""A script that manages an offline copy using only the documented API.

Usage: ``python documented_api_script.py SERVER_URL FOLDER`` (database ``demo``, user
``alice``, password ``alice-pw``). It lists, creates, syncs, opens offline and deletes a copy,
printing one line per step, and exits 0 when every step did what the developer guide says.
Only names from ``offline_addon.__all__`` and ``hookspecs.__all__`` (plus the standard library
for the login request) may be used here; ``test_documented_api.py`` checks that.
"""

from __future__ import annotations

import json
import sys
import urllib.request

from hookspecs import OfflineCredentials, Session
from offline_addon import (
    AddonSettings,
    CopyNotFound,
    OfflineAddonError,
    OfflineCopies,
    SyncResult,
)

DATABASE, USER, PASSWORD, CLIENT = "demo", "alice", "alice-pw", "documented-api-script"


def log_in(server_url: str) -> Session:
    """``POST /session`` as the host would, and the hook ``Session`` for it."""
    body = json.dumps(
        {"database": DATABASE, "username": USER, "password": PASSWORD, "client_id": CLIENT}
    ).encode()
    if not server_url.startswith(("http://", "https://")):
        raise SystemExit(f"not an http(s) URL: {server_url}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        f"{server_url}/api/v1/session",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        data = json.load(answer)
    return Session(
        server_url, DATABASE, data["user_id"], data["username"], CLIENT, data["token"], PASSWORD
    )


def check(condition: bool, what: str) -> None:
    """Stop with exit code 1 and say what was wrong."""
    if not condition:
        print(f"FAILED: {what}")
        raise SystemExit(1)


def main(server_url: str, folder: str) -> int:
    """Run every step; 0 when all did what they should."""
    session = log_in(server_url)
    copies = OfflineCopies(AddonSettings(database_path=folder))
    try:
        check(copies.list() == [], "a fresh folder lists no copies")
        print("list: no copies")
        try:
            copies.sync_now(session)
            check(False, "sync_now without a copy must raise CopyNotFound")
        except CopyNotFound:
            print("sync before create: CopyNotFound")
        created: SyncResult = copies.create(session)
        check(created.outcome == "synced" and created.record_count == 3, f"create: {created}")
        print(f"create: {created.record_count} records")
        [info] = copies.list()
        check((info.database, info.username) == (DATABASE, USER), f"listed: {info}")
        print(f"list: {info.database} for {info.username}, {info.record_count} records")
        synced = copies.sync_now(session)
        print(f"sync: {synced.outcome}")
        credentials = OfflineCredentials(server_url, DATABASE, USER, CLIENT, PASSWORD)
        reader = copies.open_offline(credentials)
        try:
            names = sorted(record.name for record in reader.list_records())
            found = [record.name for record in reader.search("wiki")]
        finally:
            reader.close()
        check(names == ["Bank", "Mail", "Wiki"] and found == ["Wiki"], f"offline: {names}")
        print(f"offline: {', '.join(names)}; search 'wiki' finds {found[0]}")
        check(copies.delete(session), "delete reports an existing copy")
        check(copies.list() == [], "no copy listed after delete")
        print("delete: done")
    except OfflineAddonError as error:
        print(f"FAILED: {type(error).__name__}: {error}")
        return 1
    finally:
        copies.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
