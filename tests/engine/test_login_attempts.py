"""The limit on wrong offline passwords (issue 16, item 2), on real SQLCipher files: counted
before the password is tried, reset by the right one, the copy deleted at the limit, warned
from three tries left; two processes at once, a kill mid-attempt, a lost or damaged counter,
a busy writer, a counter that cannot be written."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from offline_addon.errors import CopyNotFound, ProtocolError, StorageError, WrongPassword
from offline_addon.protocol.answers import load_policy
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.login_attempts import (
    DEFAULT_LIMIT,
    WARN_WHEN_LEFT,
    count_attempt,
    note_limit,
    read_attempts,
)
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.offline_open import open_offline
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from tests.support.copies import CONTACT, COPY_PASSWORD, new_copy
from tests.support.hostile import HostileServer, Reply, policy_body
from tests.support.kill import Child

GUESS = "guess-Qx7-offline-secret-91zz"
NOW = CONTACT.local_time + 60.0


@pytest.fixture
def paths(tmp_path: Path) -> CopyPaths:
    copy = new_copy(tmp_path)
    copy.record_contact(CONTACT)
    copy.close()
    target = CopyPaths(tmp_path, "a" * 64)
    note_limit(target, DEFAULT_LIMIT)  # what the first sync leaves
    return target


def wrong(paths: CopyPaths) -> str:
    with pytest.raises(WrongPassword) as info:
        open_offline(paths, GUESS, NOW)
    return str(info.value)


def right(paths: CopyPaths) -> None:
    open_offline(paths, COPY_PASSWORD, NOW).close()


def test_each_wrong_password_counts_and_the_last_three_warn(paths: CopyPaths) -> None:
    for n in range(1, DEFAULT_LIMIT - WARN_WHEN_LEFT):
        message = wrong(paths)
        assert "left before" not in message
        assert GUESS not in message
        assert read_attempts(paths).failures == n
    assert wrong(paths).endswith("3 tries left before this offline copy is deleted.")
    assert wrong(paths).endswith("2 tries left before this offline copy is deleted.")
    assert wrong(paths).endswith("1 try left before this offline copy is deleted.")


def test_the_attempt_that_reaches_the_limit_deletes_the_copy_and_its_files(
    paths: CopyPaths,
) -> None:
    note_limit(paths, 3)
    wrong(paths)
    wrong(paths)
    message = wrong(paths)
    assert "3 times in a row" in message
    assert "was deleted from this computer" in message
    assert GUESS not in message
    assert list(paths.folder.iterdir()) == []
    with pytest.raises(CopyNotFound):
        open_offline(paths, COPY_PASSWORD, NOW)


def test_the_right_password_starts_the_count_again(paths: CopyPaths) -> None:
    note_limit(paths, 3)
    wrong(paths)
    wrong(paths)
    right(paths)
    assert read_attempts(paths).failures == 0
    wrong(paths)
    wrong(paths)
    assert paths.db.exists()  # two in a row, not four


def test_a_sync_with_the_password_starts_the_count_again_and_stores_the_servers_limit(
    paths: CopyPaths,
) -> None:
    wrong(paths)
    note_limit(paths, 25)
    assert (read_attempts(paths).limit, read_attempts(paths).failures) == (25, 0)
    wrong(paths)
    note_limit(paths, None)  # a 304: the limit as stored
    assert (read_attempts(paths).limit, read_attempts(paths).failures) == (25, 0)


def test_a_lost_counter_leaves_three_tries_not_a_fresh_ten(paths: CopyPaths) -> None:
    for _ in range(5):
        wrong(paths)
    paths.attempts.unlink()
    assert read_attempts(paths).left == WARN_WHEN_LEFT
    assert wrong(paths).endswith("2 tries left before this offline copy is deleted.")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff not json",
        b"[1, 2]",
        b"{" + b" " * 100_000 + b"}",
        json.dumps({"copy_id": "b" * 64, "limit": 10, "failures": 0}).encode(),
        json.dumps({"copy_id": "a" * 64, "limit": 10, "failures": -5}).encode(),
        json.dumps({"copy_id": "a" * 64, "limit": 0, "failures": 0}).encode(),
        json.dumps({"copy_id": "a" * 64, "limit": True, "failures": 0}).encode(),
        json.dumps({"copy_id": "a" * 64, "limit": 10, "failures": 1.5}).encode(),
    ],
)
def test_a_damaged_or_foreign_counter_counts_as_three_tries_left(
    paths: CopyPaths, content: bytes
) -> None:
    paths.attempts.write_bytes(content)
    count = read_attempts(paths)
    assert not count.known
    assert count.left == WARN_WHEN_LEFT
    right(paths)  # the right password still opens, and repairs the counter
    assert read_attempts(paths).known
    assert read_attempts(paths).failures == 0


def test_the_count_is_on_disk_before_the_password_is_tried(
    paths: CopyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill during the key derivation cannot give a free try (the in-process view of the
    SIGKILL trial below)."""
    seen: list[int] = []
    real_open = OfflineCopy.open

    def observing(cls: type[OfflineCopy], target: CopyPaths, password: str) -> OfflineCopy:
        seen.append(json.loads(target.attempts.read_bytes())["failures"])
        return real_open(target, password)

    monkeypatch.setattr(OfflineCopy, "open", classmethod(observing))
    wrong(paths)
    right(paths)
    assert seen == [1, 2]
    assert read_attempts(paths).failures == 0


