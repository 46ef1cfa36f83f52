"""Fuzzing the add-on's parsers of server answers (offline_addon.protocol.answers) with hypothesis.

Whatever the server (or something in between) sends, the parser either returns a value or
raises ProtocolError with a message that names no value from the answer; nothing else escapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_addon.errors import ProtocolError
from offline_addon.protocol import answers as wire

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)

ids = st.text(min_size=1, max_size=40)
secret_text = st.text(min_size=12, max_size=30).map(lambda s: "SECRET-" + s)


@st.composite
def records(draw: st.DrawFn, rid: str, rev: int) -> dict[str, Any]:
    return {
        "id": rid,
        "rev": rev,
        "name": draw(secret_text),
        "fields": draw(
            st.dictionaries(
                st.sampled_from(["username", "password", "url", "notes"]), secret_text, max_size=4
            )
        ),
        "updated_at": draw(st.floats(min_value=0, max_value=4e9)),
    }


@st.composite
def changes(draw: st.DrawFn) -> dict[str, Any]:
    rid = draw(ids)
    if draw(st.booleans()):
        rev = draw(st.integers(min_value=1, max_value=10**6))
        return {"op": "upsert", "id": rid, "rev": rev, "record": draw(records(rid, rev))}
    return {
        "op": "delete",
        "id": rid,
        "reason": draw(st.sampled_from(["deleted", "revoked", "sealed"])),
    }


@st.composite
def valid_pages(draw: st.DrawFn) -> dict[str, Any]:
    has_more = draw(st.booleans())
    page: dict[str, Any] = {
        "changes": draw(st.lists(changes(), max_size=8)),
        "next_cursor": draw(st.text(min_size=1, max_size=60)),
        "has_more": has_more,
        "remaining": draw(st.integers(min_value=0, max_value=10**6)),
    }
    if not has_more:
        page["digest"] = {
            "count": draw(st.integers(min_value=0, max_value=10**6)),
            "sum": draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
            "algorithm": "sha256-sum",
        }
    return page


@st.composite
def corrupted_pages(draw: st.DrawFn) -> Any:
    """A valid page with one value somewhere replaced by arbitrary JSON (or a key dropped)."""
    page = draw(valid_pages())
    node: Any = page
    while True:
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            key = draw(st.integers(min_value=0, max_value=len(node) - 1))
        else:
            return page
        child = node[key]
        if not isinstance(child, dict | list) or not child or draw(st.booleans()):
            if isinstance(node, dict) and draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(json_values)
            return page
        node = child


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the valid value, sometimes any JSON value in its place."""
    return st.one_of(valid, valid, json_values)


@st.composite
def wild_pages(draw: st.DrawFn) -> dict[str, Any]:
    """Pages whose changes have the right keys with, field by field, wrong values: the
    shape a buggy or hostile server most likely sends (and where type checks matter most)."""
    wild_change = st.fixed_dictionaries(
        {"op": _maybe(st.sampled_from(["upsert", "delete"])), "id": _maybe(ids)},
        optional={
            "rev": _maybe(st.integers(min_value=1, max_value=10)),
            "reason": _maybe(st.sampled_from(["deleted", "revoked", "sealed"])),
            "record": _maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "id": _maybe(ids),
                        "rev": _maybe(st.integers(min_value=1, max_value=10)),
                        "name": _maybe(secret_text),
                        "fields": _maybe(st.dictionaries(st.text(max_size=5), secret_text)),
                        "updated_at": _maybe(st.floats(min_value=0, max_value=4e9)),
                    },
                )
            ),
        },
    )
    page = draw(valid_pages())
    page["changes"] = draw(st.lists(wild_change, min_size=1, max_size=4))
    return page


def _strings_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings_in(v) for v in value)) if value else set()
    return set()


def _parse(payload: Any) -> None:
    """Parse; a refusal must be a ProtocolError that names no record content."""
    message: str | None = None
    try:
        wire.load_page(payload)
    except ProtocolError as exc:
        message = str(exc)
    if message is None:
        return
    assert message, "a ProtocolError must say what is wrong"
    for text in _strings_in(payload):
        if text.startswith("SECRET-"):
            assert text not in message, "record content leaked into an error message"


@FUZZ
@given(valid_pages())
def test_valid_pages_parse_to_the_same_changes(page: dict[str, Any]) -> None:
    parsed = wire.load_page(json.loads(json.dumps(page)))
    assert [c.id for c in parsed.changes] == [c["id"] for c in page["changes"]]
    assert [c.op for c in parsed.changes] == [c["op"] for c in page["changes"]]
    assert parsed.next_cursor == page["next_cursor"]
    assert parsed.has_more is page["has_more"]
    for change, raw in zip(parsed.changes, page["changes"], strict=True):
        if raw["op"] == "upsert":
            assert change.record is not None
            assert change.record.fields == raw["record"]["fields"]
            assert change.rev == raw["rev"]


@FUZZ
@given(corrupted_pages())
def test_corrupted_pages_raise_only_protocol_error(payload: Any) -> None:
    _parse(payload)


@FUZZ
@given(wild_pages())
def test_changes_with_wrong_field_types_raise_only_protocol_error(payload: Any) -> None:
    _parse(payload)


def test_a_delete_with_a_list_as_reason_is_refused_cleanly() -> None:
    """Found by the fuzzing above: an unhashable reason must not escape as TypeError."""
    page = {
        "changes": [{"op": "delete", "id": "a", "reason": ["deleted"]}],
        "next_cursor": "c",
        "has_more": True,
        "remaining": 0,
    }
    with pytest.raises(ProtocolError):
        wire.load_page(page)


@FUZZ
@given(json_values)
def test_arbitrary_json_raises_only_protocol_error(payload: Any) -> None:
    _parse(payload)


@FUZZ
@given(st.sampled_from(["load_policy", "load_head"]), json_values)
def test_policy_and_head_parsers_raise_only_protocol_error(which: str, payload: Any) -> None:
    message = "parsed"
    try:
        if which == "load_head":
            wire.load_head(payload, None)
        else:
            wire.load_policy(payload)
    except ProtocolError as exc:
        message = str(exc)
    assert message


def test_a_page_with_a_mismatched_record_id_is_refused() -> None:
    page = {
        "changes": [
            {
                "op": "upsert",
                "id": "a",
                "rev": 1,
                "record": {"id": "b", "rev": 1, "name": "n", "fields": {}, "updated_at": 1.0},
            }
        ],
        "next_cursor": "c",
        "has_more": True,
        "remaining": 0,
    }
    with pytest.raises(ProtocolError):
        wire.load_page(page)


def test_a_last_page_without_digest_is_refused() -> None:
    page = {"changes": [], "next_cursor": "c", "has_more": False, "remaining": 0}
    with pytest.raises(ProtocolError):
        wire.load_page(page)
