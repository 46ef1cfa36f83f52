"""The events hooks and API calls post to the add-on's worker thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from hookspecs import Session
from offline_addon.sync.engine import SyncResult


@dataclass(frozen=True)
class Login:
    session: Session


@dataclass(frozen=True)
class Logout:
    session: Session


@dataclass(frozen=True)
class Saved:
    session: Session


@dataclass(frozen=True)
class Wake:
    """The schedule clock moved (``on_timer``): re-check what is due."""


@dataclass(frozen=True)
class SyncRequest:
    session: Session
    create: bool
    future: Future[SyncResult]


@dataclass(frozen=True)
class Call:
    """Run ``fn`` on the worker thread (serialised with syncs), result into ``future``."""

    fn: Callable[[], object]
    future: Future[object]
