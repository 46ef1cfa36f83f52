"""When to synchronise: pure decisions over plain data and a caller-supplied ``now``.

No threads, no I/O, no clock of its own: :class:`SyncSchedule` is told what happened (a
trigger, a sync started, a sync ended) together with the time, and answers what is due next.
The dispatcher (:mod:`offline_addon.runtime.dispatcher`) feeds it and its worker sleeps until
:meth:`SyncSchedule.next_due`. A sync asked for by hand does not go through the schedule: it
runs at once (and serves every trigger that came before it).

Rules (DESIGN.md "Synchronisation"):

* Nothing is automatic until the copy exists (:meth:`arm`); creating a copy is only by hand.
* ``interval``: due ``interval_s`` after the last finished sync (or after arming).
* ``save``: debounced; due ``debounce_s`` after the last save of a burst, but no later than
  ``max_delay_s`` after its first save, so a steady stream of saves still syncs.
* ``login``: due ``login_settle_s`` (1 s) after the login, also skipping a back-off. The short
  wait lets a manual sync that comes with the login (``psr-client offline sync`` logs in first)
  serve both, instead of two syncs back to back.
* One sync at a time. A sync serves every trigger that came before it started; triggers that
  come while it runs fold into at most one follow-up.
* After a failure: back off with full jitter (``uniform(0, min(cap, base * 2**(n-1)))``), never
  shorter than the server's ``Retry-After``. Automatic triggers wait for the back-off.
* A failure is told to the user once per streak (and again only if the kind of failure changes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_DEBOUNCE_S = 2.0
DEFAULT_MAX_DELAY_S = 10.0
DEFAULT_LOGIN_SETTLE_S = 1.0
DEFAULT_BACKOFF_BASE_S = 30.0
DEFAULT_BACKOFF_CAP_S = 15 * 60.0
MIN_BACKOFF_S = 1.0


class SyncTrigger(StrEnum):
    """Why a synchronisation is wanted."""

    LOGIN = "login"
    SAVE = "save"


@dataclass(frozen=True)
class FailureVerdict:
    """What to do after a failed sync: retry at ``retry_at`` (``None``: wait for a new login
    or a manual sync) and whether to tell the user now."""

    retry_at: float | None
    notify: bool


@dataclass
class SyncSchedule:
    """The schedule of one offline copy. Mutable, owned by one thread (the worker)."""

    interval_s: float
    debounce_s: float = DEFAULT_DEBOUNCE_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S
    login_settle_s: float = DEFAULT_LOGIN_SETTLE_S
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S
    uniform: Callable[[float, float], float] = random.uniform

    armed: bool = False
    running: bool = False
    last_finished: float | None = None
    next_interval_at: float | None = None
    login_at: float | None = None
    save_first: float | None = None
    save_last: float | None = None
    failures: int = 0
    retry_at: float | None = None
    notified_kind: str | None = None

    # -- what happened ---------------------------------------------------------------------

    def arm(self, now: float) -> None:
        """The copy exists: automatic triggers apply from now on."""
        if not self.armed:
            self.armed = True
            if self.next_interval_at is None:
                self.next_interval_at = now + self.interval_s

    def disarm(self) -> None:
        """The copy is gone (deleted, wiped): drop every automatic trigger."""
        self.armed = False
        self.next_interval_at = None
        self.save_first = self.save_last = None
        self.login_at = None
        self.retry_at = None

    def set_interval(self, interval_s: float, now: float) -> None:
        """Apply a changed interval: the next interval sync counts from the last sync."""
        self.interval_s = interval_s
        if self.armed:
            base = self.last_finished if self.last_finished is not None else now
            self.next_interval_at = base + interval_s

    def trigger(self, kind: SyncTrigger, now: float) -> bool:
        """Record a trigger. Returns ``False`` when it is ignored (automatic trigger for a copy
        that does not exist yet)."""
        if not self.armed:
            return False
        elif kind is SyncTrigger.LOGIN:
            self.login_at = now + self.login_settle_s
        elif kind is SyncTrigger.SAVE:
            if self.save_first is None:
                self.save_first = now
            self.save_last = now
        return True

    def interval_due(self, now: float) -> bool:
        """Whether the interval has passed (the cheap check ``on_timer`` makes)."""
        return self.armed and self.next_interval_at is not None and now >= self.next_interval_at

    # -- what is due -----------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The time at which the next sync is due, ``None`` for never
        (until something happens). While a sync runs nothing is due."""
        if self.running:
            return None
        candidates: list[float] = []
        if self.save_last is not None and self.save_first is not None:
            candidates.append(
                min(self.save_last + self.debounce_s, self.save_first + self.max_delay_s)
            )
        if self.armed and self.next_interval_at is not None:
            candidates.append(self.next_interval_at)
        if candidates:
            due = min(candidates)
            if self.retry_at is not None:
                due = max(due, self.retry_at)
            if self.login_at is not None:
                due = min(due, self.login_at)
            return due
        return self.login_at

    def has_pending(self, now: float) -> bool:
        """Whether a sync is wanted now or after a debounce and not held back by a back-off
        (what ``wait_idle`` waits for; a distant interval sync does not count)."""
        if self.running:
            return False
        if self.login_at is not None:
            return True
        if self.retry_at is not None:
            return False
        return self.save_last is not None or self.interval_due(now)

    def is_due(self, now: float) -> bool:
        """Whether a sync should start at ``now``."""
        due = self.next_due()
        return due is not None and now >= due

    # -- a sync runs -------------------------------------------------------------------------

    def started(self, now: float) -> None:
        """A sync starts: it serves every trigger so far."""
        self.running = True
        self.login_at = None
        self.save_first = self.save_last = None

    def succeeded(self, now: float) -> bool:
        """A sync ended well. Returns whether a failure streak ended (worth telling)."""
        self.running = False
        self.last_finished = now
        ended_streak = self.failures > 0
        self.failures = 0
        self.retry_at = None
        self.notified_kind = None
        if self.armed:
            self.next_interval_at = now + self.interval_s
        return ended_streak

    def stopped(self, now: float) -> None:
        """A sync was stopped on request: no failure, and the interval counts from now."""
        self.running = False
        if self.armed:
            self.next_interval_at = now + self.interval_s

    def failed(
        self,
        now: float,
        kind: str,
        *,
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> FailureVerdict:
        """A sync failed with an error of ``kind`` (the exception class name). Decide the
        back-off and whether the user hears about it now."""
        self.running = False
        self.last_finished = now
        self.failures += 1
        notify = self.notified_kind != kind
        self.notified_kind = kind
        if not retryable:
            self.retry_at = None
            self.save_first = self.save_last = None
            self.next_interval_at = None
            return FailureVerdict(None, notify)
        delay = self.backoff_delay(retry_after)
        self.retry_at = now + delay
        if self.armed:
            # The back-off retries on its own; the interval then counts from the retry.
            self.next_interval_at = self.retry_at
        return FailureVerdict(self.retry_at, notify)

    def backoff_delay(self, retry_after: float | None = None) -> float:
        """Full-jitter back-off for the current failure count, at least ``retry_after``."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(self.failures - 1, 0))
        delay = max(MIN_BACKOFF_S, self.uniform(0.0, ceiling))
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.backoff_cap_s * 4))
        return delay
