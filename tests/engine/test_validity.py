"""The offline validity and clock checks as a pure decision over plain data (a fake clock)."""

from __future__ import annotations

from offline_addon.protocol.validity import CLOCK_TOLERANCE_SECONDS, offline_verdict

T = 1_700_000_000.0
DAY = 86400.0
WEEK = 7 * 86400


def verdict(now: float, high_water: float | None = None) -> str | None:
    return offline_verdict(
        last_contact=T, validity_seconds=WEEK, now=now, high_water=high_water
    ).problem


def test_inside_the_validity_it_opens_and_after_it_it_is_expired() -> None:
    assert verdict(T + 6 * DAY) is None
    assert verdict(T + 8 * DAY) == "expired"


def test_a_clock_set_back_after_an_expired_open_is_refused() -> None:
    # The walk-around of before: expired at T+8 days, the clock set back to T+1 day opened.
    assert verdict(T + 8 * DAY) == "expired"
    assert verdict(T + 1 * DAY, high_water=T + 8 * DAY) == "clock_went_back"
    assert verdict(T + 1 * DAY, high_water=T + 400 * DAY) == "clock_went_back"


def test_a_small_step_back_within_the_tolerance_still_opens() -> None:
    seen = T + 2 * DAY
    assert verdict(seen - CLOCK_TOLERANCE_SECONDS + 1, high_water=seen) is None
    assert verdict(seen - CLOCK_TOLERANCE_SECONDS - 1, high_water=seen) == "clock_went_back"


def test_without_a_high_water_mark_only_the_last_contact_counts() -> None:
    assert verdict(T - 3 * DAY) == "clock_went_back"
    assert verdict(T + 1 * DAY) is None
