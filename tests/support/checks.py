"""The checks every fault and kill test ends with: the copy opens, passes
``PRAGMA integrity_check``, lost and rolled back nothing, and converges on the next sync; and
an error is an add-on error with a sentence for the user.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hookspecs import Session
from offline_addon.errors import OfflineAddonError
from offline_addon.storage.offline_copy import CopyMeta, OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.result import SyncResult

from .worlds import World


def cursor_position(cursor: str | None) -> tuple[str, int]:
    """(epoch, seq) of an opaque cursor; ("", -1) for none.

    The cursor is signed, not encrypted: its first part is base64url JSON. Reading it here (and
    only here, in tests) is how the suite proves that the stored position never goes back.
    """
    if cursor is None:
        return ("", -1)
    body = cursor.split(".", 1)[0]
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return (str(data["epoch"]), int(data["seq"]))


@dataclass(frozen=True)
class CopyState:
    """What a copy holds: records (id -> (rev, name, fields)) and the cursor position."""

    records: dict[str, tuple[int, str, dict[str, str]]]
    position: tuple[str, int]


EMPTY = CopyState({}, ("", -1))


def read_copy(paths: CopyPaths, password: str) -> CopyState:
    """Open the copy, require ``PRAGMA integrity_check`` ok, and read what it holds."""
    if not paths.db.exists():
        return EMPTY
    with OfflineCopy.open(paths, password) as copy:
        assert copy.integrity_ok(), "PRAGMA integrity_check failed"
        records = {r.record_id: (r.rev, r.name, dict(r.fields)) for r in copy.list_records()}
        return CopyState(records, cursor_position(copy.cursor))


def assert_nothing_lost(before: CopyState, after: CopyState, *, allowed_gone: set[str]) -> None:
    """No record lost (unless the server removed it) or rolled back; the cursor never went
    back. Within one epoch positions are compared by seq; a new epoch means a full resync."""
    if before.position[0] == after.position[0]:
        assert after.position[1] >= before.position[1], "the stored cursor went backwards"
    if after == EMPTY and before != EMPTY:
        raise AssertionError("the copy disappeared")
    for rid, (rev, _, _) in before.records.items():
        if rid in after.records:
            assert after.records[rid][0] >= rev, f"record {rid[:8]} was rolled back"
        else:
            assert rid in allowed_gone, f"record {rid[:8]} was lost"


def sync(world: World, session: Session, *, create: bool = False, **kwargs: Any) -> SyncResult:
    """One engine sync of ``world``'s copy for ``session``."""
    kwargs.setdefault("progress", None)
    return sync_copy(world.paths(), session, create=create, **kwargs)


def assert_converges(world: World, session: Session | None = None) -> CopyState:
    """A complete sync (direct to the server) makes the copy equal the exportable view."""
    session = session or world.login()
    sync(world, session, create=True)
    state = read_copy(world.paths(), world.password)
    expected = world.expected()
    assert state.records.keys() == expected.keys(), "the copy holds other records than the view"
    assert state.records == expected, "a record's rev, name or fields differ from the server"
    return state


def assert_user_message(exc: BaseException, *words: str) -> None:
    """The error is an add-on error whose message is a sentence that says what happened."""
    assert isinstance(exc, OfflineAddonError), f"{type(exc).__name__} is not an add-on error"
    message = str(exc)
    assert len(message) > 20, f"not a user sentence: {message!r}"
    assert message[0].isupper(), f"not a user sentence: {message!r}"
    lowered = message.lower()
    assert any(w in lowered for w in words), f"{message!r} mentions none of {words}"


def copy_meta(paths: CopyPaths, password: str) -> CopyMeta:
    """The copy's bookkeeping (complete, expected total, generation), read with the password."""
    with OfflineCopy.open(paths, password) as copy:
        return copy.meta
