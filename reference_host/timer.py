"""The host clock and the timer thread that calls ``on_timer`` while a user is logged in."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("psr.host.timer")


class HostClock:
    """``time.time()`` plus an offset the user can advance (``tick MINUTES``), so that a demo
    can show an interval sync without waiting for it."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._base = base
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The host's current UNIX time."""
        with self._lock:
            return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the host clock forward by ``seconds``."""
        with self._lock:
            self._offset += seconds


class TimerThread:
    """Calls ``tick(now)`` every ``interval`` seconds on its own thread, and on demand.

    Ticks never overlap: :meth:`tick_now` asks the thread for an extra tick and waits for it.
    """

    def __init__(self, interval: float, clock: HostClock, tick: Callable[[float], None]) -> None:
        self._interval = interval
        self._clock = clock
        self._tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._thread = threading.Thread(target=self._run, name="psr-host-timer", daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a running tick to finish."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def tick_now(self, timeout: float = 30.0) -> bool:
        """Run one tick now on the timer thread; ``False`` if it did not finish in time."""
        with self._done:
            self._requested += 1
            wanted = self._requested
        self._wake.set()
        with self._done:
            return self._done.wait_for(
                lambda: self._completed >= wanted or self._stop.is_set(), timeout
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._done:
                wanted = self._requested
            try:
                self._tick(self._clock.now())
            except Exception:  # a failed tick must not end the ticking
                log.exception("timer tick failed")
            with self._done:
                self._completed = max(self._completed, wanted)
                self._done.notify_all()
