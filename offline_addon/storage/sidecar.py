"""The non-secret sidecar next to each copy, so that copies can be listed without a password.

It holds who and where (server, database, user) and when (last sync, valid until), never
record content. It is only a listing aid: the authoritative validity lives inside the
encrypted copy.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from offline_addon.errors import CopyNotFound, StorageError
from offline_addon.storage.files import write_durably
from offline_addon.storage.paths import DB_SUFFIX, CopyPaths


@dataclass(frozen=True)
class CopyInfo:
    """What the sidecar says about one copy (``size_bytes`` is measured when read)."""

    server_url: str
    database: str
    username: str
    user_id: str
    client_id: str
    copy_id: str
    created_at: float
    last_sync: float | None
    valid_until: float | None
    record_count: int
    schema_version: int
    size_bytes: int = 0
    complete: bool = True
    """False until the first sync (or the rebuild that made the file) has finished; a sidecar
    written before this field existed describes a complete copy."""
    expected_total: int | None = None
    """About how many records the copy holds when complete (for "N of about M")."""
    password_generation: int | None = None
    """The server's password generation of the password the copy is keyed with, as far as
    this computer knows (a lower bound; None when the server does not tell it). Non-secret:
    it lets a sync tell "locked with a newer password" from "damaged" without the key."""


class _CopyInfoSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    server_url = fields.String(required=True)
    database = fields.String(required=True)
    username = fields.String(required=True)
    user_id = fields.String(required=True)
    client_id = fields.String(required=True)
    copy_id = fields.String(required=True)
    created_at = fields.Float(required=True)
    last_sync = fields.Float(required=True, allow_none=True)
    valid_until = fields.Float(required=True, allow_none=True)
    record_count = fields.Integer(required=True, strict=True)
    schema_version = fields.Integer(required=True, strict=True)
    complete = fields.Boolean(load_default=True)
    expected_total = fields.Integer(strict=True, load_default=None, allow_none=True)
    password_generation = fields.Integer(strict=True, load_default=None, allow_none=True)


_SCHEMA = _CopyInfoSchema()


def write_sidecar(
    paths: CopyPaths,
    info: CopyInfo,
    *,
    target: Path | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    """Write the sidecar atomically (temp file, fsync, rename), owner-only (0600); ``target``
    and ``extra`` (more keys) are for the marker of a prepared move."""
    payload = {**_payload(info), **(extra or {})}
    data = json.dumps(payload, indent=2, sort_keys=True).encode("utf-8")
    try:
        write_durably(target or paths.sidecar, lambda out: out.write(data), ".tmp")
    except OSError as exc:
        raise StorageError(
            f"Cannot write the offline copy's description in {paths.folder} ({exc.strerror}); "
            "check free disk space and permissions."
        ) from None


SIDECAR_TIME_SLACK_S = 60.0
"""How far the sidecar's ``last_sync`` and ``valid_until`` may lag behind the copy before a
sync rewrites it (see :func:`refresh_sidecar`)."""


def refresh_sidecar(
    paths: CopyPaths, info: CopyInfo, slack_s: float = SIDECAR_TIME_SLACK_S
) -> bool:
    """Write the sidecar unless it already says what ``info`` says, its times no more than
    ``slack_s`` behind: a sync every few seconds then skips the fsync'd rewrite (about 2 ms)
    while the listing stays within a minute (its ``valid_until`` errs early, never late).
    Returns whether it was written.

    The file is compared as JSON with what would be written (same keys, values of the same
    JSON types), not validated: a file equal to a valid description is one, and anything
    else is rewritten. That keeps the check to a read and a parse (a sync runs it every time).
    """
    try:
        held: Any = json.loads(paths.sidecar.read_bytes())
    except (OSError, ValueError):
        held = None
    if isinstance(held, dict) and _within(held, json.loads(json.dumps(_payload(info))), slack_s):
        return False
    write_sidecar(paths, info)
    return True


_TIMES = ("last_sync", "valid_until")


def _within(held: dict[str, Any], wanted: dict[str, Any], slack_s: float) -> bool:
    if held.keys() != wanted.keys():
        return False
    for key, value in wanted.items():
        old = held[key]
        if key in _TIMES:
            if not (_is_time(value) and _is_time(old) and 0.0 <= value - old <= slack_s):
                return False
        elif type(old) is not type(value) or old != value:
            return False
    return True


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _payload(info: CopyInfo) -> dict[str, Any]:
    """What the sidecar file holds for ``info`` (its size is measured when read)."""
    payload = asdict(info)
    payload.pop("size_bytes")
    return payload


def _size_of(paths: CopyPaths) -> int:
    total = 0
    for path in (paths.db, *paths.companions(paths.db)):
        with suppress(OSError):
            total += path.stat().st_size
    return total


def read_sidecar(paths: CopyPaths) -> CopyInfo:
    """The copy's description; CopyNotFound when there is no copy, StorageError when the
    sidecar is unreadable or does not belong to this file."""
    if not paths.db.exists():
        raise CopyNotFound.of()
    return read_sidecar_file(paths, paths.sidecar)


def read_sidecar_file(paths: CopyPaths, source: Path) -> CopyInfo:
    """The description in ``source`` (the sidecar, or the marker of a prepared move);
    StorageError when it is unreadable or does not belong to this copy."""
    try:
        raw: Any = json.loads(source.read_bytes())
        data = _SCHEMA.load(raw if isinstance(raw, dict) else {})
    except (OSError, ValueError, ValidationError):
        raise StorageError(
            "The offline copy's description file is missing or damaged; "
            "synchronise once online to rewrite it."
        ) from None
    if data["copy_id"] != paths.copy_id:
        raise StorageError(
            "The offline copy's description file belongs to another copy; "
            "synchronise once online to rewrite it."
        )
    return CopyInfo(**data, size_bytes=_size_of(paths))


def list_copies(folder: Path) -> list[CopyInfo]:
    """Every copy in ``folder``, found by its database file, oldest first. A copy whose sidecar
    is missing, damaged or another copy's is listed with what is known without a password
    (its id, size and file time; names empty, counts 0); its next sync rewrites the sidecar."""
    if not folder.is_dir():
        return []
    found: list[CopyInfo] = []
    for db in sorted(folder.glob(f"*{DB_SUFFIX}")):
        copy_id = db.name[: -len(DB_SUFFIX)]
        if len(copy_id) != 64 or not db.is_file():
            continue  # not a name this add-on gives its copies
        paths = CopyPaths(folder, copy_id)
        try:
            found.append(describe(paths))
        except CopyNotFound:
            continue
    return sorted(found, key=lambda info: (info.created_at, info.copy_id))


def describe(paths: CopyPaths) -> CopyInfo:
    """The copy's description from its sidecar, or, when that is missing or damaged, what is
    known without a password (see :func:`list_copies`); CopyNotFound when there is no copy."""
    try:
        return read_sidecar(paths)
    except CopyNotFound:
        raise
    except StorageError:
        return _unlisted(paths)


def _unlisted(paths: CopyPaths) -> CopyInfo:
    """What is known of a copy without its sidecar and without a password."""
    try:
        created = paths.db.stat().st_mtime
    except OSError:
        created = 0.0
    return CopyInfo(
        server_url="",
        database="",
        username="",
        user_id="",
        client_id="",
        copy_id=paths.copy_id,
        created_at=created,
        last_sync=None,
        valid_until=None,
        record_count=0,
        schema_version=0,
        size_bytes=_size_of(paths),
    )
