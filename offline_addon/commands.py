"""The commands the add-on contributes to the host (Account menu; ``psr-client offline ...``).

Thin layers over :class:`offline_addon.api.OfflineCopies`: each handler calls one API method,
prints the outcome once, in the words of :mod:`offline_addon.sync.result`, and returns an exit
code a script can use (:data:`EXIT_CODES`). Handlers block until their sync is done, so a
one-shot ``psr-client offline create`` ends only when the copy exists; Ctrl-C stops the sync
(what it received stays) and the command returns. ``status`` and ``list`` take ``--json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import asdict
from typing import Any

from hookspecs import CommandArgument, CommandInvocation, HostCommand, Session
from offline_addon import errors
from offline_addon.api import DEFAULT_WAIT_S, CopyOverview, OfflineCopies
from offline_addon.protocol.validity import expiry_stage
from offline_addon.runtime.status import expiry_words
from offline_addon.storage.sidecar import CopyInfo
from offline_addon.sync.result import SyncResult, incomplete_words

GROUP = "offline"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NEEDS_SERVER = 2
EXIT_NO_COPY = 3
EXIT_NOT_ALLOWED = 4
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "failed (the message says why; the add-on retries automatic syncs by itself)",
    EXIT_NEEDS_SERVER: "needs an online login",
    EXIT_NO_COPY: "there is no offline copy",
    EXIT_NOT_ALLOWED: "the server does not allow an offline copy (any copy was deleted)",
    EXIT_INTERRUPTED: "stopped with Ctrl-C",
}
"""Exit codes of the ``offline`` commands (documented in the user guide)."""

CANCEL_WAIT_S = 10.0
"""After Ctrl-C, how long a command waits for the sync to stop at its next page."""

JSON_FLAG = CommandArgument(
    "json", "print machine-readable JSON (stable, documented fields)", kind="flag"
)

Copies = Callable[[], OfflineCopies]


def build_commands(copies: Copies) -> list[HostCommand]:
    """The ``offline`` command group over the add-on's current :class:`OfflineCopies`."""

    def create(inv: CommandInvocation) -> int:
        session = inv.session
        if session is None:
            return _needs_login(inv)
        if copies().paths_for(session).db.exists():
            inv.output(f"The offline copy of '{session.database}' exists; synchronising it.")
        else:
            inv.output(
                f"Creating the offline copy of '{session.database}' (first synchronisation)..."
            )
        return _report_sync(inv, copies(), session, create=True)

    def sync(inv: CommandInvocation) -> int:
        session = inv.session
        if session is None:
            return _needs_login(inv)
        # The add-on's progress display says that it synchronises; no line of our own.
        return _report_sync(inv, copies(), session, create=False)

    def status(inv: CommandInvocation) -> int:
        who = _account(inv)
        if who is None:
            return show_list(inv)
        overview = copies().status(who)
        if inv.args.get("json"):
            inv.output(json.dumps(status_json(overview, who.database), sort_keys=True))
        else:
            for line in describe_status(overview, who.database, online=inv.session is not None):
                inv.output(line)
        return EXIT_OK if overview.info is not None else EXIT_NO_COPY

    def show_list(inv: CommandInvocation) -> int:
        api = copies()
        found = api.list()
        if inv.args.get("json"):
            inv.output(
                json.dumps(
                    {"folder": str(api.folder), "copies": [copy_json(info) for info in found]},
                    sort_keys=True,
                )
            )
            return EXIT_OK
        if not found:
            inv.output(f"No offline copies on this computer (folder: {api.folder}).")
            return EXIT_OK
        inv.output(f"Offline copies in {api.folder}:")
        for info in found:
            inv.output("  " + describe_copy(info, time.time()))
        return EXIT_OK

    def delete(inv: CommandInvocation) -> int:
        who = _account(inv)
        if who is None:
            return _needs_login(inv)
        try:
            existed = copies().delete(who)
        except errors.OfflineAddonError as exc:
            inv.output(f"Error: {exc}")
            return EXIT_FAILED
        if existed:
            inv.output(f"The offline copy of '{who.database}' was deleted.")
            return EXIT_OK
        inv.output(f"There was no offline copy of '{who.database}' to delete.")
        return EXIT_NO_COPY

    return [
        HostCommand(
            GROUP,
            "create",
            "Create the offline copy of this database (first sync).",
            create,
            needs_session=True,
        ),
        HostCommand(GROUP, "sync", "Synchronise the offline copy now.", sync, needs_session=True),
        HostCommand(
            GROUP,
            "status",
            "Last sync, records, validity left, next automatic sync.",
            status,
            arguments=(JSON_FLAG,),
        ),
        HostCommand(
            GROUP,
            "list",
            "List the offline copies on this computer.",
            show_list,
            arguments=(JSON_FLAG,),
        ),
        HostCommand(
            GROUP,
            "delete",
            "Delete the offline copy of this database (works without a server).",
            delete,
        ),
    ]


def _account(inv: CommandInvocation) -> Any:
    """Who the command is about: the online session, else the account the host is set up
    for (``CommandInvocation.account``, contract 1.1: known offline too), else None."""
    return inv.session or getattr(inv, "account", None)


def _needs_login(inv: CommandInvocation) -> int:
    inv.output("Error: log in online first; this command needs a connection to the server.")
    return EXIT_NEEDS_SERVER


