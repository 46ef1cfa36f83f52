"""``psr-server admin``: the server manager's commands; each change prints what it did."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from reference_server.admin import Admin
from reference_server.errors import bad_request

ON_OFF = ("on", "off")


def add_admin_parser(sub: Any) -> None:
    """Add the ``admin`` sub-command tree to ``psr-server``'s sub-parsers."""
    admin = sub.add_parser("admin", help="manage databases, users, records and rights")
    admin.add_argument("--data", type=Path, required=True, help="data folder of the server")
    cmds = admin.add_subparsers(dest="area", required=True)

    db = cmds.add_parser("db", help="databases").add_subparsers(dest="action", required=True)
    create = db.add_parser("create", help="create a database")
    create.add_argument("name")
    create.add_argument("--offline", action=argparse.BooleanOptionalAction, default=True,
                        help="allow offline copies (default: allowed)")
    db.add_parser("list", help="list databases")
    offline = db.add_parser("offline", help="switch offline use on or off")
    offline.add_argument("name")
    offline.add_argument("state", choices=ON_OFF)

    user = cmds.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    ucreate = user.add_parser("create", help="create a user")
    ucreate.add_argument("name")
    ucreate.add_argument("--offline-right", action="store_true", help="grant offline mode")
    ucreate.add_argument("--validity-days", type=float, default=7.0,
                         help="offline validity in days (default 7)")
    ucreate.add_argument("--password-stdin", action="store_true",
                         help="read the password from stdin (else $PSR_NEW_PASSWORD or a prompt)")
    uoffline = user.add_parser("offline", help="set a user's offline right")
    uoffline.add_argument("name")
    uoffline.add_argument("state", choices=ON_OFF)
    uoffline.add_argument("--validity-days", type=float, default=None)
    user.add_parser("list", help="list users")

    right = cmds.add_parser("right", help="record rights").add_subparsers(dest="action",
                                                                          required=True)
    rset = right.add_parser("set", help="set a user's rights on a record")
    for arg in ("db", "user", "record_id"):
        rset.add_argument(arg)
    for flag in ("read", "write", "export"):
        rset.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None)

    record = cmds.add_parser("record", help="records").add_subparsers(dest="action",
                                                                     required=True)
    for action in ("seal", "unseal", "delete"):
        p = record.add_parser(action, help=f"{action} a record")
        p.add_argument("db")
        p.add_argument("record_id")
    rlist = record.add_parser("list", help="list a database's records")
    rlist.add_argument("db")

    imp = cmds.add_parser("import", help="bulk-import records from JSON lines")
    imp.add_argument("db")
    imp.add_argument("file", type=Path, help='one {"name": ..., "fields": {...}} per line')
    imp.add_argument("--grant", action="append", default=[], metavar="USER=rwe",
                     help="give USER these rights on every imported record (repeatable)")

    epoch = cmds.add_parser("epoch", help="feed epoch").add_subparsers(dest="action",
                                                                      required=True)
    epoch.add_parser("bump", help="new epoch, as after a restore: old cursors get 410")
    compact = cmds.add_parser("compact", help="drop tombstones older than the horizon")
    compact.add_argument("--horizon-days", type=float, default=None)


def run_admin(args: argparse.Namespace) -> int:
    """Run one ``admin`` command."""
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
        print(f"{db.name}\t{state}\t{db.record_count} records")


def _db_offline(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_database_offline(args.name, args.state == "on")
    print(f"offline use of database {args.name} is now {args.state}")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    env = os.environ.get("PSR_NEW_PASSWORD")
    if env:
        return env
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise bad_request("The two passwords differ; nothing was created.")
    return first


def _user_create(admin: Admin, args: argparse.Namespace) -> None:
    user_id = admin.create_user(args.name, _read_password(args), offline_right=args.offline_right,
                                validity_days=args.validity_days)
    right = "with" if args.offline_right else "without"
    print(f"created user {args.name} (id {user_id}) {right} offline right, "
          f"validity {args.validity_days:g} days")


def _user_offline(admin: Admin, args: argparse.Namespace) -> None:
    admin.set_user_offline(args.name, args.state == "on", args.validity_days)
    extra = "" if args.validity_days is None else f", validity {args.validity_days:g} days"
    print(f"offline right of user {args.name} is now {args.state}{extra}")


def _user_list(admin: Admin, _args: argparse.Namespace) -> None:
    for user in admin.list_users():
        right = "offline" if user.offline_right else "no-offline"
        print(f"{user.name}\t{user.id}\t{right}\t{user.validity_seconds / 86400:g} days")


def _right_set(admin: Admin, args: argparse.Namespace) -> None:
    r, w, e = admin.set_rights(args.db, args.user, args.record_id, read=args.read,
                               write=args.write, export=args.export)
    letters = "".join(c for c, on in zip("rwe", (r, w, e), strict=True) if on) or "none"
    print(f"rights of {args.user} on record {args.record_id} in {args.db}: {letters}")


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
    grant: dict[str, str] = {}
    for item in args.grant:
        user, sep, rights = item.partition("=")
        if not sep or not user:
            raise bad_request(f"--grant {item!r} must look like USER=rwe.")
        grant[user] = rights
    items = []
    with args.file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise bad_request(
                    f"{args.file}:{number}: not valid JSON; nothing imported.") from exc
            if not isinstance(item, dict):
                raise bad_request(f"{args.file}:{number}: not a JSON object; nothing imported.")
            items.append(item)
    ids = admin.import_records(args.db, items, grant=grant)
    granted = ", ".join(f"{u}={r}" for u, r in grant.items()) or "nobody"
    print(f"imported {len(ids)} records into {args.db} (rights: {granted})")


def _epoch_bump(admin: Admin, _args: argparse.Namespace) -> None:
    print(f"new epoch {admin.bump_epoch()}: every older cursor now gets 410 cursor_expired")


def _compact(admin: Admin, args: argparse.Namespace) -> None:
    dropped, horizon = admin.compact(args.horizon_days)
    print(f"dropped {dropped} tombstones; cursors before position {horizon} now get 410")


_HANDLERS = {
    ("db", "create"): _db_create, ("db", "list"): _db_list, ("db", "offline"): _db_offline,
    ("user", "create"): _user_create, ("user", "offline"): _user_offline,
    ("user", "list"): _user_list, ("right", "set"): _right_set,
    ("record", "seal"): _record_seal, ("record", "unseal"): _record_unseal,
    ("record", "delete"): _record_delete, ("record", "list"): _record_list,
    ("import", None): _import, ("epoch", "bump"): _epoch_bump, ("compact", None): _compact,
}
