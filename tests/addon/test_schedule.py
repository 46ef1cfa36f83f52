"""The pure schedule: interval, debounce, coalescing, back-off and notify-once, on a fake clock."""

from __future__ import annotations

from offline_addon.runtime.schedule import (
    DEFAULT_BACKOFF_CAP_S,
    SyncSchedule,
    SyncTrigger,
)
from offline_addon.settings import AddonSettings

T0 = 1_800_000_000.0


def armed(interval_s: float = 30 * 60, **kwargs: object) -> SyncSchedule:
    schedule = SyncSchedule(interval_s, **kwargs)  # type: ignore[arg-type]
    schedule.arm(T0)
    return schedule


def run_sync(schedule: SyncSchedule, now: float) -> None:
    schedule.started(now)
    schedule.succeeded(now)


def test_interval_default_is_thirty_minutes() -> None:
    schedule = armed(AddonSettings().interval_seconds)
    assert not schedule.interval_due(T0 + 29 * 60 + 59)
    assert not schedule.is_due(T0 + 29 * 60 + 59)
    assert schedule.interval_due(T0 + 30 * 60)
    assert schedule.is_due(T0 + 30 * 60)


def test_interval_counts_from_the_last_finished_sync() -> None:
    schedule = armed()
    run_sync(schedule, T0 + 10 * 60)
    assert not schedule.is_due(T0 + 30 * 60)
    assert schedule.is_due(T0 + 40 * 60)


def test_nothing_is_automatic_before_the_copy_exists() -> None:
    schedule = SyncSchedule(30 * 60)
    assert not schedule.trigger(SyncTrigger.SAVE, T0)
    assert not schedule.trigger(SyncTrigger.LOGIN, T0)
    assert schedule.next_due() is None
    assert not schedule.is_due(T0 + 10 * 86400)


def test_save_is_debounced_two_seconds() -> None:
    schedule = armed()
    schedule.trigger(SyncTrigger.SAVE, T0)
    assert not schedule.is_due(T0 + 1.9)
    assert schedule.is_due(T0 + 2.0)


def test_burst_of_hundred_saves_makes_at_most_two_syncs() -> None:
    schedule = armed()
    syncs = 0
    now = T0
    for _ in range(100):  # one save every 50 ms, checking what is due in between
        schedule.trigger(SyncTrigger.SAVE, now)
        if schedule.is_due(now):
            run_sync(schedule, now)
            syncs += 1
        now += 0.05
    while schedule.next_due() is not None and schedule.next_due() <= now + 60:  # type: ignore[operator]
        now = max(now, schedule.next_due())  # type: ignore[type-var]
        run_sync(schedule, now)
        syncs += 1
    assert 1 <= syncs <= 2


def test_endless_saves_still_sync_within_the_maximum_delay() -> None:
    schedule = armed()
    now = T0
    while not schedule.is_due(now):
        schedule.trigger(SyncTrigger.SAVE, now)
        now += 1.0
        assert now - T0 <= schedule.max_delay_s + 1
    assert now - T0 >= schedule.max_delay_s


def test_nothing_is_due_while_a_sync_runs_and_triggers_fold_into_one_follow_up() -> None:
    schedule = armed()
    schedule.started(T0)
    for i in range(50):
        schedule.trigger(SyncTrigger.SAVE, T0 + i * 0.01)
        schedule.trigger(SyncTrigger.LOGIN, T0 + i * 0.01)
        assert not schedule.is_due(T0 + 100)
    schedule.succeeded(T0 + 1)
    assert schedule.is_due(T0 + 3)
    schedule.started(T0 + 3)  # the one follow-up serves every trigger that came
    schedule.succeeded(T0 + 4)
    assert not schedule.is_due(T0 + 5)


