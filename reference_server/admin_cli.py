"""``psr-server admin``: the server manager's commands; each change prints what it did.

Every command opens an existing data folder (``--data``); only ``init`` creates one, so a
mistyped folder is an error, not a new empty server. Secrets are read by ``prompting``, never
taken from the command line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reference_server import prompting
from reference_server.accounts import MAX_LOGIN_ATTEMPTS
from reference_server.admin import (
    DAY,
    MAX_HORIZON_DAYS,
    MAX_TEST_VALIDITY_SECONDS,
    MAX_VALIDITY_DAYS,
    Admin,
)
from reference_server.audit import AuditEntry
from reference_server.copies import REVOKED, WIPED, OfflineCopy
from reference_server.datadir import init_data_folder
from reference_server.errors import CommandError
from reference_server.records import RightInfo

ON_OFF = ("on", "off")
_DIGITS = re.compile(r"[0-9]{1,9}")
# The field that holds a record's password: never accepted as FIELD=VALUE on the command line.
PASSWORD_FIELD = "password"  # noqa: S105 - a field name, not a password


def add_admin_parser(sub: Any) -> None:
    """Add the ``admin`` sub-command tree to ``psr-server``'s sub-parsers."""
    admin = _command(sub, "admin", "manage databases, users, records and rights")
    admin.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="the server's data folder; it must exist (create one with 'init')",
    )
    cmds = admin.add_subparsers(dest="area", required=True, metavar="COMMAND")
    _command(cmds, "init", "create a new data folder at --data (owner-only, 0700)")
    _add_db_commands(cmds)
    _add_user_commands(cmds)
    _add_right_commands(cmds)
    _add_record_commands(cmds)
    _add_audit_commands(cmds)
    _add_offline_commands(cmds)
    _add_token_commands(cmds)
    imp = _command(cmds, "import", "bulk-import records from a file of JSON lines")
    imp.add_argument("db", help="database to import into")
    imp.add_argument("file", type=Path, help='one {"name": ..., "fields": {...}} per line')
    _add_grant(imp, "every imported record")
    epoch = _group(cmds, "epoch", "the feed epoch")
    _command(epoch, "bump", "start a new epoch after a restore: every client makes a full sync")
    compact = _command(cmds, "compact", "remove old tombstones (delete rows) from the feed")
    compact.add_argument(
        "--horizon-days",
        type=_whole("days", 0, MAX_HORIZON_DAYS),
        default=None,
        metavar="N",
        help="remove tombstones older than N days (default: the longest offline validity of "
        "any user, at least 7 days)",
    )


def _add_db_commands(cmds: Any) -> None:
    db = _group(cmds, "db", "databases")
    create = _command(db, "create", "create a database")
    create.add_argument("name", help="database name (letters, digits, '_', '.', '@', '-')")
    create.add_argument(
        "--offline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="allow offline copies of this database (default: allowed)",
    )
    _command(db, "list", "list the databases with their offline switch and record counts")
    offline = _command(db, "offline", "switch offline use of a database on or off")
    offline.add_argument("name", help="database name")
    offline.add_argument(
        "state",
        choices=ON_OFF,
        help="on: allow offline copies; off: forbid "
        "them (clients delete their copies at their next sync)",
    )
    editing = _command(db, "editing", "allow or forbid editing offline copies of a database")
    editing.add_argument("name", help="database name")
    editing.add_argument(
        "state",
        choices=ON_OFF,
        help="on: users may edit, create and delete "
        "records offline (under their record rights, checked when the changes "
        "are pushed); off: offline copies are read-only (new databases: off)",
    )
    attempts = _command(
        db, "login-attempts", "set how many wrong offline passwords in a row delete a copy"
    )
    attempts.add_argument("name", help="database name")
    attempts.add_argument(
        "attempts",
        type=_whole("attempts", 1, MAX_LOGIN_ATTEMPTS),
        metavar="N",
        help=f"1-{MAX_LOGIN_ATTEMPTS}: after N wrong passwords in a row the client deletes its "
        "offline copy (new databases: 10)",
    )
    delete = _command(db, "delete", "delete a database with all its records (no undo)")
    delete.add_argument("name", help="database name")
    _add_yes(delete)


