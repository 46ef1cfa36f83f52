"""Opening a SQLCipher 4 file with the user's password.

The key goes through SQLCipher's own KDF (``PRAGMA key`` with the password: PBKDF2-HMAC-SHA512
with a random salt per file), so the file opens in any SQLCipher 4 tool with the same password.
The key is checked with a read before anything is written, so a wrong password leaves the file
exactly as it was.

A wrong password and a damaged first page look alike: both fail SQLCipher's HMAC of page 1.
The second witness is SQLCipher's own ``PRAGMA cipher_integrity_check``, which checks the HMAC
of every page with the key derived from the password: a wrong password fails *every* page, a
damaged file with the right one only some. No hand-made crypto, no extra file, nothing secret
written anywhere; it costs one pass over the file (about 0.1 s per 10 MB), and only when the
key is refused. Its limit: a flip inside the 16-byte salt at the start of the file changes the
derived key, so every page fails and the copy reads as "wrong password" (0.4 % of page 1).
A file whose size is not a whole number of pages is damaged whatever the password.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlcipher3

from offline_addon.errors import CopyDamaged, InvalidArgument, StorageError, WrongPassword

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
PAGE_SIZE = 4096
"""SQLCipher 4's page size; a copy's file is always a whole number of pages."""
_SQLITE_CORRUPT = 11
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_DAMAGE_CODES = frozenset({_SQLITE_CORRUPT, 26})  # and SQLITE_NOTADB
KEY_REFUSED = (
    "The password does not open the offline copy. Use the password of your last online "
    "login; if you changed it since, log in online once so that the copy is rebuilt."
)


def quote_password(password: str) -> str:
    """The password as an SQL string literal for ``PRAGMA key`` / ``PRAGMA rekey``."""
    if "\x00" in password:
        raise InvalidArgument("The offline copy cannot use a password that contains NUL.")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            "The offline copy cannot use this password (it holds characters that are not "
            "text); log in with your usual password."
        ) from None
    return "'" + password.replace("'", "''") + "'"


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLCipher error says the file is damaged (not full, locked or unwritable)."""
    code = _code(exc)
    if code is not None:
        return code in _DAMAGE_CODES
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def is_busy(exc: BaseException) -> bool:
    """Whether a SQLCipher error says another connection holds the write lock (for longer
    than the busy timeout), not that the file is damaged or unwritable."""
    code = _code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def storage_error(action: str, exc: BaseException) -> StorageError:
    """The add-on error for a SQLCipher error: CopyDamaged for a damaged file."""
    if is_damage(exc):
        return CopyDamaged()
    return StorageError(
        f"Cannot {action} the offline copy ({type(exc).__name__}: {exc}); check free disk "
        "space and permissions; if it persists, delete the copy and synchronise again."
    )


_KDF = ("PBKDF2_HMAC_SHA512", "sha512", 256_000, 32)
"""SQLCipher 4's default key derivation (its name, hashlib's, iterations, key bytes)."""


def new_file_key(password: str) -> str | None:
    """A ``PRAGMA key`` value for a new file: the key SQLCipher would derive from
    ``password`` with a fresh random salt (its default KDF, run here once), given raw with
    that salt, so that SQLCipher skips its own KDF; the file then opens with the password as
    any other. Making a copy connects twice (before and after it is renamed into place), so
    this halves the KDF cost of a first sync (about 0.2 s each). None, so that the password
    is given as usual, when this SQLCipher's defaults are not the ones this derivation
    follows, or the password cannot be a passphrase here (NUL, lone surrogate)."""
    algorithm, hash_name, iterations, size = _KDF
    try:
        probe = sqlcipher3.connect(":memory:")
        try:
            defaults = (
                probe.execute("PRAGMA cipher_default_kdf_algorithm").fetchone(),
                probe.execute("PRAGMA cipher_default_kdf_iter").fetchone(),
            )
        finally:
            probe.close()
        secret = password.encode("utf-8")
    except (sqlcipher3.Error, UnicodeError):
        return None
    if defaults != ((algorithm,), (str(iterations),)) or b"\0" in secret:
        return None
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac(hash_name, secret, salt, iterations, size)
    return f"\"x'{key.hex()}{salt.hex()}'\""


def connect(db_path: Path, password: str, *, key: str | None = None) -> Any:
    """Open and key ``db_path``; check the key with a read before anything is written.
    ``key``: a raw key from :func:`new_file_key` instead of the password."""
    try:
        conn = sqlcipher3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    except sqlcipher3.Error as exc:
        raise storage_error("open", exc) from None
    try:
        # SQLCipher logs a failed HMAC check (a wrong password) to stderr by itself; the user
        # gets our WrongPassword message instead.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {key or quote_password(password)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        # SQLITE_CORRUPT: the key worked but the file is broken (e.g. shorter than its header
        # says); SQLITE_NOTADB: page 1 failed, by the key or by damage; the witness decides.
        damaged = _code(exc) == _SQLITE_CORRUPT or _damaged_not_refused(conn, db_path)
        conn.close()
        if damaged:
            raise CopyDamaged() from None
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


def _damaged_not_refused(conn: Any, db_path: Path) -> bool:
    """After page 1 failed with this key: is the file damaged rather than the key wrong?"""
    size = _settled_size(db_path)
    if size is None:
        return False  # pages in a write-ahead log: the count below cannot be compared
    if size < PAGE_SIZE or size % PAGE_SIZE:
        return True  # truncated or padded: no key makes this a copy
    try:
        failed = len(conn.execute("PRAGMA cipher_integrity_check").fetchall())
    except sqlcipher3.Error:
        return False
    return 0 < failed < size // PAGE_SIZE


def _settled_size(db_path: Path) -> int | None:
    """The file's size when it is all there is (no write-ahead log with pages the main file
    does not hold yet); None otherwise."""
    wal = db_path.with_name(db_path.name + "-wal")
    try:
        if wal.exists() and wal.stat().st_size > 0:
            return None
        return db_path.stat().st_size
    except OSError:
        return None


def check_file(db_path: Path) -> None:
    """CopyDamaged when the file cannot be a copy whatever the password: empty, or not a whole
    number of pages (truncated)."""
    size = _settled_size(db_path)
    if size is not None and (size < PAGE_SIZE or size % PAGE_SIZE):
        raise CopyDamaged()


def check_size(conn: Any, db_path: Path) -> None:
    """CopyDamaged when the file is shorter than the database it says it holds (a copy cut
    at a page boundary)."""
    size = _settled_size(db_path)
    if size is None:
        return
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    if size < pages * PAGE_SIZE:
        raise CopyDamaged()


def discard(target: Path, conn: Any) -> None:
    """Remove a half-created copy file."""
    if conn is not None:
        conn.close()
    for path in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm"))):
        with suppress(OSError):
            path.unlink()