def test_backoff_grows_with_full_jitter_and_is_capped() -> None:
    ceilings: list[float] = []

    def uniform(low: float, high: float) -> float:
        ceilings.append(high)
        return high  # the top of the jitter range

    schedule = armed(uniform=uniform)
    for _ in range(12):
        schedule.started(T0)
        verdict = schedule.failed(T0, "ServerUnreachable")
        assert verdict.retry_at is not None
        assert verdict.retry_at - T0 <= DEFAULT_BACKOFF_CAP_S
    assert ceilings[:4] == [30.0, 60.0, 120.0, 240.0]
    assert ceilings[-1] == DEFAULT_BACKOFF_CAP_S


def test_jitter_is_drawn_from_zero_to_the_ceiling() -> None:
    ranges: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    schedule = armed(uniform=uniform)
    schedule.started(T0)
    verdict = schedule.failed(T0, "ServerError")
    assert ranges == [(0.0, 30.0)]
    assert verdict.retry_at == T0 + 1.0  # never a busy loop


def test_retry_after_is_honoured() -> None:
    schedule = armed(uniform=lambda low, high: low)
    schedule.started(T0)
    verdict = schedule.failed(T0, "ServerBusy", retry_after=120.0)
    assert verdict.retry_at == T0 + 120.0
    schedule.trigger(SyncTrigger.SAVE, T0 + 1)
    assert not schedule.is_due(T0 + 119)
    assert schedule.is_due(T0 + 120)


def test_automatic_triggers_wait_for_the_backoff() -> None:
    schedule = armed(uniform=lambda low, high: high)
    schedule.started(T0)
    schedule.failed(T0, "ServerUnreachable")
    schedule.trigger(SyncTrigger.SAVE, T0 + 1)
    assert not schedule.is_due(T0 + 5)
    assert not schedule.has_pending(T0 + 5)


def test_failure_is_told_once_per_streak() -> None:
    schedule = armed()
    told = []
    for _ in range(5):
        schedule.started(T0)
        told.append(schedule.failed(T0, "ServerUnreachable").notify)
    assert told == [True, False, False, False, False]
    schedule.started(T0)
    assert schedule.failed(T0, "StorageError").notify  # a different problem is news
    schedule.started(T0)
    assert schedule.succeeded(T0)  # the streak ended
    schedule.started(T0)
    assert schedule.failed(T0, "ServerUnreachable").notify


def test_not_retryable_failure_drops_automatic_syncs() -> None:
    schedule = armed()
    schedule.trigger(SyncTrigger.SAVE, T0)
    schedule.started(T0)
    verdict = schedule.failed(T0, "AuthenticationRequired", retryable=False)
    assert verdict.retry_at is None
    assert schedule.next_due() is None


def test_changed_interval_applies_from_the_last_sync() -> None:
    schedule = armed()
    run_sync(schedule, T0)
    schedule.set_interval(5 * 60, T0 + 60)
    assert schedule.is_due(T0 + 5 * 60)


def test_login_sync_is_due_after_a_short_settle_even_during_a_backoff() -> None:
    # The longest back-off the jitter can draw, so that it is still running at the login.
    schedule = armed(uniform=lambda low, high: high)
    schedule.started(T0)
    schedule.failed(T0, "ServerUnreachable")
    schedule.trigger(SyncTrigger.LOGIN, T0 + 1)
    assert schedule.next_due() == T0 + 1 + schedule.login_settle_s


def test_a_sync_right_after_login_serves_the_login_trigger_too() -> None:
    schedule = armed()
    schedule.trigger(SyncTrigger.LOGIN, T0)
    assert schedule.has_pending(T0)
    run_sync(schedule, T0 + 0.01)
    assert not schedule.is_due(T0 + 5)
    assert not schedule.has_pending(T0 + 5)


def test_disarm_drops_every_automatic_trigger() -> None:
    schedule = armed()
    schedule.trigger(SyncTrigger.SAVE, T0)
    schedule.disarm()
    assert schedule.next_due() is None
    assert not schedule.trigger(SyncTrigger.SAVE, T0)
