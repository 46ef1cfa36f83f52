"""The add-on's one background thread: a queue of events, a wake-up time, idle and shutdown.

Hooks run on the host's threads and must return in microseconds, so they only :meth:`post` an
event (a deque append under a lock held for that append). The thread drains *all* queued
events at once and hands them to the owner's ``step`` function, which applies them and does at
most one unit of work (one synchronisation); ``step`` returns when it wants to run again (a
time on the owner's clock, or ``None`` for "only when an event comes"). Draining everything
before acting is what folds a burst of triggers into one follow-up sync.

The thread knows nothing about syncing; :class:`offline_addon.runtime.dispatcher.SyncDispatcher`
owns it and makes the decisions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

StepFn = Callable[[Sequence[object], bool], float | None]
"""``step(events, stopping) -> next due time or None``; runs on the worker thread only."""

_log = logging.getLogger(__name__)


class Worker:
    """One daemon thread fed by :meth:`post`. Thread-safe; every public method returns fast
    except :meth:`wait_idle` and :meth:`shutdown`, which wait up to their timeout."""

    def __init__(
        self,
        name: str,
        step: StepFn,
        clock: Callable[[], float],
        *,
        has_pending: Callable[[], bool] = lambda: False,
    ) -> None:
        self._name = name
        self._step = step
        self._clock = clock
        self._has_pending = has_pending
        self._cond = threading.Condition()
        self._events: deque[object] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self._due: float | None = None

    # -- called from any thread ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` was asked; long work should end at its next safe point."""
        return self._stopping

    @property
    def due_hint(self) -> float:
        """When the worker next wants to run (``inf``: not before an event). Read without a
        lock: a stale value only costs one extra or one later wake-up."""
        due = self._due
        return float("inf") if due is None else due

    def post(self, event: object) -> bool:
        """Queue ``event`` for the worker thread, starting the thread on first use. Returns
        ``False`` (event dropped) after :meth:`shutdown`."""
        with self._cond:
            if self._stopping:
                return False
            self._events.append(event)
            if self._thread is None:
                self._start_locked()
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no event is queued, no step runs and the owner has nothing pending
        (``has_pending``). Returns whether that was reached within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._events or self._busy or self._pending_now():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def shutdown(self, timeout: float) -> bool:
        """Ask the thread to stop after its current step and wait up to ``timeout`` seconds.
        Returns whether it ended. Queued events are handed to a last step (with
        ``stopping=True``) so the owner can fail waiting callers cleanly."""
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _pending_now(self) -> bool:
        try:
            return self._has_pending()
        except Exception:  # a broken predicate must not hang wait_idle's callers
            _log.exception("offline add-on: pending check failed")
            return False

    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _wait_for_work_locked(self) -> None:
        while not self._events and not self._stopping:
            due = self._due
            if due is None:
                self._cond.wait()
                continue
            left = due - self._clock()
            if left <= 0:
                return
            # Cap the wait so that a clock which moves by more than real time (the host's
            # clock, learnt from on_timer) is re-read now and then.
            self._cond.wait(min(left, 60.0))

    def _run(self) -> None:
        while True:
            with self._cond:
                self._wait_for_work_locked()
                events = list(self._events)
                self._events.clear()
                stopping = self._stopping
                self._busy = True
            due: float | None = None
            try:
                due = self._step(events, stopping)
            except Exception:  # the thread must survive any bug in one step
                _log.exception("offline add-on: worker step failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._due = due
                    self._cond.notify_all()
            if stopping:
                return
