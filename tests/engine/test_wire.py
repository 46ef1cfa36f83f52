"""Answers are validated before anything is applied."""

from __future__ import annotations

from typing import Any

import pytest

from offline_addon.errors import ProtocolError
from offline_addon.protocol.answers import (
    load_head,
    load_page,
    load_policy,
    load_unchanged,
    parse_http_date,
)
from tests.support.records import delete, upsert


def _page(changes: Any, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "changes": changes,
        "next_cursor": "n",
        "has_more": False,
        "remaining": 0,
        "digest": {"count": 0, "sum": "0" * 64, "algorithm": "sha256-sum"},
    }
    body.update(extra)
    return body


def test_valid_page_loads_into_frozen_values() -> None:
    page = load_page(_page([upsert("a", 2, "Mail", username="x"), delete("b", "sealed")]))
    assert page.changes[0].record is not None
    assert page.changes[0].record.fields == {"username": "x"}
    assert page.changes[1].reason == "sealed"
    assert page.digest is not None
    assert page.digest.count == 0


def test_record_fields_are_not_in_repr() -> None:
    page = load_page(_page([upsert("a", 2, "Mail", password="hunter2")]))
    assert "hunter2" not in repr(page)


def test_unknown_keys_are_ignored() -> None:
    body = _page([upsert("a", 1)], new_server_field=1)
    assert len(load_page(body).changes) == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(op="merge"),
        lambda c: c.update(rev="3"),
        lambda c: c.update(rev=True),
        lambda c: c.update(rev=0),
        lambda c: c.pop("record"),
        lambda c: c["record"].update(id="other"),
        lambda c: c["record"].update(rev=9),
        lambda c: c["record"].update(fields={"a": 1}),
        lambda c: c["record"].update(fields=["a"]),
        lambda c: c["record"].update(name=None),
        lambda c: c["record"].update(updated_at="yesterday"),
        lambda c: c.update(id=""),
        lambda c: c.update(id="x" * 300),
    ],
)
def test_schema_violating_upsert_is_refused(mutate: Any) -> None:
    change = upsert("a", 1)
    mutate(change)
    with pytest.raises(ProtocolError, match="invalid change page"):
        load_page(_page([change]))


def test_delete_without_known_reason_is_refused() -> None:
    with pytest.raises(ProtocolError):
        load_page(_page([{"op": "delete", "id": "a", "reason": "bored"}]))


def test_last_page_without_digest_is_refused() -> None:
    body = _page([])
    del body["digest"]
    with pytest.raises(ProtocolError, match="digest"):
        load_page(body)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"changes": [], "next_cursor": "", "has_more": False, "remaining": 0},
        _page([], has_more="no"),
        _page([], remaining=-1),
        _page([], digest={"count": 0, "sum": "xyz", "algorithm": "sha256-sum"}),
        _page([], digest={"count": 0, "sum": "0" * 64, "algorithm": "sha256"}),
        _page([], digest={"count": 0, "sum": "0" * 64}),
        _page([], digest={"count": 0, "sha256": "0" * 64}),
        _page({"a": 1}),
    ],
)
def test_malformed_page_is_refused(body: Any) -> None:
    with pytest.raises(ProtocolError):
        load_page(body)


def test_error_message_names_the_field_but_no_value() -> None:
    change = upsert("a", 1, password="hunter2")
    change["record"]["updated_at"] = "hunter2"
    with pytest.raises(ProtocolError) as info:
        load_page(_page([change]))
    assert "hunter2" not in str(info.value)
    assert "changes.0" in str(info.value)


def test_policy_and_head_are_validated() -> None:
    policy = load_policy(
        {"offline_enabled": True, "offline_right": False, "validity_seconds": 60, "server_time": 5}
    )
    assert not policy.allowed
    head = load_head({"seq": 4, **HEAD_POLICY}, '"e-4-60"')
    assert (head.etag, head.seq, head.validity_seconds, head.server_time) == (
        '"e-4-60"',
        4,
        60,
        5.0,
    )
    assert head.allowed
    with pytest.raises(ProtocolError):
        load_policy(
            {
                "offline_enabled": "yes",
                "offline_right": True,
                "validity_seconds": 1,
                "server_time": 1,
            }
        )
    with pytest.raises(ProtocolError):
        load_head({"seq": -1, **HEAD_POLICY}, None)
    with pytest.raises(ProtocolError, match="validity_seconds"):
        load_head({"seq": 1, **HEAD_POLICY, "validity_seconds": "60"}, None)
    with pytest.raises(ProtocolError, match="server_time"):
        load_head(
            {"seq": 1, "offline_enabled": True, "offline_right": True, "validity_seconds": 60}, None
        )


HEAD_POLICY = {
    "offline_enabled": True,
    "offline_right": True,
    "validity_seconds": 60,
    "server_time": 5,
}


def test_a_304_takes_its_server_time_from_the_date_header() -> None:
    unchanged = load_unchanged('"e-4-60"', "Tue, 14 Nov 2023 22:13:20 GMT")
    assert (unchanged.etag, unchanged.server_time) == ('"e-4-60"', 1_700_000_000.0)
    assert load_unchanged(None, "Tue, 14 Nov 2023 22:13:20 -0000").server_time == 1_700_000_000.0


@pytest.mark.parametrize(
    "date",
    [
        None,
        "",
        "yesterday",
        "Tue, 99 Nov 2023 25:13:20 GMT",
        "Tue, 14 Nov 99999999 22:13:20 GMT",
        "\x00",
    ],
)
def test_a_304_without_a_usable_date_has_no_server_time(date: str | None) -> None:
    assert parse_http_date(date) is None