def _report_sync(
    inv: CommandInvocation, api: OfflineCopies, session: Session, *, create: bool
) -> int:
    future = api.request_sync(session, create=create)
    try:
        result = _wait_interruptibly(future, api, session)
    except KeyboardInterrupt:
        inv.output(
            "Stopped. The offline copy keeps what it had received; the next "
            "synchronisation continues from there."
        )
        return EXIT_INTERRUPTED
    except errors.OfflineNotAllowed as exc:
        inv.output(f"Error: {exc}")
        return EXIT_NOT_ALLOWED
    except errors.CopyNotFound as exc:
        inv.output(f"Error: {exc}")
        return EXIT_NO_COPY
    except errors.OfflineAddonError as exc:
        inv.output(f"Error: {exc}")
        return EXIT_FAILED
    inv.output(result.message)
    return EXIT_NOT_ALLOWED if result.outcome == "wiped" else EXIT_OK


def _wait_interruptibly(
    future: Future[SyncResult], api: OfflineCopies, session: Session
) -> SyncResult:
    """The sync's result; on Ctrl-C the sync is asked to stop, and KeyboardInterrupt goes on
    once it has (or after :data:`CANCEL_WAIT_S`)."""
    try:
        return future.result(DEFAULT_WAIT_S)
    except FutureTimeout:
        raise errors.OfflineAddonError(
            "The offline add-on is still busy; see 'offline status' and try again later."
        ) from None
    except KeyboardInterrupt:
        api.cancel(session)
        # Whatever the stopped sync ends with, the interrupt is what the user asked for.
        with suppress(BaseException):
            future.result(CANCEL_WAIT_S)
        raise


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe_age(last_sync: float | None, valid_until: float | None, now: float) -> str:
    """How fresh a copy is and how long it stays usable offline, in words."""
    last = "never" if last_sync is None else f"{_ago(now - last_sync)} ago"
    if valid_until is None:
        validity = "validity unknown"
    elif valid_until <= now:
        validity = "expired (log in online to renew)"
    else:
        validity = f"usable offline for {_ago(valid_until - now)}"
    return f"last sync {last}, {validity}"


def expiry_line(last_sync: float | None, valid_until: float | None, now: float) -> str | None:
    """The warning of a copy near the end of its offline validity, as a sentence ("Usable
    offline for 5 more hours; connect to renew."), or None when it is not near (see
    ``protocol.validity.expiry_stage``) or over (the refusal says that)."""
    if last_sync is None or valid_until is None:
        return None
    left = valid_until - now
    if expiry_stage(left, valid_until - last_sync) == 0:
        return None
    words = expiry_words(left)
    return f"{words[0].upper()}{words[1:]}."


def describe_copy(info: CopyInfo, now: float) -> str:
    """One line about a copy: where, whose, how big, how fresh, how long usable offline."""
    if not info.database:
        return (
            f"an offline copy without its description ({info.size_bytes // 1024:,} KiB); "
            "its next online synchronisation describes it again"
        )
    held = (
        f"{info.record_count:,} records"
        if info.complete
        else incomplete_words(info.record_count, info.expected_total)
    )
    return (
        f"{info.database} on {info.server_url} for {info.username}: "
        f"{held}, {info.size_bytes // 1024:,} KiB, "
        f"{describe_age(info.last_sync, info.valid_until, now)}"
    )


def describe_status(overview: CopyOverview, database: str, *, online: bool) -> list[str]:
    """The lines ``offline status`` prints for the database of the account (``online``: the
    user is logged in online)."""
    now = time.time()
    live = overview.status
    if overview.info is None:
        lines = [
            f"No offline copy of '{database}' yet; create it while online with 'offline create'."
        ]
    else:
        lines = [describe_copy(overview.info, now)]
        warning = _status_expiry(overview)
        if warning is not None:
            lines.append(warning)
    if live.state == "syncing":
        lines.append(f"Synchronising now: {live.done}/{live.total}.")
    if live.last_error:
        lines.append(f"Last problem: {live.last_error}")
    if overview.next_sync_in_s is not None and overview.info is not None:
        lines.append(f"Next automatic sync in {_ago(overview.next_sync_in_s)}.")
    elif overview.info is not None and live.state != "syncing":
        lines.append(
            "No automatic sync planned; run 'offline sync' to synchronise now."
            if online
            else "No automatic sync planned (log in online to sync)."
        )
    return lines


def _status_expiry(overview: CopyOverview) -> str | None:
    info, left = overview.info, overview.validity_left_s
    if info is None or info.valid_until is None or left is None:
        return None
    return expiry_line(info.last_sync, info.valid_until, info.valid_until - left)


def copy_json(info: CopyInfo) -> dict[str, Any]:
    """A copy as ``--json`` shows it: every :class:`CopyInfo` field (times in UNIX seconds,
    ``null`` when unknown)."""
    return asdict(info)


def status_json(overview: CopyOverview, database: str) -> dict[str, Any]:
    """``offline status --json``: ``database``, ``copy`` (as in ``list --json``, or null),
    ``state`` ("idle"/"syncing"), ``done``, ``total``, ``last_result`` (outcome and counts,
    or null), ``last_error`` (a sentence, or null), ``validity_left_s``, ``next_sync_in_s``,
    ``expiry_warning`` (the near-expiry sentence, or null)."""
    live = overview.status
    last = live.last_result
    return {
        "database": database,
        "copy": None if overview.info is None else copy_json(overview.info),
        "state": live.state,
        "done": live.done,
        "total": live.total,
        "last_result": None
        if last is None
        else {
            "outcome": last.outcome,
            "added": last.added,
            "changed": last.changed,
            "removed": last.removed,
            "record_count": last.record_count,
            "duration_s": round(last.duration_s, 3),
        },
        "last_error": live.last_error,
        "validity_left_s": overview.validity_left_s,
        "next_sync_in_s": None if overview.info is None else overview.next_sync_in_s,
        "expiry_warning": _status_expiry(overview),
    }
