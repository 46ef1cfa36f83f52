"""The server manager as a Python API: used by ``psr-server admin`` and by tests.

Users and databases are named; record ids are the server's. Every method runs in its own
transaction, and every change to records or rights writes its feed rows in that transaction.
Errors are :class:`~reference_server.errors.ApiError` with a readable ``detail``. An
:class:`Admin` opens an existing data folder only; ``datadir.init_data_folder`` creates one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_server import accounts, audit, copies, digests, feed, records
from reference_server.datadir import open_data_folder
from reference_server.db import connect, initialise, new_epoch, set_meta, transaction
from reference_server.errors import bad_request

DAY = 86_400
MIN_HORIZON_DAYS = 7
MAX_HORIZON_DAYS = 3650
MAX_VALIDITY_DAYS = 365
# Validity in seconds exists so that tests can watch a copy expire; a day is plenty for that.
MAX_TEST_VALIDITY_SECONDS = DAY


@dataclass(frozen=True)
class CompactionResult:
    """What :meth:`Admin.compact` did."""

    dropped: int
    """Delete rows (tombstones) removed."""
    horizon_seconds: int
    """Tombstones older than this were removed."""
    newest_dropped_at: float | None
    """When the newest removed tombstone was written: a client whose last sync is older may
    make a full sync at its next one (None when nothing was removed)."""


def parse_grant(text: str) -> records.Rights:
    """``"rwed"``-style rights (any of r read, w write, e export, d delete)."""
    if not set(text) <= set("rwed"):
        raise bad_request(f"Rights {text!r} must be made of the letters r, w, e and d.")
    return records.Rights("r" in text, "w" in text, "e" in text, "d" in text)


class Admin:
    """Manage databases, users, records and rights in ``data_dir/server.sqlite3``."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        """Open the existing data folder ``data_dir`` (``DataFolderError`` if it is not one;
        group and other access to it are taken away)."""
        self._conn = connect(open_data_folder(Path(data_dir)))
        initialise(self._conn)
        self._clock = clock

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- databases and users ---------------------------------------------------------------

    def create_database(self, name: str, offline_allowed: bool = True) -> None:
        """Create a database; ``offline_allowed`` is its offline switch."""
        accounts.create_database(self._conn, name, offline_allowed)

    def list_databases(self) -> list[accounts.DatabaseInfo]:
        """All databases."""
        return accounts.list_databases(self._conn)

    def set_database_offline(self, name: str, allowed: bool) -> None:
        """Switch offline use of a database on or off."""
        accounts.set_database_offline(self._conn, name, allowed, self._clock())

    def set_database_editing(self, name: str, allowed: bool) -> None:
        """Allow or forbid editing offline copies of a database (clients see it in the offline
        policy; changes already made offline are still pushed, under the record rights)."""
        accounts.set_database_editing(self._conn, name, allowed)

    def set_database_login_attempts(self, name: str, attempts: int) -> None:
        """Set how many wrong offline passwords in a row (1-1000, default 10) make a client
        delete its copy of a database (clients learn it at their next sync)."""
        accounts.set_database_login_attempts(self._conn, name, attempts)

    def database_login_attempts(self, name: str) -> int:
        """The database's limit of wrong offline passwords in a row."""
        return accounts.database_login_attempts(self._conn, name)

    def delete_database(self, name: str) -> accounts.DatabaseDeletion:
        """Delete a database with its records, rights, feeds and sessions (no undo)."""
        return accounts.delete_database(self._conn, name, self._clock())

    def create_user(
        self,
        name: str,
        password: str,
        offline_right: bool = False,
        validity_days: int | None = None,
        *,
        validity_seconds: int | None = None,
    ) -> str:
        """Create a user; return the user id.

        The offline validity is ``validity_days`` whole days (1-365, default 7), or, for tests
        that watch a copy expire, ``validity_seconds`` (1-86400).
        """
        seconds = offline_validity(validity_days, validity_seconds)
        return accounts.create_user(
            self._conn,
            name,
            password,
            offline_right=offline_right,
            validity_seconds=accounts.DEFAULT_VALIDITY_DAYS * DAY if seconds is None else seconds,
        )

    def list_users(self) -> list[accounts.UserInfo]:
        """All users."""
        return accounts.list_users(self._conn)

    def user(self, name: str) -> accounts.UserInfo:
        """The user with this name (404 ``unknown_user`` if there is none)."""
        return accounts.user_by_name(self._conn, name)

    def user_id(self, name: str) -> str:
        """The id of the user with this name."""
        return accounts.user_by_name(self._conn, name).id

    def set_user_offline(
        self,
        name: str,
        enabled: bool,
        validity_days: int | None = None,
        *,
        validity_seconds: int | None = None,
    ) -> None:
        """Set the user's offline mode right and (optionally) the offline validity, in whole
        days (1-365) or, for tests, in seconds (1-86400)."""
        seconds = offline_validity(validity_days, validity_seconds)
        accounts.set_user_offline(self._conn, self.user_id(name), enabled, seconds, self._clock())

    def set_password(self, name: str, password: str) -> None:
        """Set a user's password; the user's sessions stay valid."""
        accounts.set_password(self._conn, self.user_id(name), password)

    def reset_password(self, name: str, password: str) -> int:
        """Give a user a new password and end the user's sessions (as after a leaked
        password); return how many sessions were still valid."""
        user_id = self.user_id(name)
        accounts.set_password(self._conn, user_id, password)
        return accounts.end_sessions(self._conn, user_id, self._clock())

    def delete_user(self, name: str) -> accounts.UserDeletion:
        """Delete a user with their rights, feeds and sessions (no undo); records stay."""
        return accounts.delete_user(self._conn, self.user_id(name), self._clock())

    # --- records and rights ----------------------------------------------------------------

    def create_record(
        self, db: str, name: str, fields: Mapping[str, str], owner: str | None = None
    ) -> str:
        """Create one record (owner, by name, gets rwe); return its id."""
        accounts.require_database(self._conn, db)
        name, clean = records.check_content(name, dict(fields))
        owner_id = None if owner is None else self.user_id(owner)
        record = records.create_record(self._conn, db, name, clean, self._clock(), owner_id)
        return str(record["id"])

    def import_records(
        self, db: str, items: Iterable[Mapping[str, Any]], grant: Mapping[str, str] | None = None
    ) -> list[str]:
        """Bulk-create records from ``{"name", "fields"}`` dicts in one transaction.

        ``grant`` maps user names to rights letters, e.g. ``{"alice": "rwed"}``.
        """
        accounts.require_database(self._conn, db)
        grants = {self.user_id(u): parse_grant(r) for u, r in (grant or {}).items()}
        checked = [
            records.check_content(item.get("name"), item.get("fields", {})) for item in items
        ]
        return records.import_records(self._conn, db, checked, grants, self._clock())

    def add_record(
        self,
        db: str,
        name: str,
        fields: Mapping[str, str],
        grant: Mapping[str, str] | None = None,
    ) -> str:
        """Create one record and give users rights on it (``{"alice": "rwe"}``); return its
        id."""
        [record_id] = self.import_records(db, [{"name": name, "fields": dict(fields)}], grant)
        return record_id

    def update_record(
        self,
        db: str,
        record_id: str,
        name: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> int:
        """Change a record (bumps rev, writes feed rows); return the new rev."""
        row = records.get_any(self._conn, db, record_id)
        name, clean = records.check_content(
            row["name"] if name is None else name, row["fields"] if fields is None else dict(fields)
        )
        result = records.update_record(
            self._conn, db, record_id, self._clock(), name=name, fields=clean
        )
        return int(result["rev"])

    def set_rights(
        self,
        db: str,
        user: str,
        record_id: str,
        *,
        read: bool | None = None,
        write: bool | None = None,
        export: bool | None = None,
        delete: bool | None = None,
    ) -> records.Rights:
        """Set a user's rights on a record (None keeps a right as it is); return them."""
        return records.set_rights(
            self._conn,
            db,
            record_id,
            self.user_id(user),
            self._clock(),
            read=read,
            write=write,
            export=export,
            delete=delete,
        )

    def set_create_right(self, db: str, user: str, allowed: bool) -> None:
        """Give or take a user's right to create records in a database (every user has it
        until it is taken)."""
        accounts.require_database(self._conn, db)
        records.set_create_right(self._conn, db, self.user_id(user), allowed)

    def create_allowed(self, db: str, user: str) -> bool:
        """Whether a user may create records in a database."""
        accounts.require_database(self._conn, db)
        return records.create_allowed(self._conn, db, self.user_id(user))

    def audit_entries(
        self,
        user: str | None = None,
        db: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[audit.AuditEntry]:
        """The newest ``limit`` entries of the audit trail (oldest first), optionally of one
        user (by name: entries stay when the user is deleted), one database, and at or after
        ``since`` (UNIX seconds)."""
        return audit.list_entries(self._conn, user_name=user, db=db, since=since, limit=limit)

    def offline_copies(
        self, db: str | None = None, *, include_wiped: bool = False
    ) -> list[copies.OfflineCopy]:
        """The offline copies clients have reported (optionally of one database), with what
        the server did to them since; copies their clients wiped only when asked."""
        return copies.list_copies(self._conn, db=db, include_wiped=include_wiped)

    def create_manager_token(self, name: str) -> str:
        """A new server manager API token named ``name`` (for ``/admin/...`` endpoints); it
        is shown once, only its hash is kept."""
        return accounts.create_manager_token(self._conn, name, self._clock())

    def revoke_manager_token(self, name: str) -> None:
        """Revoke the server manager API token named ``name``."""
        accounts.revoke_manager_token(self._conn, name)

    def manager_tokens(self) -> list[accounts.ManagerToken]:
        """The server manager API tokens (names and creation times)."""
        return accounts.list_manager_tokens(self._conn)

    def seal_record(self, db: str, record_id: str) -> None:
        """Seal a record: it leaves every feed (reason ``sealed``) and every listing."""
        records.set_sealed(self._conn, db, record_id, True, self._clock())

    def unseal_record(self, db: str, record_id: str) -> None:
        """Unseal a record: it comes back to the feeds of users who may export it."""
        records.set_sealed(self._conn, db, record_id, False, self._clock())

    def delete_record(self, db: str, record_id: str) -> None:
        """Delete a record (reason ``deleted`` in every feed that held it)."""
        records.delete_record(self._conn, db, record_id, self._clock())

    def list_records(self, db: str) -> list[tuple[str, int, str, bool]]:
        """Every record of a database as (id, rev, name, sealed)."""
        accounts.require_database(self._conn, db)
        return records.list_all(self._conn, db)

    def list_rights(
        self, db: str, user: str | None = None, record_id: str | None = None
    ) -> list[records.RightInfo]:
        """The rights in a database, optionally only those of one user and/or one record."""
        accounts.require_database(self._conn, db)
        user_id = None if user is None else self.user_id(user)
        return records.list_rights(self._conn, db, user_id=user_id, record_id=record_id)

    # --- feed maintenance and ground truth -------------------------------------------------

    def bump_epoch(self) -> str:
        """Start a new epoch (as after a restore from backup): older cursors get 410."""
        epoch = new_epoch()
        with transaction(self._conn):
            set_meta(self._conn, "epoch", epoch)
        return epoch

    def compact(self, horizon_days: int | None = None) -> CompactionResult:
        """Drop delete rows (tombstones) older than the horizon, in whole days (0-3650).

        The default horizon is the longest offline validity of any user, at least 7 days, so
        that a copy still usable offline never misses a delete.
        """
        if horizon_days is None:
            horizon_s = max(accounts.longest_validity(self._conn), MIN_HORIZON_DAYS * DAY)
        else:
            _check_whole("horizon_days", horizon_days, 0, MAX_HORIZON_DAYS)
            horizon_s = horizon_days * DAY
        with transaction(self._conn):
            dropped, newest = feed.compact(self._conn, self._clock() - horizon_s)
        return CompactionResult(dropped, horizon_s, newest)

    def exportable_view(self, db: str, user: str) -> dict[str, tuple[int, str, dict[str, str]]]:
        """Ground truth from records and rights: {id: (rev, name, fields)} the user may export."""
        return records.exportable_view(self._conn, db, self.user_id(user))

    def feed_rows(self, db: str, user: str) -> list[tuple[int, str, str, int, str | None]]:
        """The user's raw feed rows (seq, op, record id, rev, reason) in seq order (for tests)."""
        rows = self._conn.execute(
            "SELECT seq, op, record_id, rev, reason FROM feed WHERE user_id = ? AND db = ?"
            " ORDER BY seq",
            (self.user_id(user), db),
        ).fetchall()
        return [tuple(r) for r in rows]

    def feed_digest(self, db: str, user: str) -> dict[str, object]:
        """The user's digest as the last feed page carries it (the maintained one)."""
        return feed.digest(self._conn, self.user_id(user), db)

    def recompute_feed_digest(self, db: str, user: str) -> dict[str, object]:
        """The user's digest computed from scratch over the feed rows (ground truth: equals
        :meth:`feed_digest` unless the maintenance is broken)."""
        return digests.as_wire(*digests.recompute(self._conn, self.user_id(user), db))

    @property
    def connection(self) -> sqlite3.Connection:
        """The admin's own connection (tests use it to inspect the file)."""
        return self._conn


def offline_validity(days: int | None, seconds: int | None = None) -> int | None:
    """The offline validity in seconds, from whole days (1-365) or test seconds (1-86400);
    None when neither is given."""
    if days is not None and seconds is not None:
        raise bad_request("Give the offline validity in days or in seconds, not both.")
    if seconds is not None:
        _check_whole("validity_seconds", seconds, 1, MAX_TEST_VALIDITY_SECONDS)
        return seconds
    if days is None:
        return None
    _check_whole("validity_days", days, 1, MAX_VALIDITY_DAYS)
    return days * DAY


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    # bool is an int to Python, but True days is a mistake, not one day.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}, not {value!r}.")
