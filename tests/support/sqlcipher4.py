"""An independent reader of SQLCipher 4 files, written from the documented format.

It proves that a copy is a standard SQLCipher 4 database that any SQLCipher 4 tool opens with
the user's password (Debian's ``sqlcipher`` CLI here is 3.4 and cannot). Defaults of SQLCipher
4: page size 4096; per page 80 reserved bytes = 16-byte IV + 64-byte HMAC-SHA512 over the
encrypted page data, the IV and the 1-based page number (4 bytes little-endian); AES-256-CBC;
key = PBKDF2-HMAC-SHA512(password, salt, 256000, 32) where the salt is the file's first 16 bytes;
HMAC key = PBKDF2-HMAC-SHA512(key, salt XOR 0x3a, 2, 32).
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAGE_SIZE = 4096
RESERVE = 80
IV_SIZE = 16
HMAC_SIZE = 64
SALT_SIZE = 16
KDF_ITER = 256_000
SQLITE_HEADER = b"SQLite format 3\x00"


class HmacMismatch(Exception):
    """A page failed authentication: wrong password or a damaged file."""


def decrypt_file(source: Path, password: str, target: Path) -> None:
    """Decrypt the SQLCipher 4 file ``source`` into a plain SQLite file ``target``."""
    data = source.read_bytes()
    if len(data) % PAGE_SIZE:
        raise ValueError("not a whole number of pages")
    salt = data[:SALT_SIZE]
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, KDF_ITER, 32)
    hmac_salt = bytes(b ^ 0x3A for b in salt)
    hmac_key = hashlib.pbkdf2_hmac("sha512", key, hmac_salt, 2, 32)
    out = bytearray()
    for index in range(len(data) // PAGE_SIZE):
        page = data[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
        start = SALT_SIZE if index == 0 else 0
        body = page[start : PAGE_SIZE - RESERVE]
        iv = page[PAGE_SIZE - RESERVE : PAGE_SIZE - RESERVE + IV_SIZE]
        mac = page[PAGE_SIZE - HMAC_SIZE :]
        expected = hmac.new(
            hmac_key, body + iv + struct.pack("<I", index + 1), hashlib.sha512
        ).digest()
        if not hmac.compare_digest(mac, expected):
            raise HmacMismatch(f"page {index + 1}")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(body) + decryptor.finalize()
        if index == 0:
            plain = SQLITE_HEADER + plain
        out += plain + bytes(RESERVE)
    target.write_bytes(bytes(out))


def read_records(source: Path, password: str, workdir: Path) -> dict[str, tuple[int, str, str]]:
    """``id -> (rev, name, fields JSON)`` read from the decrypted copy with stdlib sqlite3."""
    plain = workdir / (source.name + ".plain")
    decrypt_file(source, password, plain)
    conn = sqlite3.connect(plain)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise ValueError("decrypted file fails integrity_check")
        rows = conn.execute("SELECT id, rev, name, fields FROM records").fetchall()
    finally:
        conn.close()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}
