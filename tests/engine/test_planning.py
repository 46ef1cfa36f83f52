"""The engine's plain decisions: what a page changes, digests, offline validity."""

from __future__ import annotations

import hashlib

from offline_addon.planning import (
    CLOCK_TOLERANCE_SECONDS,
    DIGEST_ALWAYS_BELOW,
    digest_of,
    offline_verdict,
    plan_page,
    should_check_full_digest,
)

from .helpers import delete, page, upsert


def test_new_records_are_inserts_and_known_newer_are_updates() -> None:
    plan = plan_page({"b": 1}, page([upsert("a", 1), upsert("b", 2)]).changes)
    assert [r.id for r in plan.inserts] == ["a"]
    assert [r.id for r in plan.updates] == ["b"]
    assert plan.deletes == ()


def test_upsert_that_is_not_newer_changes_nothing() -> None:
    plan = plan_page({"a": 3, "b": 2}, page([upsert("a", 3), upsert("b", 1)]).changes)
    assert plan.is_empty


def test_delete_of_unknown_record_changes_nothing() -> None:
    assert plan_page({}, page([delete("x")]).changes).is_empty


def test_revoke_then_grant_in_one_page_keeps_the_record() -> None:
    changes = page([delete("a", "revoked"), upsert("a", 3)]).changes
    plan = plan_page({"a": 3}, changes)
    assert [r.id for r in plan.updates] == ["a"]
    assert plan.deletes == ()


def test_grant_then_revoke_in_one_page_removes_the_record() -> None:
    plan = plan_page({"a": 1}, page([upsert("a", 2), delete("a", "sealed")]).changes)
    assert plan.deletes == ("a",)
    assert plan.updates == ()


def test_digest_matches_protocol_definition() -> None:
    pairs = [("b", 2), ("a", 10), ("a:x", 1)]
    lines = sorted(["b:2", "a:10", "a:x:1"])
    expected = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert digest_of(pairs).sha256 == expected
    assert digest_of(pairs).count == 3
    assert digest_of([]).sha256 == hashlib.sha256(b"").hexdigest()


def test_full_digest_is_skipped_only_for_big_copies_checked_recently() -> None:
    big = DIGEST_ALWAYS_BELOW + 1
    assert should_check_full_digest(full_sync=True, record_count=big, last_full_check=99, now=100)
    assert should_check_full_digest(full_sync=False, record_count=10, last_full_check=99, now=100)
    assert not should_check_full_digest(
        full_sync=False, record_count=big, last_full_check=99, now=100
    )
    assert should_check_full_digest(
        full_sync=False, record_count=big, last_full_check=None, now=100
    )
    assert should_check_full_digest(full_sync=False, record_count=big, last_full_check=200, now=100)
    assert should_check_full_digest(full_sync=False, record_count=big, last_full_check=0, now=10**9)


def test_copy_within_validity_opens() -> None:
    assert offline_verdict(last_contact=1000, validity_seconds=3600, now=4000).allowed


def test_copy_past_validity_is_expired() -> None:
    verdict = offline_verdict(last_contact=1000, validity_seconds=3600, now=4601)
    assert verdict.problem == "expired"


def test_clock_set_back_beyond_tolerance_is_refused() -> None:
    now = 1000 - CLOCK_TOLERANCE_SECONDS - 1
    verdict = offline_verdict(last_contact=1000, validity_seconds=3600, now=now)
    assert verdict.problem == "clock_went_back"


def test_clock_slightly_back_within_tolerance_is_accepted() -> None:
    assert offline_verdict(last_contact=1000, validity_seconds=3600, now=900).allowed


def test_copy_never_in_contact_is_expired() -> None:
    assert offline_verdict(last_contact=None, validity_seconds=None, now=1).problem == "expired"
