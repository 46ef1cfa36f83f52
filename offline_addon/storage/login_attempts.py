"""The wrong-password counter beside each copy: how many offline logins in a row failed, and
after how many the copy is deleted (the server's ``offline_login_attempts``, default 10).

It lives outside the encrypted file (``<id>.attempts``, owner-only JSON, written through a
temporary file, fsync and rename) because it must be read before the password is known.
Every change is one read-modify-write under ``<id>.attempts.lock`` (an OS lock held for
microseconds, apart from the copy's writer lock, so that a long sync never keeps a login from
counting; removed by its holder after each change), so two processes guessing at once never
lose a count.

An attempt is counted *before* the password is tried (:func:`count_attempt`) and cleared when
it opened the copy (:func:`clear_failures`): a program killed during the key derivation, or a
counter that cannot be written, never yields an uncounted try.

A missing or damaged counter beside an existing copy counts as :data:`WARN_WHEN_LEFT` tries
left, never as a fresh count: deleting the file must not buy tries. (A copy from before
counting existed gets its counter at its next synchronisation.) What this cannot stop: whoever
can change the folder can also copy the file and guess without the client; the key
derivation's cost protects the file then (see the threat model in the admin guide).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from offline_addon.errors import CopyBusy, StorageError
from offline_addon.protocol.answers import DEFAULT_LOGIN_ATTEMPTS, MAX_LOGIN_ATTEMPTS
from offline_addon.storage.copy_lock import CopyLock
from offline_addon.storage.files import write_durably
from offline_addon.storage.paths import CopyPaths

_log = logging.getLogger(__name__)

DEFAULT_LIMIT = DEFAULT_LOGIN_ATTEMPTS
"""Wrong offline passwords in a row after which the copy is deleted, when the server never
said (``docs/sync-api.yaml``: ``offline_login_attempts``)."""
LIMIT_RANGE = (1, MAX_LOGIN_ATTEMPTS)
WARN_WHEN_LEFT = 3
"""From this many tries left, a wrong password's message says how many remain."""
MAX_COUNTER_BYTES = 4096
COUNTER_LOCK_WAIT_S = 5.0
"""How long a change of the counter waits for another process's change (microseconds each)."""


@dataclass(frozen=True)
class AttemptCount:
    """What the counter says: ``failures`` unsuccessful offline logins in a row (an attempt
    under way counts), of ``limit`` allowed; ``known`` is False when the file was missing or
    damaged and the count is the safe assumption."""

    limit: int
    failures: int
    known: bool = True

    @property
    def left(self) -> int:
        """Tries left before the copy is deleted."""
        return max(0, self.limit - self.failures)

    @property
    def exhausted(self) -> bool:
        """No try left: the copy is to be deleted."""
        return self.failures >= self.limit


def read_attempts(paths: CopyPaths) -> AttemptCount:
    """The counter of an existing copy (see the module docstring for a missing one)."""
    try:
        with paths.attempts.open("rb") as source:
            data = source.read(MAX_COUNTER_BYTES + 1)
        if len(data) > MAX_COUNTER_BYTES:
            return _assumed()  # not a counter this add-on wrote
        raw: Any = json.loads(data)
    except (OSError, ValueError):
        return _assumed()
    if not isinstance(raw, dict) or raw.get("copy_id") != paths.copy_id:
        return _assumed()
    limit, failures = raw.get("limit"), raw.get("failures")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return _assumed()
    if not isinstance(failures, int) or isinstance(failures, bool):
        return _assumed()
    if not (LIMIT_RANGE[0] <= limit <= LIMIT_RANGE[1]) or failures < 0:
        return _assumed()
    return AttemptCount(limit, failures)


def count_attempt(paths: CopyPaths) -> AttemptCount:
    """Count one offline login attempt (durably) before its password is tried; the count
    after it. Raises StorageError (disk full, permissions) or CopyBusy: the attempt must
    then not be made."""
    with _counter_lock(paths):
        held = read_attempts(paths)
        counted = AttemptCount(held.limit, held.failures + 1, held.known)
        _write(paths, counted)
    return counted


def clear_failures(paths: CopyPaths) -> None:
    """The password opened the copy: the count starts again (best effort: a counter that
    cannot be written keeps the extra count, which errs on the safe side)."""
    try:
        with _counter_lock(paths):
            held = read_attempts(paths)
            if held.known and held.failures == 0:
                return
            _write(paths, AttemptCount(held.limit, 0))
    except (StorageError, CopyBusy) as exc:
        _log.warning(
            "offline copy: the wrong-password count was not reset (%s)", type(exc).__name__
        )


def note_limit(paths: CopyPaths, limit: int | None) -> None:
    """A successful server contact (the sync holds the writer lock): store the server's
    ``limit`` (None: as stored, e.g. after a ``304``) and start the count again, which a
    sync with the session's password may do, unless the copy is already condemned (it is
    deleted at the next offline attempt, or by the deletion queued when it was condemned).

    A counter that says so already is left alone without taking the lock (a sync runs this
    every time): an attempt counted meanwhile in another program then stays counted, which
    errs on the safe side, as a counter that cannot be written does."""
    held = read_attempts(paths)
    if held.known and held.failures == 0 and (limit is None or held.limit == limit):
        return
    with _counter_lock(paths):
        held = read_attempts(paths)
        if held.known and held.exhausted:
            return  # a raised limit must not pardon it either
        kept = AttemptCount(held.limit if limit is None else limit, 0)
        if kept != held:
            _write(paths, kept)


def _assumed() -> AttemptCount:
    return AttemptCount(DEFAULT_LIMIT, DEFAULT_LIMIT - WARN_WHEN_LEFT, known=False)


@contextmanager
def _counter_lock(paths: CopyPaths) -> Iterator[None]:
    """Hold the counter's lock for one read-modify-write; its file is removed by its holder
    afterwards (``CopyLock`` makes whoever waited lock anew), so none lingers beside the
    copy."""
    with CopyLock(paths.attempts_lock, wait_s=COUNTER_LOCK_WAIT_S) as lock:
        yield
        lock.remove_file()


def _write(paths: CopyPaths, count: AttemptCount) -> None:
    payload = {"copy_id": paths.copy_id, "limit": count.limit, "failures": count.failures}
    data = json.dumps(payload, sort_keys=True).encode("utf-8")
    try:
        write_durably(paths.attempts, lambda out: out.write(data), ".tmp")
    except OSError as exc:
        raise StorageError(
            f"Cannot record the offline login attempt in {paths.folder} ({exc.strerror}); "
            "free some disk space or check the folder's permissions, then try again."
        ) from None
