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
from offline_addon.api import DEFAULT_WAIT_S, CopyOverview, OfflineCopies, OfflineCopySession
from offline_addon.protocol.merge import RECORD_NAME
from offline_addon.protocol.validity import expiry_stage
from offline_addon.runtime.status import expiry_words
from offline_addon.storage.local_changes import ConflictEntry
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
        overview = copies().status(who, edits=True)
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

    def conflicts(inv: CommandInvocation) -> int:
        return run_conflicts(inv, copies())

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
        HostCommand(
            GROUP,
            "conflicts",
            "List the offline changes the server did not take; keep yours or the server's.",
            conflicts,
            arguments=CONFLICT_ARGUMENTS,
        ),
    ]


CONFLICT_ARGUMENTS = (
    CommandArgument("reveal", "show your value and the server's for conflict number N"),
    CommandArgument("copy", "copy your value of conflict N to the clipboard"),
    CommandArgument(
        "keep-mine", "keep your value of conflict N: it is sent to the server at the next sync"
    ),
    CommandArgument("keep-server", "keep the server's value of conflict N (yours is dropped)"),
    CommandArgument("dismiss", "take conflict N off the list (the server's value stays)"),
)
REASONS = {
    "conflict": "changed on the server too",
    "refused": "the server refused the change",
    "deleted": "the record was deleted on the server",
}


def run_conflicts(inv: CommandInvocation, api: OfflineCopies) -> int:
    """``offline conflicts``: list the conflicts (never a value), or act on one of them
    (``--reveal``, ``--keep-mine``, ``--keep-server``, ``--dismiss`` N). Works offline (the
    open offline session) and online (the copy opened with the session's password; a kept
    value is sent by a sync requested at once)."""
    action = _conflict_action(inv)
    if action is None:
        return EXIT_FAILED
    who = _account(inv)
    if who is None:
        return _needs_login(inv)
    opened = api.open_session_of(who)
    own = None
    try:
        if opened is None:
            if inv.session is None:
                inv.output(
                    "Error: log in first (online, or offline from your copy); the conflicts "
                    "are kept inside the encrypted offline copy."
                )
                return EXIT_NEEDS_SERVER
            opened = own = api.open_online(inv.session)
        code = _act_on_conflicts(inv, opened, action)
    except errors.CopyNotFound as exc:
        inv.output(f"Error: {exc}")
        return EXIT_NO_COPY
    except errors.OfflineAddonError as exc:
        inv.output(f"Error: {exc}")
        return EXIT_FAILED
    finally:
        if own is not None:
            own.close()
    if code == EXIT_OK and action[0] == "keep-mine" and inv.session is not None:
        api.request_sync(inv.session)
        inv.output("Sending it to the server now.")
    return code


def _conflict_action(inv: CommandInvocation) -> tuple[str, int] | None:
    """What ``offline conflicts`` was asked: (argument, conflict number), ``("list", 0)``
    without one; None (said why) for a bad number or more than one."""
    given = [(a.name, inv.args.get(a.name)) for a in CONFLICT_ARGUMENTS]
    chosen = [(name, value) for name, value in given if value not in (None, False)]
    if not chosen:
        return ("list", 0)
    if len(chosen) > 1:
        inv.output("Error: choose one of --reveal, --copy, --keep-mine, --keep-server, --dismiss.")
        return None
    name, value = chosen[0]
    text = str(value).strip().lstrip("#")
    if not text.isdigit() or len(text) > 9:
        inv.output(
            f"Error: --{name} takes the number of a conflict, as the list shows it (#1, #2...)."
        )
        return None
    return (name, int(text))


