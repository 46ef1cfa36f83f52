"""A hostile server meets the push: one that hangs, floods, lies or keeps moving the record
never hangs the sync, never floods memory, and never costs a pending change (issue 15)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline_addon.errors import ProtocolError, ServerError, ServerUnreachable
from offline_addon.protocol.merge import PASSWORD_FIELD
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.push import SENDS_PER_CHANGE
from tests.support.copies import paths_of
from tests.support.edits import SECRET
from tests.support.hostile import PASSWORD, HostileServer, Reply


@pytest.fixture
def srv() -> Iterator[HostileServer]:
    with HostileServer(lifetime_s=30) as server:
        yield server


@pytest.fixture
def paths(srv: HostileServer, tmp_path: Path) -> CopyPaths:
    """A copy of the hostile server's three records with one offline edit of ``r0``."""
    paths = paths_of(tmp_path / "OfflineDB", srv.session)
    sync_copy(paths, srv.session, create=True, client=srv.client())
    with OfflineCopy.open(paths, PASSWORD) as copy:
        record = copy.get("r0")
        assert record is not None
        LocalChanges(copy).edit_record("r0", fields={**record.fields, PASSWORD_FIELD: SECRET})
    return paths


def _still_pending(paths: CopyPaths) -> None:
    with OfflineCopy.open(paths, PASSWORD) as copy:
        assert copy.integrity_ok()
        [entry] = LocalChanges(copy).pending()
        assert entry.changes[PASSWORD_FIELD].new == SECRET
        record = copy.get("r0")
        assert record is not None
        assert record.fields[PASSWORD_FIELD] == SECRET


def _record(record_id: str, rev: int, password: str) -> dict[str, object]:
    fields = {"username": f"u-{record_id}", "password": password}
    return {"id": record_id, "rev": rev, "name": "Name", "fields": fields, "updated_at": 1.0}


def test_a_server_that_never_answers_a_write_is_cut_off(
    srv: HostileServer, paths: CopyPaths
) -> None:
    srv.route("/records/", Reply(stall=True))
    started = time.monotonic()
    with pytest.raises(ServerUnreachable):
        sync_copy(paths, srv.session, create=False, client=srv.client(request_deadline_s=1.0))
    assert time.monotonic() - started < 10
    _still_pending(paths)


def test_a_flood_in_a_write_answer_is_refused(srv: HostileServer, paths: CopyPaths) -> None:
    flood = json.dumps({"code": "revision_moved", "current": "x" * (3 * 1024 * 1024)})
    srv.route(
        "/records/", Reply(412, [("Content-Type", "application/problem+json")], flood.encode())
    )
    with pytest.raises(ProtocolError, match="larger than"):
        sync_copy(paths, srv.session, create=False, client=srv.client(max_body_bytes=1024 * 1024))
    _still_pending(paths)


def test_an_answer_for_another_record_is_a_protocol_error(
    srv: HostileServer, paths: CopyPaths
) -> None:
    srv.route("/records/", Reply.json(_record("r1", 2, "pw-lie"), 200))
    with pytest.raises(ProtocolError):
        sync_copy(paths, srv.session, create=False, client=srv.client())
    _still_pending(paths)


def test_a_failing_server_keeps_the_change_pending(srv: HostileServer, paths: CopyPaths) -> None:
    srv.route("/records/", Reply.problem(500, "server_error"))
    with pytest.raises(ServerError):
        sync_copy(paths, srv.session, create=False, client=srv.client())
    _still_pending(paths)


def test_a_record_that_keeps_moving_is_sent_a_bounded_number_of_times(
    srv: HostileServer, paths: CopyPaths
) -> None:
    moves = iter(range(2, 1000))

    def moved(_path: str, _query: object, _headers: object) -> Reply:
        current = _record("r0", next(moves), "secret-r0")  # the password the user saw
        body = json.dumps({"code": "revision_moved", "status": 412, "current": current})
        return Reply(412, [("Content-Type", "application/problem+json")], body.encode())

    srv.route("/records/", moved)
    result = sync_copy(paths, srv.session, create=False, client=srv.client())
    assert srv.hits("/records/") == SENDS_PER_CHANGE
    assert result.changes_pushed == 0
    assert "1 offline change waits for the next synchronisation." in result.message
    _still_pending(paths)
