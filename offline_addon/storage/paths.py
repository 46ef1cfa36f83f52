"""Where offline copies live and what their files are called.

File names are derived from a hash, never taken from a server string, so that no database or
user name can reach the file system (no traversal, no odd characters).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import appdirs

from offline_addon.errors import ConfigurationError

APP_NAME = "Password Safe and Repository Client"
APP_AUTHOR = "MATESO"
FOLDER_NAME = "OfflineDB"
DB_SUFFIX = ".offline.db"
SIDECAR_SUFFIX = ".json"
PARTIAL_SUFFIX = ".offline.db.partial"
CREATING_SUFFIX = ".creating"
"""A copy file being made (keyed, migrated) before it gets its name; see ``OfflineCopy.create``."""
LOCK_SUFFIX = ".lock"
ATTEMPTS_SUFFIX = ".attempts"
MOVE_IN_SUFFIX = ".move-in.json"
MOVE_OUT_SUFFIX = ".move-out.json"
MOVING_SUFFIX = ".moving"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_folder() -> Path:
    """The system default folder for offline copies (absolute).

    appdirs answers a relative path when e.g. ``XDG_DATA_HOME`` is set to one; such a path
    would move with the working directory, so it is anchored under the home folder instead.
    """
    base = Path(appdirs.user_data_dir(APP_NAME, APP_AUTHOR, roaming=True)).expanduser()
    if not base.is_absolute():
        base = Path.home() / base
    return base / FOLDER_NAME


def resolve_folder(setting: str) -> Path:
    """The folder for the ``database_path`` setting: empty means :func:`default_folder`.

    Raises ConfigurationError for a relative path (it would depend on the working directory).
    """
    text = setting.strip()
    if not text:
        return default_folder()
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise ConfigurationError(
            "The offline database folder must be an absolute path (for example "
            "/home/you/OfflineDB); change the 'database_path' setting."
        )
    return path


def normalise_server_url(server_url: str) -> str:
    """The server URL in one canonical spelling (lower-case scheme and host, no default
    port, no trailing slash), so that equivalent spellings share one copy."""
    try:
        parts = urlsplit(server_url.strip())
        port = parts.port
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError(
            "The server address is not a valid URL; check the server address of your login."
        ) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def copy_id(server_url: str, database: str, username: str, client_id: str) -> str:
    """The copy's identity: a hex SHA-256 over server, database, user and client."""
    # JSON keeps the parts unambiguous (no separator can be smuggled into a name).
    key = json.dumps([normalise_server_url(server_url), database, username, client_id])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CopyPaths:
    """The files of one offline copy inside ``folder``."""

    folder: Path
    copy_id: str

    @classmethod
    def for_copy(
        cls, folder: Path, server_url: str, database: str, username: str, client_id: str
    ) -> CopyPaths:
        """The paths of the copy for this server, database, user and client."""
        return cls(folder, copy_id(server_url, database, username, client_id))

    @property
    def db(self) -> Path:
        """The encrypted SQLCipher file."""
        return self.folder / f"{self.copy_id}{DB_SUFFIX}"

    @property
    def sidecar(self) -> Path:
        """The non-secret JSON that lets a login screen list the copy."""
        return self.folder / f"{self.copy_id}{SIDECAR_SUFFIX}"

    @property
    def partial(self) -> Path:
        """A fresh copy being filled by a full sync; replaces :attr:`db` when complete."""
        return self.folder / f"{self.copy_id}{PARTIAL_SUFFIX}"

    @property
    def lock(self) -> Path:
        """The writer lock's file (see :mod:`offline_addon.storage.copy_lock`)."""
        return self.folder / f"{self.copy_id}{LOCK_SUFFIX}"

    @property
    def attempts(self) -> Path:
        """The wrong-password counter, readable without the password (see
        :mod:`offline_addon.storage.login_attempts`)."""
        return self.folder / f"{self.copy_id}{ATTEMPTS_SUFFIX}"

    @property
    def attempts_lock(self) -> Path:
        """The lock that makes each change of the counter one read-modify-write."""
        return self.folder / f"{self.copy_id}{ATTEMPTS_SUFFIX}{LOCK_SUFFIX}"

    @property
    def move_in(self) -> Path:
        """A move into this folder that is prepared but not committed: the copy's sidecar to
        be, plus the folder it comes from (see :mod:`offline_addon.storage.moves`)."""
        return self.folder / f"{self.copy_id}{MOVE_IN_SUFFIX}"

    @property
    def move_out(self) -> Path:
        """A move out of this folder that is prepared but not committed: where to."""
        return self.folder / f"{self.copy_id}{MOVE_OUT_SUFFIX}"

    def companions(self, db: Path) -> tuple[Path, Path, Path]:
        """SQLite's side files of ``db`` (write-ahead log, shared memory, rollback journal)."""
        return (
            db.with_name(db.name + "-wal"),
            db.with_name(db.name + "-shm"),
            db.with_name(db.name + "-journal"),
        )

    def all_files(self) -> list[Path]:
        """Every file that may belong to this copy."""
        files = [self.db, *self.companions(self.db), self.partial, *self.companions(self.partial)]
        files.append(damage_mark(self.db))
        for made in (self.db, self.partial):
            making = made.with_name(made.name + CREATING_SUFFIX)
            files += [making, *self.companions(making)]
        files.append(self.sidecar)
        files.append(self.sidecar.with_name(self.sidecar.name + ".tmp"))
        files += [self.attempts, self.attempts.with_name(self.attempts.name + ".tmp")]
        files.append(self.attempts_lock)
        files += [
            self.move_in,
            self.move_out,
            self.move_in.with_name(self.move_in.name + ".tmp"),
            self.move_out.with_name(self.move_out.name + ".tmp"),
        ]
        files += [self.moving(path) for path in (self.db, *self.companions(self.db))]
        return files

    def moving(self, path: Path) -> Path:
        """The temporary name under which ``path`` is copied into this folder."""
        return self.folder / (path.name + MOVING_SUFFIX)


def damage_mark(db: Path) -> Path:
    """The empty file beside ``db`` that says "a reader found this copy damaged: check it at
    the next sync" (see ``offline_copy.mark_damaged``)."""
    return db.with_name(db.name + "-damaged")
