"""The engine's plain decisions: what a page changes, digests, offline validity."""

from __future__ import annotations

import hashlib

from offline_addon.protocol.digest import digest_after, digest_of
from offline_addon.protocol.page_plan import PagePlan, plan_page
from offline_addon.protocol.validity import CLOCK_TOLERANCE_SECONDS, offline_verdict
from tests.support.records import delete, page, upsert

NOTHING = PagePlan(inserts=(), updates=(), deletes=())
"""A page that writes nothing (except the cursor)."""


def test_new_records_are_inserts_and_known_newer_are_updates() -> None:
    plan = plan_page({"b": 1}, page([upsert("a", 1), upsert("b", 2)]).changes)
    assert [r.id for r in plan.inserts] == ["a"]
    assert [r.id for r in plan.updates] == ["b"]
    assert plan.deletes == ()


def test_upsert_that_is_not_newer_changes_nothing() -> None:
    plan = plan_page({"a": 3, "b": 2}, page([upsert("a", 3), upsert("b", 1)]).changes)
    assert plan == NOTHING


def test_delete_of_unknown_record_changes_nothing() -> None:
    assert plan_page({}, page([delete("x")]).changes) == NOTHING


def test_revoke_then_grant_in_one_page_keeps_the_record() -> None:
    changes = page([delete("a", "revoked"), upsert("a", 3)]).changes
    plan = plan_page({"a": 3}, changes)
    assert [r.id for r in plan.updates] == ["a"]
    assert plan.deletes == ()


def test_grant_then_revoke_in_one_page_removes_the_record() -> None:
    plan = plan_page({"a": 1}, page([upsert("a", 2), delete("a", "sealed")]).changes)
    assert plan.deletes == ("a",)
    assert plan.updates == ()


def _line(record_id: str, rev: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{record_id}:{rev}".encode()).digest(), "big")


def test_digest_matches_protocol_definition() -> None:
    pairs = [("b", 2), ("a", 10), ("a:x", 1)]
    expected = (_line("b", 2) + _line("a", 10) + _line("a:x", 1)) % 2**256
    assert digest_of(pairs).sum == f"{expected:064x}"
    assert digest_of(pairs).count == 3
    assert digest_of(reversed(pairs)) == digest_of(pairs)
    assert digest_of([]).sum == "0" * 64


def test_digest_after_a_page_equals_the_digest_from_scratch() -> None:
    held = {"a": 1, "b": 2, "c": 5, "gone": 1}
    changes = page(
        [
            upsert("a", 2),
            upsert("b", 1),
            delete("c"),
            delete("unknown"),
            upsert("new", 1),
            upsert("gone", 3),
            delete("gone", "revoked"),
        ]
    ).changes
    plan = plan_page(dict(held), changes)
    after = digest_after(digest_of(held.items()), held, plan)
    assert after == digest_of({"a": 2, "b": 2, "new": 1}.items())


def test_digest_sum_wraps_modulo_two_to_the_256() -> None:
    many = [(f"r{i}", 1) for i in range(50)]
    assert int(digest_of(many).sum, 16) == sum(_line(r, v) for r, v in many) % 2**256
    removed = digest_after(
        digest_of(many),
        dict(many),
        plan_page(dict(many), page([delete(r) for r, _v in many]).changes),
    )
    assert removed == digest_of([])


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
