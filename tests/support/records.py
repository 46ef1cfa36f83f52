"""Records for tests: what a server imports (:func:`server_records`) and what its change feed
sends (:func:`upsert`, :func:`delete`, :func:`page`)."""

from __future__ import annotations

import random
from typing import Any

from offline_addon.protocol.answers import ChangePage, load_page
from offline_addon.protocol.digest import digest_of


def server_records(count: int, tag: str = "Rec", seed: int = 1) -> list[dict[str, Any]]:
    """``count`` records for ``Admin.import_records`` whose content is recognisable: ``tag``
    marks every value, and no value occurs by chance elsewhere (no short numbers alone)."""
    rng = random.Random(seed)
    return [
        {
            "name": f"{tag} Account {i:05d}",
            "fields": {
                "username": f"{tag}-user-{i}@example.com",
                "password": f"{tag}-pw-{rng.randrange(10**9):09d}",
                "url": f"https://{tag.lower()}-{i}.example.com/",
                "notes": f"{tag} note {i}",
            },
        }
        for i in range(count)
    ]


def upsert(record_id: str, rev: int = 1, name: str = "", **fields: str) -> dict[str, Any]:
    """One feed change: ``record_id`` at ``rev`` (default fields: a user name and password)."""
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
    """One feed change: ``record_id`` is gone (with an unknown key a reader must ignore)."""
    return {"op": "delete", "id": record_id, "op_extra": "ignored", "reason": reason}


def page_body(
    changes: list[dict[str, Any]],
    next_cursor: str = "c1",
    has_more: bool = False,
    holdings: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A feed page as the server sends it (JSON); the last page (``has_more`` false) carries
    the digest of ``holdings`` (``id -> rev``)."""
    payload: dict[str, Any] = {
        "changes": changes,
        "next_cursor": next_cursor,
        "has_more": has_more,
        "remaining": 0,
    }
    if not has_more:
        d = digest_of((holdings or {}).items())
        payload["digest"] = {"count": d.count, "sum": d.sum, "algorithm": "sha256-sum"}
    return payload


def page(
    changes: list[dict[str, Any]],
    next_cursor: str = "c1",
    has_more: bool = False,
    holdings: dict[str, int] | None = None,
) -> ChangePage:
    """:func:`page_body`, parsed as the add-on parses it."""
    return load_page(page_body(changes, next_cursor, has_more, holdings))


def last_page(changes: list[dict[str, Any]], cursor: str = "end") -> dict[str, Any]:
    """A last page (JSON) whose digest matches ``changes`` (upserts only)."""
    holdings = {c["id"]: c["rev"] for c in changes if c["op"] == "upsert"}
    return page_body(changes, cursor, holdings=holdings)