def _add_user_commands(cmds: Any) -> None:
    user = _group(cmds, "user", "users")
    create = _command(user, "create", "create a user (the password is read, never an argument)")
    create.add_argument("name", help="user name (letters, digits, '_', '.', '@', '-')")
    create.add_argument(
        "--offline-right",
        action="store_true",
        help="give the offline mode right (default: not given)",
    )
    _add_validity(create, default_days=True)
    _add_password_stdin(create, "the new password")
    password = _command(user, "password", "reset a user's password and end their sessions")
    password.add_argument("name", help="user name")
    _add_password_stdin(password, "the new password")
    offline = _command(user, "offline", "give or take a user's offline right")
    offline.add_argument("name", help="user name")
    offline.add_argument(
        "state",
        choices=ON_OFF,
        help="on: give the right; off: take it (the user's copies are deleted at their next sync)",
    )
    _add_validity(offline, default_days=False)
    delete = _command(user, "delete", "delete a user with their rights and sessions (no undo)")
    delete.add_argument("name", help="user name")
    _add_yes(delete)
    _command(user, "list", "list the users with their offline right and validity")
    create_right = _command(
        user, "create-right", "give or take a user's right to create records in a database"
    )
    create_right.add_argument("name", help="user name")
    create_right.add_argument("db", help="database name")
    create_right.add_argument(
        "state",
        choices=ON_OFF,
        help="on: the user may create records "
        "there (every user may, until it is taken); off: may not",
    )


def _add_right_commands(cmds: Any) -> None:
    right = _group(cmds, "right", "per-user rights on records")
    rset = _command(right, "set", "give or take a user's rights on one record")
    rset.add_argument("db", help="database name")
    rset.add_argument("user", help="user name")
    rset.add_argument("record_id", help="record id (first column of 'record list')")
    for flag in ("read", "write", "export", "delete"):
        rset.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"give (--{flag}) or take (--no-{flag}) the {flag} right (default: unchanged)",
        )
    rlist = _command(right, "list", "show the rights in a database as a table")
    rlist.add_argument("db", help="database name")
    rlist.add_argument("--user", help="only this user's rights (default: every user's)")
    rlist.add_argument(
        "--record",
        metavar="RECORD_ID",
        help="only the rights on this record (default: on every record)",
    )


def _add_record_commands(cmds: Any) -> None:
    record = _group(cmds, "record", "records")
    add = _command(record, "add", "add one record")
    add.add_argument("db", help="database name")
    add.add_argument("name", help="the record's name")
    add.add_argument(
        "fields",
        nargs="*",
        metavar="FIELD=VALUE",
        help=f"a field of the record, e.g. username=alice; the {PASSWORD_FIELD!r} "
        "field only through --password-stdin or --password-prompt",
    )
    source = add.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the record's {PASSWORD_FIELD!r} field from the first line "
        "of stdin (default: the record has no password field)",
    )
    source.add_argument(
        "--password-prompt",
        action="store_true",
        help=f"ask for the record's {PASSWORD_FIELD!r} field without echo (default: no prompt)",
    )
    _add_grant(add, "the record")
    rlist = _command(record, "list", "list a database's records (id, revision, state, name)")
    rlist.add_argument("db", help="database name")
    for action, text in (
        ("seal", "seal a record: no user gets it, online or offline"),
        ("unseal", "unseal a record: its rights apply again"),
        ("delete", "delete a record (no undo)"),
    ):
        p = _command(record, action, text)
        p.add_argument("db", help="database name")
        p.add_argument("record_id", help="record id (first column of 'record list')")


def _add_audit_commands(cmds: Any) -> None:
    audit_group = _group(cmds, "audit", "the audit trail of record changes and offline access")
    alist = _command(
        audit_group,
        "list",
        "show who changed which record, when, and whether the change was made offline, and "
        "what users opened in their offline copies",
    )
    alist.add_argument("--user", help="only this user's entries (default: everyone's)")
    alist.add_argument("--db", help="only entries of this database (default: every database)")
    alist.add_argument(
        "--since",
        type=_moment,
        metavar="T",
        help="only entries the server wrote (or received) at or after T: UNIX seconds, or a "
        "UTC date or time like 2024-05-01 or 2024-05-01T10:30 (default: all)",
    )
    alist.add_argument(
        "--limit",
        type=_whole("entries", 1, 100_000),
        default=1000,
        metavar="N",
        help="show at most the newest N entries (default: 1000)",
    )


