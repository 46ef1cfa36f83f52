"""A property of the write side: pushes whose answers are lost and that are sent again, mixed
with other users' edits, never create a record twice, never apply a change twice, and leave
the server holding every field change, merged by the add-on's own three-way merge."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_addon.protocol.merge import (
    PendingChange,
    RecordContent,
    ServerRecord,
    changes_between,
    merge_change,
)
from reference_server.testing import RunningServer
from tests.support.api import ApiClient

RECORDS = 3
STEP = st.one_of(
    st.tuples(st.just("push"), st.integers(0, RECORDS - 1), st.sampled_from("xyz"), st.booleans()),
    st.tuples(st.just("other"), st.integers(0, RECORDS - 1), st.sampled_from("pq"), st.just(False)),
)
_databases = itertools.count()


def _push(client: ApiClient, change: PendingChange, lost: bool) -> dict[str, Any]:
    """Push one change as the add-on would: a conditional write, merged again after 412; a
    lost answer means the same request goes out once more."""
    theirs: ServerRecord | None = None
    for _ in range(5):
        result = merge_change(change, theirs)
        if result.action != "write" or result.send is None:
            raise AssertionError(f"unexpected {result.action}")
        headers = {"X-Change-Id": change.change_id, "X-Offline-Change": "1714550400"}
        if result.if_match is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = f'"{result.if_match}"'
        url = f"{client.base}/databases/{client.db}/records/{change.record_id}"
        body = {"name": result.send.name, "fields": dict(result.send.fields)}
        answer = client.http.put(url, json=body, headers=headers)
        if lost:
            answer = client.http.put(url, json=body, headers=headers)
        if answer.status_code in (200, 201):
            return dict(answer.json())
        assert answer.status_code == 412, answer.text
        current = answer.json()["current"]
        theirs = ServerRecord(current["rev"], RecordContent(current["name"], current["fields"]))
    raise AssertionError("the push did not settle")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(STEP, max_size=12),
    lost_creates=st.lists(st.booleans(), min_size=RECORDS, max_size=RECORDS),
)
def test_resent_pushes_among_other_edits_converge_without_duplicates(
    server: RunningServer, steps: list[tuple[str, int, str, bool]], lost_creates: list[bool]
) -> None:
    admin = server.admin
    db = f"resends{next(_databases)}"
    admin.create_database(db)
    user = f"u-{db}"
    admin.create_user(user, "pw-Mv6!offline-edit")
    client = ApiClient(server.url, db).login(user, "pw-Mv6!offline-edit")
    ids = [str(uuid.UUID(int=i + 1)) for i in range(RECORDS)]
    mine: dict[str, dict[str, str]] = {}
    others: dict[str, dict[str, str]] = {rid: {} for rid in ids}
    shown: dict[str, tuple[int, RecordContent]] = {}
    for rid, lost in zip(ids, lost_creates, strict=True):
        content = RecordContent("R", {"password": "pw-Mv6!offline-edit"})
        change = PendingChange(
            0, str(uuid.uuid4()), rid, "create", None, None, changes_between(None, content), 0.0
        )
        answer = _push(client, change, lost)
        shown[rid] = (answer["rev"], content)
        mine[rid] = {"password": "pw-Mv6!offline-edit"}
    for number, (kind, index, value, lost) in enumerate(steps):
        rid = ids[index]
        if kind == "other":
            fields = {**admin.exportable_view(db, user)[rid][2], "theirs": f"{value}{number}"}
            admin.update_record(db, rid, fields=fields)
            others[rid]["theirs"] = fields["theirs"]
            continue
        rev, base = shown[rid]
        wanted = RecordContent(base.name, {**base.fields, "mine": f"{value}{number}"})
        change = PendingChange(
            0, str(uuid.uuid4()), rid, "update", rev, base, changes_between(base, wanted), 0.0
        )
        answer = _push(client, change, lost)
        shown[rid] = (answer["rev"], RecordContent(answer["name"], answer["fields"]))
        mine[rid]["mine"] = wanted.fields["mine"]
    client.close()
    held = {rid: fields for rid, (_rev, _name, fields) in admin.exportable_view(db, user).items()}
    assert sorted(held) == ids  # no record created twice
    for rid in ids:
        assert held[rid] == {**mine[rid], **others[rid]}  # every change, none lost
    change_ids = [
        e.change_id for e in admin.audit_entries(db=db, limit=10_000) if e.user_name == user
    ]
    assert len(change_ids) == len(set(change_ids))  # none applied twice
