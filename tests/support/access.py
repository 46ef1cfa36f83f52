"""The client side of offline accountability as the tests speak it: the copy's access log as
any SQLCipher tool reads it, the server's audit of offline accesses, its registry of copies,
and records whose values are secrets that cannot occur by chance."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

from offline_addon.storage.paths import CopyPaths
from reference_host.clipboard import Clipboard
from reference_server.testing import RunningServer

from .copies import opened_file

SECRET = "Qx7-offline-secret-91zz"
"""The start of every secret field value of :func:`secret_records`."""
ACCESS_KINDS = ("offline_login", "record_shown", "field_revealed", "field_copied")
AUDIT = "/offline/audit"
"""What the path of a log push contains."""
COPIES = "/offline/copies/"
"""What the path of a copy report contains."""

Event = tuple[str, str | None, str | None]
"""(kind, record id, field name) of one access event."""


def secret_records(count: int) -> list[dict[str, Any]]:
    """``count`` records ``Secret 000``... whose password and notes are secrets."""
    return [
        {
            "name": f"Secret {i:03d}",
            "fields": {
                "username": f"user-{i}",
                "password": f"{SECRET}-pw-{i}",
                "notes": f"{SECRET}-note-{i}",
            },
        }
        for i in range(count)
    ]


def log_rows(paths: CopyPaths, password: str) -> list[tuple[Any, ...]]:
    """Every row of the copy's access log (event id, kind, record id, field, local time),
    oldest first, read with a connection of the test's own."""
    with opened_file(paths, password) as db:
        return [
            tuple(row)
            for row in db.execute(
                "SELECT event_id, kind, record_id, field, local_time FROM access_log ORDER BY seq"
            )
        ]


def add_rows(paths: CopyPaths, password: str, rows: list[tuple[Any, ...]]) -> None:
    """Append raw rows ``(kind, record id, field, local time)`` to the copy's access log, as
    another program (or a bug) could; each gets a fresh event id."""
    with opened_file(paths, password) as db:
        db.executemany(
            "INSERT INTO access_log(event_id, kind, record_id, field, local_time)"
            " VALUES (?, ?, ?, ?, ?)",
            [(str(uuid.uuid4()), *row) for row in rows],
        )


def audited(server: RunningServer, user: str = "alice", db: str = "demo") -> list[Event]:
    """The offline accesses the server's audit trail holds for ``user`` in ``db``."""
    return [
        (entry.kind, entry.record_id or None, entry.field)
        for entry in server.admin.audit_entries(user=user, db=db, limit=100_000)
        if entry.kind in ACCESS_KINDS
    ]


def audited_ids(server: RunningServer, user: str = "alice", db: str = "demo") -> list[str]:
    """The client's event ids of the offline accesses in the audit trail."""
    return [
        str(entry.change_id)
        for entry in server.admin.audit_entries(user=user, db=db, limit=100_000)
        if entry.kind in ACCESS_KINDS
    ]


def registry(server: RunningServer, *, include_wiped: bool = True) -> list[dict[str, Any]]:
    """The server's registry of offline copies, as plain values."""
    return [
        {
            "db": c.db,
            "user": c.user_name,
            "client_id": c.client_id,
            "state": c.state,
            "record_count": c.record_count,
            "pending_changes": c.pending_changes,
            "unpushed_log_entries": c.unpushed_log_entries,
            "complete": c.complete,
        }
        for c in server.admin.offline_copies(include_wiped=include_wiped)
    ]


def paths_with(server: RunningServer, part: str) -> list[str]:
    """The requests the server saw whose path contains ``part``."""
    return [path for _, path in server.requests.seen() if part in path]


FAKE_XCLIP = """#!/bin/sh
# Stands in for xclip where no display exists: the clipboard is a file beside it.
case "$*" in
  *-o*) cat "$(dirname "$0")/clipboard" ;;
  *) cat > "$(dirname "$0")/clipboard" ;;
esac
"""


def file_clipboard(folder: Path) -> Clipboard:
    """The host's clipboard over a stand-in ``xclip`` that keeps the value in
    ``folder/clipboard``."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "xclip"
    tool.write_text(FAKE_XCLIP, encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return Clipboard(path=str(folder))
