"""The events that hooks and API calls post to the add-on's worker thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from hookspecs import Session
from offline_addon.sync.result import SyncResult


@dataclass(frozen=True)
class LoggedIn:
    """An online login (``on_login``)."""

    session: Session


@dataclass(frozen=True)
class LoggedOut:
    """A logout (``on_logout``)."""

    session: Session


@dataclass(frozen=True)
class RecordSaved:
    """The logged-in user saved a record that counts for a sync (already decided)."""

    session: Session


@dataclass(frozen=True)
class ClockMoved:
    """The schedule clock moved (``on_timer``): re-check what is due."""


@dataclass(frozen=True)
class SyncRequested:
    """A sync asked for through the API (``create``: make the copy when there is none;
    ``deadline_s``: the run ends within this many seconds, as the renewal before a logout)."""

    session: Session
    create: bool
    future: Future[SyncResult]
    deadline_s: float | None = None


@dataclass(frozen=True)
class WorkerCall:
    """Run ``fn`` on the worker thread (serialised with syncs), result into ``future``."""

    fn: Callable[[], object]
    future: Future[object]
