"""When a copy warns of its coming expiry, and how it says it (issue 16, item 3): plain
functions over plain numbers, no clock."""

from __future__ import annotations

import pytest

from offline_addon.protocol.validity import expiry_stage, expiry_warning_s, next_stage_at
from offline_addon.runtime.expiry import ExpiryNotices, next_check_at
from offline_addon.runtime.status import expiry_words, humane_duration

HOUR = 3600.0
DAY = 86400.0


@pytest.mark.parametrize(
    ("validity", "warns_for"),
    [
        (7 * DAY, 7 * DAY / 5),  # a fifth of a week is more than a day
        (30 * DAY, 6 * DAY),
        (3 * DAY, DAY),  # a day is more than a fifth
        (8 * HOUR, 4 * HOUR),  # never more than half: a fresh copy does not warn at once
        (1.0, 0.5),
    ],
)
def test_the_warning_starts_a_day_or_a_fifth_before_the_end_whichever_is_first(
    validity: float, warns_for: float
) -> None:
    assert expiry_warning_s(validity) == pytest.approx(warns_for)


def test_the_stages_are_the_warning_time_and_the_last_hour() -> None:
    week = 7 * DAY
    assert expiry_stage(week, week) == 0  # just renewed
    assert expiry_stage(1.5 * DAY, week) == 0
    assert expiry_stage(1.3 * DAY, week) == 1
    assert expiry_stage(59 * 60, week) == 2
    assert expiry_stage(0.0, week) == 0  # over: the refusal says it
    assert expiry_stage(-5.0, week) == 0
    assert expiry_stage(10.0, 0) == 0
    # a short validity has one stage only, so that two warnings do not come together
    assert expiry_stage(30 * 60, 2 * HOUR) == 1


def test_the_next_stage_begins_at_the_warning_time_then_the_last_hour() -> None:
    week = 7 * DAY
    until = 1_000_000.0
    assert next_stage_at(until, week, until - week) == pytest.approx(until - week / 5)
    assert next_stage_at(until, week, until - DAY) == pytest.approx(until - HOUR)
    assert next_stage_at(until, week, until - 10) is None
    assert next_check_at(None, until, 0.0) == float("inf")


def test_each_stage_is_told_once_per_contact_and_a_renewal_starts_afresh() -> None:
    notices = ExpiryNotices()
    last, until = 0.0, 7 * DAY
    assert notices.due("c", last, until, until - 2 * DAY) is None  # not near yet
    assert notices.due("c", last, until, until - 5 * HOUR) == pytest.approx(5 * HOUR)
    assert notices.due("c", last, until, until - 4 * HOUR) is None  # same stage: said
    assert notices.due("c", last, until, until - 0.5 * HOUR) == pytest.approx(0.5 * HOUR)
    assert notices.due("c", last, until, until - 0.2 * HOUR) is None
    assert notices.due("other", last, until, until - 5 * HOUR) is not None  # per copy
    renewed = until - 5 * HOUR + 7 * DAY
    assert notices.due("c", until - 5 * HOUR, renewed, renewed - 5 * HOUR) is not None
    assert notices.due("c", None, until, 0.0) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (-4.0, "less than a minute"),
        (59.9, "less than a minute"),
        (60.0, "1 minute"),
        (119 * 60 + 59, "119 minutes"),
        (5.5 * HOUR, "5 hours"),  # rounded down: never promising more than there is
        (47.9 * HOUR, "47 hours"),
        (2 * DAY, "2 days"),
        (6.99 * DAY, "6 days"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, words: str) -> None:
    assert humane_duration(seconds) == words


def test_the_warning_says_how_long_and_what_to_do() -> None:
    assert expiry_words(5.5 * HOUR) == "usable offline for 5 more hours; connect to renew"
    assert expiry_words(30.0) == "usable offline for less than a minute; connect to renew"
    assert expiry_words(60.0) == "usable offline for 1 more minute; connect to renew"
