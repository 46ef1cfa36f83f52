"""The write side's answers and words, as plain functions: what a write's answer means, the
policy's ``offline_editing``, and how a sync's result speaks of pushes and conflicts."""

from __future__ import annotations

import json

import pytest

from offline_addon.errors import ProtocolError
from offline_addon.protocol.answers import load_head, load_policy, load_write_answer
from offline_addon.protocol.merge import RecordContent, ServerRecord
from offline_addon.sync.result import lost_with_copy, push_words
from tests.support.edits import SECRET

PROBLEM = "application/problem+json"
RECORD = {"id": "r1", "rev": 4, "name": "Router", "fields": {"password": SECRET}, "updated_at": 1.0}


def _problem(code: str, **extra: object) -> bytes:
    body = {"type": "about:blank", "title": "t", "status": 400, "code": code, "detail": "d"}
    return json.dumps({**body, **extra}).encode()


def test_a_stored_record_is_done_with_the_servers_record() -> None:
    answer = load_write_answer(200, "application/json", json.dumps(RECORD).encode(), record_id="r1")
    assert answer is not None
    assert answer.status == "done"
    assert answer.record == ServerRecord(4, RecordContent("Router", {"password": SECRET}))


def test_an_answer_for_another_record_is_refused() -> None:
    with pytest.raises(ProtocolError):
        load_write_answer(201, "application/json", json.dumps(RECORD).encode(), record_id="r2")


def test_a_moved_revision_carries_the_current_record() -> None:
    body = _problem("revision_moved", current=RECORD)
    answer = load_write_answer(412, PROBLEM, body, record_id="r1")
    assert answer is not None
    assert answer.status == "moved"
    assert answer.record is not None
    assert answer.record.rev == 4


def test_a_moved_revision_without_a_valid_record_asks_again() -> None:
    answer = load_write_answer(412, PROBLEM, _problem("revision_moved", current={}), record_id="r1")
    assert answer is not None
    assert (answer.status, answer.record) == ("moved", None)


@pytest.mark.parametrize(
    ("status", "code", "meaning"),
    [
        (403, "no_write_right", "refused"),
        (403, "record_sealed", "refused"),
        (404, "unknown_record", "refused"),
        (410, "record_deleted", "deleted"),
        (204, "", "done"),
    ],
)
def test_what_each_answer_means(status: int, code: str, meaning: str) -> None:
    answer = load_write_answer(status, PROBLEM, _problem(code) if code else b"", record_id="r1")
    assert answer is not None
    assert answer.status == meaning


@pytest.mark.parametrize("status", [401, 429, 500, 503, 302])
def test_other_answers_are_the_transports_errors(status: int) -> None:
    assert load_write_answer(status, PROBLEM, _problem("busy"), record_id="r1") is None


def test_an_unknown_database_is_no_refusal_of_the_change() -> None:
    assert load_write_answer(404, PROBLEM, _problem("unknown_database"), record_id="r1") is None


def test_offline_editing_is_read_from_policy_and_head_and_defaults_to_off() -> None:
    policy = {
        "offline_enabled": True,
        "offline_right": True,
        "validity_seconds": 60,
        "server_time": 1.0,
    }
    assert not load_policy(policy).offline_editing
    assert load_policy({**policy, "offline_editing": True}).offline_editing
    assert load_head({**policy, "seq": 1, "offline_editing": True}, '"e"').offline_editing
    with pytest.raises(ProtocolError):
        load_policy({**policy, "offline_editing": "yes"})


def test_the_words_of_a_push_count_right() -> None:
    assert push_words(0, 0) == ""
    assert push_words(1, 0) == "1 offline change saved to the server."
    assert push_words(3, 1) == "3 offline changes saved to the server; 1 conflict to resolve."
    assert push_words(0, 2) == "2 conflicts to resolve."
    assert push_words(0, 0, waiting=1) == ("1 offline change waits for the next synchronisation.")
    refused = push_words(0, 1, ["Router"])
    assert refused.startswith("1 conflict to resolve. Not saved")
    assert "'Router'" in refused


def test_many_names_are_counted_not_listed() -> None:
    text = lost_with_copy([f"Record {i}" for i in range(8)])
    assert "'Record 4' and 3 more" in text
    assert "'Record 5'" not in text
    assert lost_with_copy([]) == ""
