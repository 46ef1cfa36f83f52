"""A new copy is keyed with the key SQLCipher derives from the password, derived once (issue
13: making a copy connected twice, each time through the KDF); it opens with the password."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlcipher3

from offline_addon.storage import cipher
from offline_addon.storage.cipher import quote_password
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.copies import new_copy

PASSWORDS = ("plain-pw", "pässwörd with 'quotes' and \"more\"", "🔑 ключ")


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_new_copy_opens_with_its_password_through_sqlcipher_itself(
    tmp_path: Path, password: str
) -> None:
    copy = new_copy(tmp_path, password)
    path = copy.db_path
    copy.close()
    conn = sqlcipher3.connect(str(path))
    try:
        conn.execute(f"PRAGMA key = {quote_password(password)}")
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] > 0
    finally:
        conn.close()
    with OfflineCopy.open(copy.paths, password) as again:
        assert again.meta.complete is False


def test_each_new_copy_has_its_own_salt(tmp_path: Path) -> None:
    salts = set()
    for n in range(3):
        copy = new_copy(tmp_path / str(n), "same-pw")
        salts.add(copy.db_path.read_bytes()[:16])
        copy.close()
    assert len(salts) == 3


def test_the_raw_key_is_not_used_when_sqlcipher_derives_keys_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cipher, "_KDF", ("PBKDF2_HMAC_SHA512", "sha512", 64_000, 32))
    assert cipher.new_file_key("pw") is None
    copy = new_copy(tmp_path, "pw")  # keyed with the password, through SQLCipher's KDF
    copy.close()
    monkeypatch.undo()
    with OfflineCopy.open(copy.paths, "pw") as again:
        assert again.meta.complete is False


def test_a_password_that_is_no_passphrase_gets_no_raw_key() -> None:
    assert cipher.new_file_key("nul\x00inside") is None
    assert cipher.new_file_key("lone \ud800 surrogate") is None
    key = cipher.new_file_key("pw")
    assert key is not None
    assert "pw" not in key
    assert len(key) == len("\"x''\"") + 2 * (32 + 16)
