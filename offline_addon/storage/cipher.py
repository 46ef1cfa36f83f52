"""Opening a SQLCipher 4 file with the user's password.

The key goes through SQLCipher's own KDF (``PRAGMA key`` with the password: PBKDF2-HMAC-SHA512
with a random salt per file), so the file opens in any SQLCipher 4 tool with the same password.
The key is checked with a read before anything is written, so a wrong password leaves the file
exactly as it was.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlcipher3

from offline_addon.errors import OfflineAddonError, StorageError, WrongPassword

# Performance settings, applied after the key check:
# - WAL + synchronous=NORMAL: one fsync per checkpoint instead of per commit; a commit is still
#   atomic and a crash loses at most the last commits, never consistency.
# - wal_autocheckpoint 4000 pages (16 MiB): fewer checkpoints during a large first sync.
# - cache_size 8 MiB: a fixed cap, so memory does not grow with the copy; measured with the
#   bench, a first sync of 100k records is as fast as with 16 MiB and peaks 8 MB lower.
# - cipher_memory_security OFF (the SQLCipher 4.5+ default, set explicitly): wiping every freed
#   buffer costs much time and would buy nothing, because the same plaintext lives in Python
#   strings that cannot be wiped anyway.
PRAGMAS = (
    "PRAGMA cipher_memory_security = OFF",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 4000",
    "PRAGMA cache_size = -8192",
    "PRAGMA temp_store = MEMORY",
)
KEY_REFUSED = (
    "The password does not open the offline copy. Use the password of your last online "
    "login; if you changed it since, log in online once so that the copy is rebuilt."
)


def quote_password(password: str) -> str:
    """The password as an SQL string literal for ``PRAGMA key`` / ``PRAGMA rekey``."""
    if "\x00" in password:
        raise OfflineAddonError("The offline copy cannot use a password that contains NUL.")
    return "'" + password.replace("'", "''") + "'"


def storage_error(action: str, exc: BaseException) -> StorageError:
    return StorageError(
        f"Cannot {action} the offline copy ({type(exc).__name__}: {exc}); check free disk "
        "space and permissions; if it persists, delete the copy and synchronise again."
    )


def connect(db_path: Path, password: str) -> Any:
    """Open and key ``db_path``; check the key with a read before anything is written."""
    try:
        conn = sqlcipher3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    except sqlcipher3.Error as exc:
        raise storage_error("open", exc) from None
    try:
        # SQLCipher logs a failed HMAC check (a wrong password) to stderr by itself; the user
        # gets our WrongPassword message instead.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {quote_password(password)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError:
        conn.close()
        raise WrongPassword(KEY_REFUSED) from None
    except BaseException:
        conn.close()
        raise
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma).fetchall()
    except sqlcipher3.Error as exc:
        conn.close()
        raise storage_error("prepare", exc) from None
    return conn


def discard(target: Path, conn: Any) -> None:
    """Remove a half-created copy file."""
    if conn is not None:
        conn.close()
    for path in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm"))):
        with suppress(OSError):
            path.unlink()