def _add_offline_commands(cmds: Any) -> None:
    offline = _group(cmds, "offline", "the offline copies that clients have reported")
    olist = _command(
        offline,
        "list",
        "show which users hold an offline copy on which client installation, when each last "
        "synced, and what it holds",
    )
    olist.add_argument("--db", help="only copies of this database (default: every database)")
    olist.add_argument(
        "--all",
        action="store_true",
        help="also list copies their clients have deleted (default: only copies that exist)",
    )


def _add_token_commands(cmds: Any) -> None:
    tokens = _group(cmds, "api-token", "server manager tokens for the /admin API endpoints")
    create = _command(tokens, "create", "create a token and print it (shown only this once)")
    create.add_argument("name", help="a name for the token, to revoke it by (e.g. monitoring)")
    revoke = _command(tokens, "revoke", "revoke a token")
    revoke.add_argument("name", help="the token's name")
    _command(tokens, "list", "list the tokens' names and creation times (never the tokens)")


def _moment(text: str) -> float:
    """An argparse type: UNIX seconds, or an ISO date or date-time taken as UTC."""
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]+)?", text):
        return float(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be UNIX seconds or a date like 2024-05-01 or 2024-05-01T10:30, not {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _command(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=text[0].upper() + text[1:] + "."
    )
    return parser


def _group(cmds: Any, name: str, text: str) -> Any:
    return _command(cmds, name, text).add_subparsers(dest="action", required=True, metavar="ACTION")


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", action="store_true", help="really delete (default: refuse, and delete nothing)"
    )


def _add_password_stdin(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read {what} from the first line of stdin (default: ${prompting.NEW_PASSWORD_ENV}"
        " if set, else a prompt without echo)",
    )


def _add_validity(parser: argparse.ArgumentParser, *, default_days: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    default = "7" if default_days else "unchanged"
    group.add_argument(
        "--validity-days",
        type=_whole("days", 1, MAX_VALIDITY_DAYS),
        metavar="N",
        help=f"how long a copy may be used without contact to the server, 1-{MAX_VALIDITY_DAYS}"
        f" days (default: {default})",
    )
    group.add_argument(
        "--validity-seconds",
        type=_whole("seconds", 1, MAX_TEST_VALIDITY_SECONDS),
        metavar="N",
        help=f"FOR TESTS ONLY: the validity in seconds, 1-{MAX_TEST_VALIDITY_SECONDS}, to watch "
        "a copy expire (default: not used)",
    )


def _add_grant(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="USER=rwed",
        help=f"give USER these rights on {what}: r read, w write, e export, d delete "
        "(repeatable; default: nobody)",
    )


def _whole(unit: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (argparse names the flag)."""

    def parse(text: str) -> int:
        if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of {unit} from {low} to {high}, not {text!r}"
            )
        return int(text)

    return parse


# --- running a command ---------------------------------------------------------------------


def run_admin(args: argparse.Namespace) -> int:
    """Run one ``admin`` command."""
    if args.area == "init":
        init_data_folder(args.data)
        print(
            f"created the server data folder {args.data} (readable by you only); "
            "next: create a database and users, then 'psr-server serve'"
        )
        return 0
    with Admin(args.data) as admin:
        handler = _HANDLERS[(args.area, getattr(args, "action", None))]
        handler(admin, args)
    return 0


def _db_create(admin: Admin, args: argparse.Namespace) -> None:
    admin.create_database(args.name, args.offline)
    print(f"created database {args.name} (offline {'allowed' if args.offline else 'not allowed'})")


def _db_list(admin: Admin, _args: argparse.Namespace) -> None:
    for db in admin.list_databases():
        state = "offline allowed" if db.offline_allowed else "offline off"
        editing = "editing on" if db.offline_editing else "editing off"
        attempts = f"{db.offline_login_attempts} login attempts"
        print(f"{db.name}\t{state}\t{db.record_count} records\t{editing}\t{attempts}")


def _db_login_attempts(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_database_login_attempts(args.name, args.attempts)
    print(
        f"offline copies of database {args.name} are now deleted after "
        f"{_count(args.attempts, 'wrong password')} in a row (clients learn it at their next "
        "sync)"
    )


def _db_offline(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_database_offline(args.name, args.state == "on")
    print(f"offline use of database {args.name} is now {args.state}")


def _db_editing(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_database_editing(args.name, args.state == "on")
    if args.state == "on":
        print(
            f"offline editing of database {args.name} is now on: users may change their "
            "offline copies; the changes are pushed under their record rights"
        )
    else:
        print(
            f"offline editing of database {args.name} is now off: offline copies are "
            "read-only; changes made offline before are still pushed"
        )


def _db_delete(admin: Admin, args: argparse.Namespace) -> None:
    _require_yes(args, f"database {args.name}")
    gone = admin.delete_database(args.name)
    print(
        f"deleted database {args.name}: {_count(gone.records, 'record')} with their rights "
        f"and feeds; {_count(gone.sessions, 'session')} ended"
    )
    print(
        f"Offline copies of database {args.name} can no longer sync; each stops opening when "
        "its offline validity has passed since its last sync."
    )


def _user_create(admin: Admin, args: argparse.Namespace) -> None:
    password = prompting.new_password(args.password_stdin, args.name)
    user_id = admin.create_user(
        args.name,
        password,
        offline_right=args.offline_right,
        validity_days=args.validity_days,
        validity_seconds=args.validity_seconds,
    )
    right = "with" if args.offline_right else "without"
    validity = admin.user(args.name).validity_seconds
    print(
        f"created user {args.name} (id {user_id}) {right} offline right, "
        f"validity {_duration(validity)}"
    )


def _user_password(admin: Admin, args: argparse.Namespace) -> None:
    admin.user(args.name)  # an unknown name fails before anyone types a password
    ended = admin.reset_password(args.name, prompting.new_password(args.password_stdin, args.name))
    print(
        f"set a new password for user {args.name}; {_count(ended, 'session')} ended "
        "(the user logs in again with the new password)"
    )


def _user_offline(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_user_offline(
        args.name, args.state == "on", args.validity_days, validity_seconds=args.validity_seconds
    )
    extra = ""
    if args.validity_days is not None or args.validity_seconds is not None:
        extra = f", validity {_duration(admin.user(args.name).validity_seconds)}"
    print(f"offline right of user {args.name} is now {args.state}{extra}")


def _user_delete(admin: Admin, args: argparse.Namespace) -> None:
    _require_yes(args, f"user {args.name}")
    gone = admin.delete_user(args.name)
    print(
        f"deleted user {args.name}: {_count(gone.rights, 'record right')} removed, "
        f"{_count(gone.sessions, 'session')} ended"
    )
    print(
        f"Offline copies of user {args.name} can no longer sync; each stops opening "
        f"{_duration(gone.validity_seconds)} after its last sync."
    )


def _user_list(admin: Admin, _args: argparse.Namespace) -> None:
    for user in admin.list_users():
        right = "offline" if user.offline_right else "no-offline"
        print(f"{user.name}\t{user.id}\t{right}\t{_duration(user.validity_seconds)}")


def _right_set(admin: Admin, args: argparse.Namespace) -> None:
    rights = admin.set_rights(
        args.db,
        args.user,
        args.record_id,
        read=args.read,
        write=args.write,
        export=args.export,
        delete=args.delete,
    )
    held = (rights.read, rights.write, rights.export, rights.delete)
    letters = "".join(c for c, on in zip("rwed", held, strict=True) if on) or "none"
    print(f"rights of {args.user} on record {args.record_id} in {args.db}: {letters}")


def _user_create_right(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_create_right(args.db, args.name, args.state == "on")
    may = "may" if args.state == "on" else "may not"
    print(f"user {args.name} {may} create records in {args.db}")


def _right_list(admin: Admin, args: argparse.Namespace) -> None:
    rights = admin.list_rights(args.db, user=args.user, record_id=args.record)
    if not rights:
        whose = f" for {args.user}" if args.user else ""
        on = f" on record {args.record}" if args.record else ""
        print(f"no rights in {args.db}{whose}{on}")
        return
    print_table(
        ["USER", "RECORD ID", "READ", "WRITE", "EXPORT", "DELETE", "STATE", "NAME"],
        [_right_row(right) for right in rights],
    )


def _right_row(right: RightInfo) -> list[str]:
    yes_no = ["yes" if on else "no" for on in (right.read, right.write, right.export, right.delete)]
    return [
        right.user,
        right.record_id,
        *yes_no,
        "sealed" if right.sealed else "open",
        right.record_name,
    ]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under a header in columns two spaces apart (the last one not padded)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def _record_add(admin: Admin, args: argparse.Namespace) -> None:
    fields = _parse_fields(args.fields)
    if args.password_stdin:
        fields[PASSWORD_FIELD] = prompting.read_stdin_line()
    elif args.password_prompt:
        fields[PASSWORD_FIELD] = prompting.prompt_twice(
            f"Password of record {args.name}: ", "no terminal: use --password-stdin"
        )
    grant = _parse_grants(args.grant)
    record_id = admin.add_record(args.db, args.name, fields, grant)
    names = ", ".join(fields) or "none"
    print(
        f"added record {args.name} (id {record_id}) to {args.db}; fields: {names}; "
        f"rights: {_grants_text(grant)}"
    )


def _parse_fields(items: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        if not sep or not key:
            # Not quoted back: a mistyped field may be a secret.
            raise CommandError(f"field {number} must look like NAME=VALUE; nothing added")
        if key.lower() == PASSWORD_FIELD:
            raise CommandError(
                f"give the {PASSWORD_FIELD!r} field with --password-stdin or --password-prompt,"
                " not on the command line (other users can see command lines); nothing added"
            )
        if key in fields:
            raise CommandError(f"the field {key!r} is given twice; nothing added")
        fields[key] = value
    return fields


def _record_seal(admin: Admin, args: argparse.Namespace) -> None:
    admin.seal_record(args.db, args.record_id)
    print(f"sealed record {args.record_id} in {args.db}")


def _record_unseal(admin: Admin, args: argparse.Namespace) -> None:
    admin.unseal_record(args.db, args.record_id)
    print(f"unsealed record {args.record_id} in {args.db}")


def _record_delete(admin: Admin, args: argparse.Namespace) -> None:
    admin.delete_record(args.db, args.record_id)
    print(f"deleted record {args.record_id} in {args.db}")


def _record_list(admin: Admin, args: argparse.Namespace) -> None:
    for rid, rev, name, sealed in admin.list_records(args.db):
        print(f"{rid}\trev {rev}\t{'sealed' if sealed else 'open'}\t{name}")


def _import(admin: Admin, args: argparse.Namespace) -> None:
    grant = _parse_grants(args.grant)
    items = []
    with args.file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise CommandError(
                    f"{args.file}:{number}: not valid JSON; nothing imported"
                ) from exc
            if not isinstance(item, dict):
                raise CommandError(f"{args.file}:{number}: not a JSON object; nothing imported")
            items.append(item)
    ids = admin.import_records(args.db, items, grant=grant)
    print(f"imported {len(ids)} records into {args.db} (rights: {_grants_text(grant)})")


def _parse_grants(items: Sequence[str]) -> dict[str, str]:
    grant: dict[str, str] = {}
    for item in items:
        user, sep, rights = item.partition("=")
        if not sep or not user:
            raise CommandError(f"--grant {item!r} must look like USER=rwe")
        grant[user] = rights
    return grant


def _grants_text(grant: dict[str, str]) -> str:
    return ", ".join(f"{u}={r}" for u, r in grant.items()) or "nobody"


def _audit_list(admin: Admin, args: argparse.Namespace) -> None:
    entries = admin.audit_entries(args.user, args.db, args.since, args.limit)
    if not entries:
        print("no audit entries" + (" match" if args.user or args.db or args.since else ""))
        return
    print_table(
        ["TIME (UTC)", "USER", "DATABASE", "KIND", "RECORD ID", "FIELD", "REV", "MADE", "CLIENT"],
        [_audit_row(entry) for entry in entries],
    )


def _audit_row(entry: AuditEntry) -> list[str]:
    made = "online"
    if entry.offline and entry.local_time is not None:
        made = f"offline {_utc_seconds(entry.local_time)} (client clock)"
    rev = "" if entry.rev is None else str(entry.rev)
    if entry.base_rev is not None:
        rev = f"{entry.base_rev}->{rev}" if rev else f"{entry.base_rev}"
    return [
        _utc_seconds(entry.at),
        entry.user_name,
        entry.db,
        entry.kind,
        _shown(entry.record_id or "-"),
        _shown(entry.field or "-"),
        rev or "-",
        made,
        _shown(entry.client_id or "-"),
    ]


def _shown(text: str) -> str:
    """Text a client chose (ids, field names) as safe to print: a control character (say, a
    terminal escape) becomes '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _utc_seconds(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def _offline_list(admin: Admin, args: argparse.Namespace) -> None:
    found = admin.offline_copies(args.db, include_wiped=args.all)
    if not found:
        print("no offline copies" + (f" of database {args.db}" if args.db else "") + " reported")
        return
    print_table(
        [
            "USER",
            "CLIENT",
            "DATABASE",
            "LAST SYNC (UTC)",
            "RECORDS",
            "PENDING CHANGES",
            "UNPUSHED LOG",
            "STATE",
        ],
        [_copy_row(copy) for copy in found],
    )


def _copy_row(copy: OfflineCopy) -> list[str]:
    if copy.state == REVOKED and copy.why in ("user deleted", "database deleted"):
        state = (
            f"revoked {_utc_seconds(copy.changed_at)} ({copy.why}): cannot sync; stops "
            "opening when its validity has passed since its last sync"
        )
    elif copy.state == REVOKED:
        state = f"revoked {_utc_seconds(copy.changed_at)} ({copy.why}): deleted at its next sync"
    elif copy.state == WIPED:
        state = f"deleted by its client {_utc_seconds(copy.changed_at)}"
    else:
        state = "present" if copy.complete else "present, incomplete (a first sync broke off)"
    return [
        copy.user_name,
        _shown(copy.client_id),
        copy.db,
        _utc_seconds(copy.last_sync),
        str(copy.record_count),
        str(copy.pending_changes),
        str(copy.unpushed_log_entries),
        state,
    ]


def _token_create(admin: Admin, args: argparse.Namespace) -> None:
    token = admin.create_manager_token(args.name)
    print(token)
    print(
        f"created server manager token {args.name}; it is shown only this once. Send it as "
        "'Authorization: Bearer <token>' to the /api/v1/admin endpoints; revoke it with "
        f"'api-token revoke {args.name}'",
        file=sys.stderr,
    )


def _token_revoke(admin: Admin, args: argparse.Namespace) -> None:
    admin.revoke_manager_token(args.name)
    print(f"revoked server manager token {args.name}")


def _token_list(admin: Admin, _args: argparse.Namespace) -> None:
    tokens = admin.manager_tokens()
    if not tokens:
        print("no server manager tokens")
    for token in tokens:
        print(f"{token.label}\tcreated {_utc_seconds(token.created_at)} UTC")


def _epoch_bump(admin: Admin, _args: argparse.Namespace) -> None:
    epoch = admin.bump_epoch()
    print(
        f"started a new feed epoch ({epoch}): every client makes a full sync at its next "
        "sync, as it should after the server was restored from a backup"
    )


def _compact(admin: Admin, args: argparse.Namespace) -> None:
    result = admin.compact(args.horizon_days)
    age = f" older than {_duration(result.horizon_seconds)}" if result.horizon_seconds else ""
    if result.newest_dropped_at is None:
        print(f"Nothing to compact: there are no tombstones{age}.")
        return
    print(
        f"Compacted the change feed: {_count(result.dropped, 'tombstone')}{age} removed; "
        f"clients that last synced before {_utc(result.newest_dropped_at)} make a full sync "
        "at their next sync."
    )


def _require_yes(args: argparse.Namespace, what: str) -> None:
    if not args.yes:
        raise CommandError(f"deleting {what} cannot be undone; add --yes to delete it")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: int) -> str:
    """Whole days as days, anything else (test validities) as seconds."""
    if seconds % DAY == 0:
        return _count(seconds // DAY, "day")
    return _count(seconds, "second")


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


_HANDLERS: dict[tuple[str, str | None], Callable[[Admin, argparse.Namespace], None]] = {
    ("db", "create"): _db_create,
    ("db", "list"): _db_list,
    ("db", "offline"): _db_offline,
    ("db", "editing"): _db_editing,
    ("db", "login-attempts"): _db_login_attempts,
    ("db", "delete"): _db_delete,
    ("user", "create"): _user_create,
    ("user", "password"): _user_password,
    ("user", "offline"): _user_offline,
    ("user", "delete"): _user_delete,
    ("user", "list"): _user_list,
    ("user", "create-right"): _user_create_right,
    ("right", "set"): _right_set,
    ("right", "list"): _right_list,
    ("record", "add"): _record_add,
    ("record", "seal"): _record_seal,
    ("record", "unseal"): _record_unseal,
    ("record", "delete"): _record_delete,
    ("record", "list"): _record_list,
    ("audit", "list"): _audit_list,
    ("offline", "list"): _offline_list,
    ("api-token", "create"): _token_create,
    ("api-token", "revoke"): _token_revoke,
    ("api-token", "list"): _token_list,
    ("import", None): _import,
    ("epoch", "bump"): _epoch_bump,
    ("compact", None): _compact,
}
