"""Building feed pages and copies for unit tests (no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_addon.protocol.answers import ChangePage, load_page
from offline_addon.protocol.digest import digest_of
from offline_addon.storage.offline_copy import Contact, CopyIdentity, OfflineCopy
from offline_addon.storage.paths import CopyPaths

IDENTITY = CopyIdentity("http://127.0.0.1:1", "demo", "alice", "user-1", "client-1")
CONTACT = Contact(server_time=1000.0, local_time=1000.0, validity_seconds=7 * 86400)


def upsert(record_id: str, rev: int, name: str = "", **fields: str) -> dict[str, Any]:
    return {
        "op": "upsert",
        "id": record_id,
        "rev": rev,
        "record": {
            "id": record_id,
            "rev": rev,
            "name": name or f"Name of {record_id}",
            "fields": fields or {"username": f"u-{record_id}", "password": f"secret-{record_id}"},
            "updated_at": 1000.5,
        },
    }


def delete(record_id: str, reason: str = "deleted") -> dict[str, Any]:
    return {"op": "delete", "id": record_id, "op_extra": "ignored", "reason": reason}


def page(
    changes: list[dict[str, Any]],
    next_cursor: str = "c1",
    has_more: bool = False,
    holdings: dict[str, int] | None = None,
) -> ChangePage:
    payload: dict[str, Any] = {
        "changes": changes,
        "next_cursor": next_cursor,
        "has_more": has_more,
        "remaining": 0,
    }
    if not has_more:
        d = digest_of((holdings or {}).items())
        payload["digest"] = {"count": d.count, "sum": d.sum, "algorithm": "sha256-sum"}
    return load_page(payload)


def new_copy(folder: Path, password: str = "pw") -> OfflineCopy:  # noqa: S107
    return OfflineCopy.create(CopyPaths(folder, "a" * 64), password, IDENTITY)
