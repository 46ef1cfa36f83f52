"""The clock the schedule runs on: the system clock shifted to the host's time."""

from __future__ import annotations

import time
from collections.abc import Callable


class ScheduleClock:
    """The add-on's schedule clock: the system clock shifted to the host's time.

    ``on_timer`` hands the host's ``now``; the add-on keeps the offset to the system clock so
    that decisions between ticks (debounce, back-off) use the same time line as the ticks. A
    host that drives time in tests thereby drives the add-on too. ``base`` is injectable for
    tests of the add-on alone. (Not the host's own clock, ``reference_host.timer.HostClock``,
    which this one follows.)
    """

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._base = base
        self._offset = 0.0

    def observe(self, host_now: float) -> None:
        """Learn the host's current time (one float store: safe from any thread)."""
        self._offset = host_now - self._base()

    def __call__(self) -> float:
        return self._base() + self._offset