def _act_on_conflicts(
    inv: CommandInvocation, opened: OfflineCopySession, action: tuple[str, int]
) -> int:
    found = {entry.conflict_id: entry for entry in opened.conflicts()}
    if action[0] == "list":
        for line in describe_conflicts(list(found.values())):
            inv.output(line)
        return EXIT_OK
    name, number = action
    entry = found.get(number)
    if entry is None:
        inv.output(f"Error: there is no conflict #{number}; run 'offline conflicts' to see them.")
        return EXIT_FAILED
    where = _slot_words(entry.slot)
    if name == "reveal":
        inv.output(f"#{number} {entry.record_name}, {where}:")
        inv.output(f"  yours:    {_value_words(entry.mine, entry.slot)}")
        inv.output(f"  server's: {_value_words(entry.theirs, entry.slot)}")
        return EXIT_OK
    if name == "copy":
        return _copy_value(inv, entry)
    if name == "keep-mine":
        opened.keep_mine(number)
        inv.output(
            f"Kept your value for {entry.record_name} ({where}); it is sent to the server at "
            "the next synchronisation."
        )
        return EXIT_OK
    opened.dismiss_conflict(number)
    kept = "The server's value stays" if entry.reason == "conflict" else "Dismissed"
    inv.output(f"{kept} for {entry.record_name} ({where}); your value was dropped.")
    return EXIT_OK


def _copy_value(inv: CommandInvocation, entry: ConflictEntry) -> int:
    """Your value of a conflict onto the host's clipboard (contract 1.2), never printed; a
    host without one is told to reveal it."""
    number, where = entry.conflict_id, _slot_words(entry.slot)
    if entry.mine is None:
        inv.output(f"#{number} has no value of yours to copy ({where}).")
        return EXIT_FAILED
    copy = getattr(inv.services, "copy_to_clipboard", None)
    said = None
    if callable(copy):
        try:
            said = copy(entry.mine)
        except Exception as exc:  # a host's failure must not lose the user the value
            said = None
            inv.output(f"The clipboard failed ({type(exc).__name__}).")
    if not isinstance(said, str):
        inv.output(f"No clipboard can be used here; see the value with --reveal {number}.")
        return EXIT_FAILED
    inv.output(f"Your value for {entry.record_name} ({where}): {said}.")
    return EXIT_OK


def describe_conflicts(entries: list[ConflictEntry]) -> list[str]:
    """The lines ``offline conflicts`` lists: number, record, field and why, never a value."""
    if not entries:
        return ["No conflicts: every change you made offline is on the server or waits to go."]
    lines = [f"{len(entries):,} conflict{'s' if len(entries) != 1 else ''} to resolve:"]
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.local_time))
        lines.append(
            f"  #{entry.conflict_id} {entry.record_name}: {_slot_words(entry.slot)}, "
            f"{REASONS.get(entry.reason, entry.reason)} ({when})"
        )
    lines.append(
        "See a value with --reveal N (or --copy N); keep yours with --keep-mine N (sent at the "
        "next sync), or the server's with --keep-server N."
    )
    return lines


def _slot_words(slot: str | None) -> str:
    if slot is None:
        return "your delete of the whole record"
    if slot == RECORD_NAME:
        return "the record's name"
    return f"field '{slot}'"


def _value_words(value: str | None, slot: str | None) -> str:
    if slot is None:
        return "(the whole record)"
    return "(no such field)" if value is None else value


def describe_edits(pending: int | None, conflicts: int | None) -> str:
    """What waits from offline work, in words (counts only): empty when nothing does."""
    parts = []
    if pending:
        parts.append(
            f"{pending:,} offline change{'s' if pending != 1 else ''} wait"
            f"{'s' if pending == 1 else ''} to be sent to the server"
        )
    if conflicts:
        parts.append(
            f"{conflicts:,} conflict{'s' if conflicts != 1 else ''} to resolve "
            "(see 'offline conflicts')"
        )
    text = "; ".join(parts) + "."
    return text[:1].upper() + text[1:] if parts else ""


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
    edits = describe_edits(overview.pending_changes, overview.conflicts)
    if edits:
        lines.append(edits)
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
    or null), ``last_error`` (a sentence, or null), ``pending_changes`` and ``conflicts``
    (counts, or null when the copy is not open), ``validity_left_s``, ``next_sync_in_s``,
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
        "pending_changes": overview.pending_changes,
        "conflicts": overview.conflicts,
        "validity_left_s": overview.validity_left_s,
        "next_sync_in_s": None if overview.info is None else overview.next_sync_in_s,
        "expiry_warning": _status_expiry(overview),
    }