def test_an_attempt_that_cannot_be_counted_is_not_made(paths: CopyPaths) -> None:
    # The counter's temporary name is taken by a folder: the write fails like a full disk.
    paths.attempts.with_name(paths.attempts.name + ".tmp").mkdir()
    with pytest.raises(StorageError) as info:
        open_offline(paths, COPY_PASSWORD, NOW)
    assert "Cannot record the offline login attempt" in str(info.value)
    assert read_attempts(paths).failures == 0  # the old counter is intact


def test_a_copy_condemned_while_a_writer_holds_it_opens_for_nobody_and_goes_later(
    paths: CopyPaths,
) -> None:
    note_limit(paths, 2)
    wrong(paths)
    with CopyLock(paths.lock):  # a sync of another program, say
        message = wrong(paths)
        assert "it is being deleted" in message
        assert paths.db.exists()
        with pytest.raises(WrongPassword):
            open_offline(paths, COPY_PASSWORD, NOW)  # not even the right password now
    with pytest.raises(WrongPassword) as info:
        open_offline(paths, COPY_PASSWORD, NOW)
    assert "was deleted" in str(info.value)
    assert not paths.db.exists()


def test_setting_the_clock_back_changes_no_count(paths: CopyPaths) -> None:
    note_limit(paths, 3)
    wrong(paths)
    with pytest.raises(WrongPassword):
        open_offline(paths, GUESS, NOW - 30 * 86400)
    assert read_attempts(paths).failures == 2


def test_an_empty_password_is_refused_without_a_try(paths: CopyPaths) -> None:
    with pytest.raises(WrongPassword) as info:
        open_offline(paths, "", NOW)
    assert "No password was given" in str(info.value)
    assert read_attempts(paths).failures == 0


def test_no_copy_means_no_counter(tmp_path: Path) -> None:
    target = CopyPaths(tmp_path, "c" * 64)
    with pytest.raises(CopyNotFound):
        open_offline(target, GUESS, NOW)
    assert list(tmp_path.iterdir()) == []


def test_the_counter_is_owner_only(paths: CopyPaths) -> None:
    count_attempt(paths)
    assert paths.attempts.stat().st_mode & 0o777 == 0o600


def test_two_processes_guessing_at_once_lose_no_count(paths: CopyPaths) -> None:
    note_limit(paths, 1000)
    job = {"action": "guess", "folder": str(paths.folder), "password": GUESS, "tries": 4}
    children = [Child(job), Child(job)]
    ends = [child.finish() for child in children]
    assert ends == ["done guessed", "done guessed"]
    assert read_attempts(paths).failures == 8


def test_a_kill_at_any_moment_of_an_attempt_never_gives_a_free_try(paths: CopyPaths) -> None:
    note_limit(paths, 1000)
    job = {"action": "guess", "folder": str(paths.folder), "password": GUESS, "tries": 50}
    answered = 0
    for _trial in range(3):
        child = Child(job)
        assert child.until("answer", 60).startswith("answer")
        time.sleep(random.uniform(0.0, 0.4))  # inside the next attempt, somewhere
        child.kill()
        seen = [line for line in child.unread if line.startswith("answer")]
        answered += 1 + len(seen)
        count = read_attempts(paths)
        assert count.known
        assert count.failures >= answered  # every answer was counted before it was given
        answered = count.failures


def test_the_policy_limit_is_parsed_with_its_default_and_bounds() -> None:
    base = {
        "offline_enabled": True,
        "offline_right": True,
        "validity_seconds": 3600,
        "server_time": 1.0,
    }
    assert load_policy(base).offline_login_attempts == DEFAULT_LIMIT
    assert load_policy({**base, "offline_login_attempts": 1}).offline_login_attempts == 1
    assert load_policy({**base, "offline_login_attempts": 1000}).offline_login_attempts == 1000
    for bad in (0, 1001, -1, "5", True, 2.5, None):
        with pytest.raises(ProtocolError, match="offline_login_attempts"):
            load_policy({**base, "offline_login_attempts": bad})


def _synced(tmp_path: Path, srv: HostileServer) -> CopyPaths:
    s = srv.session
    target = CopyPaths.for_copy(tmp_path, s.server_url, s.database, s.username, s.client_id)
    with srv.client() as client:
        sync_copy(target, s, create=True, client=client)
    return target


def _publish(srv: HostileServer, limit: object) -> None:
    body = policy_body(offline_login_attempts=limit)
    srv.route("/offline/policy", Reply.json(body))
    srv.route("/offline/head", Reply.json({"seq": 1, **body}, headers=[("ETag", '"e-1-9"')]))


def test_a_sync_stores_the_limit_the_server_publishes(tmp_path: Path) -> None:
    with HostileServer() as srv:
        _publish(srv, 3)
        target = _synced(tmp_path, srv)
        assert (read_attempts(target).limit, read_attempts(target).failures) == (3, 0)
        assert target.attempts.stat().st_mode & 0o777 == 0o600


def test_a_server_that_publishes_an_impossible_limit_changes_nothing(tmp_path: Path) -> None:
    with HostileServer() as srv:
        target = _synced(tmp_path, srv)
        assert read_attempts(target).limit == DEFAULT_LIMIT
        _publish(srv, 0)
        with pytest.raises(ProtocolError), srv.client() as client:
            sync_copy(target, srv.session, create=False, client=client)
        assert read_attempts(target).limit == DEFAULT_LIMIT


def test_a_sync_does_not_pardon_a_condemned_copy(paths: CopyPaths) -> None:
    note_limit(paths, 2)
    wrong(paths)
    with CopyLock(paths.lock):
        wrong(paths)  # condemned while "a sync" holds the copy
    note_limit(paths, 10)  # that sync's contact
    assert read_attempts(paths).exhausted
