"""Security guarantees of the offline copy, each a test against the real server and real files.

No record content, password or token in the copy's bytes, its sidecars, or the logs of a whole
sync at DEBUG level; files owner-only; a wrong password changes nothing; an expired copy
refuses to open; a revoked right (or a database switched off) deletes the copy.
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon import errors
from tests.support.checks import assert_converges, assert_user_message, read_copy, sync
from tests.support.worlds import World, new_world

TAG = "Zqxjvk"  # in every record value: easy to find in bytes if it ever leaks


@pytest.fixture
def secret_world(server: Any, tmp_path: Path) -> World:
    return new_world(server, tmp_path / "OfflineDB", records=200, tag=TAG)


def _secrets(world: World, session: Session) -> list[bytes]:
    """Byte strings that must never appear outside the encrypted pages."""
    values: set[str] = {world.password, session.token, TAG}
    for _, name, fields in world.expected().values():
        values.add(name)
        values.update(v for v in fields.values() if len(v) >= 6)
    out = []
    for value in values:
        out.append(value.encode("utf-8"))
        out.append(value.encode("utf-16-le"))  # a wide-char leak would hide from a utf-8 search
    return out


def _copy_files(world: World) -> list[Path]:
    return sorted(p for p in world.folder.rglob("*") if p.is_file())


def _snapshot(world: World) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in _copy_files(world)}


def _full_history(world: World) -> Session:
    """A first sync, server changes of every kind, and an incremental sync."""
    session = world.login()
    sync(world, session, create=True)
    admin, db, user = world.admin, world.database, world.username
    admin.update_record(db, world.ids[0], fields={"password": f"{TAG}-rotated-secret"})
    admin.delete_record(db, world.ids[1])
    admin.seal_record(db, world.ids[2])
    admin.set_rights(db, user, world.ids[3], export=False)
    sync(world, session)
    return session


def test_copy_and_sidecars_hold_no_plaintext(secret_world: World) -> None:
    session = _full_history(secret_world)
    files = _copy_files(secret_world)
    assert any(f.name.endswith(".json") for f in files), "no sidecar was written"
    needles = _secrets(secret_world, session)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"plaintext secret found in {path.name}"


def test_a_copy_left_open_with_its_wal_holds_no_plaintext(secret_world: World) -> None:
    """While a copy is open its pages sit in the -wal file too; those are encrypted as well."""
    from offline_addon.storage.offline_copy import OfflineCopy

    session = _full_history(secret_world)
    with OfflineCopy.open(secret_world.paths(), secret_world.password) as copy:
        assert copy.record_count() > 0
        needles = _secrets(secret_world, session)
        for path in _copy_files(secret_world):
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"plaintext secret found in {path.name}"


@pytest.fixture
def all_loggers_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    touched = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        touched.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    try:
        yield caplog
    finally:
        for logger, level, disabled in touched:
            logger.setLevel(level)
            logger.disabled = disabled


def test_logs_of_a_whole_sync_at_debug_hold_no_secret(
    secret_world: World, all_loggers_at_debug: pytest.LogCaptureFixture
) -> None:
    session = _full_history(secret_world)
    # A failing sync too: error paths are where secrets tend to end up in messages.
    bad = Session(**{**session.__dict__, "token": session.token[::-1]})
    with pytest.raises(errors.AuthenticationRequired):
        sync(secret_world, bad)
    records = all_loggers_at_debug.records
    assert records, "nothing was logged at DEBUG: the test would prove nothing"
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in records
    )
    for needle in [*_secrets(secret_world, session), bad.token.encode()]:
        assert needle.decode("utf-8", "replace") not in text, "a secret reached the log"


def test_files_and_folder_are_owner_only(secret_world: World) -> None:
    """The folder is 0700 and every file 0600: the copy, its sidecar, and while the copy is
    open its -wal and -shm files too."""
    from offline_addon.storage.offline_copy import OfflineCopy

    _full_history(secret_world)
    paths = secret_world.paths()
    with OfflineCopy.open(paths, secret_world.password) as copy:
        assert copy.record_count() > 0
        files = _copy_files(secret_world)
        names = {path.name for path in files}
        expected = {paths.db, paths.sidecar, *paths.companions(paths.db)[:2]}
        assert {path.name for path in expected} <= names, names
        folder_mode = stat.S_IMODE(secret_world.folder.stat().st_mode)
        assert folder_mode == 0o700, f"folder mode {oct(folder_mode)}"
        for path in files:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, f"{path.name} mode {oct(mode)}"


def test_files_are_owner_only_even_with_a_permissive_umask(secret_world: World) -> None:
    import os

    old = os.umask(0o000)
    try:
        _full_history(secret_world)
    finally:
        os.umask(old)
    for path in [secret_world.folder, *_copy_files(secret_world)]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} mode {oct(mode)}"


def test_wrong_password_changes_no_byte(secret_world: World) -> None:
    from offline_addon.storage.offline_copy import OfflineCopy

    _full_history(secret_world)
    before = _snapshot(secret_world)
    with pytest.raises(errors.WrongPassword) as info:
        OfflineCopy.open(secret_world.paths(), "not-the-password")
    assert_user_message(info.value, "password")
    # The offline login path too (a sync with a new password is not "wrong": the server
    # accepted it, so the engine rebuilds the copy under it; see the engine's own tests).
    with pytest.raises(errors.WrongPassword):
        _open_offline()(secret_world.paths(), "not-the-password", time.time())
    # Only the wrong-password counter beside the copy changed (issue 16), by one.
    counter = secret_world.paths().attempts.name
    after = _snapshot(secret_world)
    assert json.loads(after.pop(counter))["failures"] == 1
    before.pop(counter)
    assert after == before
    assert read_copy(secret_world.paths(), secret_world.password).records


def _open_offline() -> Any:
    from offline_addon.storage.offline_open import open_offline

    return open_offline


def test_a_copy_whose_validity_passed_refuses_to_open(secret_world: World) -> None:
    from offline_addon.storage.offline_copy import OfflineCopy

    _full_history(secret_world)
    with OfflineCopy.open(secret_world.paths(), secret_world.password) as copy:
        meta = copy.meta
    assert meta.validity_seconds == 7 * 86400
    assert meta.last_contact_local_time is not None
    last = float(meta.last_contact_local_time)
    open_offline = _open_offline()
    inside = open_offline(secret_world.paths(), secret_world.password, last + 6 * 86400)
    inside.close()
    with pytest.raises(errors.CopyExpired) as info:
        open_offline(secret_world.paths(), secret_world.password, last + 7 * 86400 + 60)
    assert_user_message(info.value, "valid", "expired", "days", "contact")
    with pytest.raises(errors.ClockWentBack) as back:
        open_offline(secret_world.paths(), secret_world.password, last - 3 * 86400)
    assert_user_message(back.value, "clock", "time")


def test_an_expired_copy_still_syncs_once_the_server_is_back(secret_world: World) -> None:
    session = _full_history(secret_world)
    result = sync(secret_world, session, clock=lambda: time.time() + 30 * 86400)
    assert result.outcome in ("synced", "unchanged")
    assert_converges(secret_world, session)


@pytest.mark.parametrize("switch", ["user_right", "database_switch"])
def test_revoking_offline_use_deletes_the_copy(secret_world: World, switch: str) -> None:
    session = _full_history(secret_world)
    assert secret_world.paths().db.exists()
    if switch == "user_right":
        secret_world.admin.set_user_offline(secret_world.username, enabled=False)
    else:
        secret_world.admin.set_database_offline(secret_world.database, False)
    result = sync(secret_world, session)
    assert result.outcome == "wiped"
    assert len(result.message) > 20
    assert "offline" in result.message.lower()
    left = [p.name for p in secret_world.paths().all_files() if p.exists()]
    assert left == [], f"files left behind: {left}"
    with pytest.raises(errors.CopyNotFound):
        sync(secret_world, session)
