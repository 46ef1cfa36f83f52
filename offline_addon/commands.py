"""The commands the add-on contributes to the host (Account menu; ``psr-client offline ...``).

Thin layers over :class:`offline_addon.api.OfflineCopies`: each handler calls one API method,
prints the outcome in words and returns an exit code. Handlers block until their sync is done,
so a one-shot ``psr-client offline create`` ends only when the copy exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hookspecs import CommandInvocation, HostCommand
from offline_addon import errors
from offline_addon.api import CopyOverview, OfflineCopies
from offline_addon.storage.sidecar import CopyInfo
from offline_addon.sync.result import SyncResult, incomplete_words

GROUP = "offline"

Copies = Callable[[], OfflineCopies]


def build_commands(copies: Copies) -> list[HostCommand]:
    """The ``offline`` command group over the add-on's current :class:`OfflineCopies`."""

    def create(inv: CommandInvocation) -> int:
        session = inv.session
        if session is None:
            return _needs_login(inv)
        inv.output(f"Creating the offline copy of '{session.database}' (first synchronisation)...")
        return _report_sync(inv, lambda: copies().create(session))

    def sync(inv: CommandInvocation) -> int:
        session = inv.session
        if session is None:
            return _needs_login(inv)
        # The add-on's progress display says that it synchronises; no line of our own.
        return _report_sync(inv, lambda: copies().sync_now(session))

    def status(inv: CommandInvocation) -> int:
        if inv.session is None:
            return show_list(inv)
        overview = copies().status(inv.session)
        for line in describe_status(overview, inv.session.database):
            inv.output(line)
        return 0

    def show_list(inv: CommandInvocation) -> int:
        api = copies()
        found = api.list()
        if not found:
            inv.output(f"No offline copies on this computer (folder: {api.folder}).")
            return 0
        inv.output(f"Offline copies in {api.folder}:")
        for info in found:
            inv.output("  " + describe_copy(info, time.time()))
        return 0

    def delete(inv: CommandInvocation) -> int:
        session = inv.session
        if session is None:
            return _needs_login(inv)
        try:
            existed = copies().delete(session)
        except errors.OfflineAddonError as exc:
            inv.output(f"Error: {exc}")
            return 1
        if existed:
            inv.output(f"The offline copy of '{session.database}' was deleted.")
        else:
            inv.output(f"There was no offline copy of '{session.database}' to delete.")
        return 0

    return [
        HostCommand(GROUP, "create", "Create the offline copy of this database (first sync).",
                    create, needs_session=True),
        HostCommand(GROUP, "sync", "Synchronise the offline copy now.", sync,
                    needs_session=True),
        HostCommand(GROUP, "status", "Last sync, records, validity left, next automatic sync.",
                    status),
        HostCommand(GROUP, "list", "List the offline copies on this computer.", show_list),
        HostCommand(GROUP, "delete", "Delete the offline copy of this database.", delete,
                    needs_session=True),
    ]


def _needs_login(inv: CommandInvocation) -> int:
    inv.output("Error: log in online first; this command needs a connection to the server.")
    return 1


def _report_sync(inv: CommandInvocation, run: Callable[[], SyncResult]) -> int:
    try:
        result = run()
    except errors.OfflineAddonError as exc:
        inv.output(f"Error: {exc}")
        return 1
    if result.outcome == "wiped":
        inv.output(f"The offline copy was deleted: {result.message}")
        return 1
    inv.output(f"Done: {result.record_count} records in the offline copy "
               f"({result.added} added, {result.changed} changed, {result.removed} removed).")
    return 0


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe_copy(info: CopyInfo, now: float) -> str:
    """One line about a copy: where, whose, how big, how fresh, how long usable offline."""
    last = "never" if info.last_sync is None else f"{_ago(now - info.last_sync)} ago"
    if info.valid_until is None:
        validity = "validity unknown"
    elif info.valid_until <= now:
        validity = "expired (log in online to renew)"
    else:
        validity = f"usable offline for {_ago(info.valid_until - now)}"
    held = (f"{info.record_count} records" if info.complete
            else incomplete_words(info.record_count, info.expected_total))
    return (f"{info.database} on {info.server_url} for {info.username}: "
            f"{held}, {info.size_bytes // 1024} KiB, last sync {last}, {validity}")


def describe_status(overview: CopyOverview, database: str) -> list[str]:
    """The lines ``offline status`` prints for the logged-in database."""
    now = time.time()
    live = overview.status
    if overview.info is None:
        lines = [f"No offline copy of '{database}' yet; create it with 'psr-client offline "
                 "create'."]
    else:
        lines = [describe_copy(overview.info, now)]
    if live.state == "syncing":
        lines.append(f"Synchronising now: {live.done}/{live.total}.")
    if live.last_error:
        lines.append(f"Last problem: {live.last_error}")
    if overview.next_sync_in_s is not None:
        lines.append(f"Next automatic sync in {_ago(overview.next_sync_in_s)}.")
    elif overview.info is not None and live.state != "syncing":
        lines.append("No automatic sync planned (log in online to sync).")
    return lines
