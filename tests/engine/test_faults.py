"""Bad answers and server failures never change the copy and map to clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hookspecs import Session
from offline_addon.errors import (
    AuthenticationRequired,
    ProtocolError,
    ServerBusy,
    ServerError,
    ServerUnreachable,
)
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.engine import sync_copy
from offline_addon.sync.transport import SyncClient
from reference_server.testing import RunningServer
from tests.support.copies import paths_of
from tests.support.faults import Fault, FaultProxy
from tests.support.records import server_records

LIMIT = 40


def snapshot(paths: CopyPaths) -> tuple[str | None, dict[str, tuple[int, str]]]:
    with OfflineCopy.open(paths, "alice-pw") as copy:
        return copy.cursor, {r.record_id: (r.rev, r.name) for r in copy.list_records()}


@pytest.fixture
def synced(demo: RunningServer, alice: Session, folder: Path) -> CopyPaths:
    """Alice's copy after a first sync, and two later server changes not yet synced."""
    ids = demo.admin.import_records("demo", server_records(100), grant={"alice": "rwe"})
    paths = paths_of(folder, alice)
    sync_copy(paths, alice, create=True, page_limit=LIMIT)
    demo.admin.update_record("demo", ids[0], name="Updated")
    demo.admin.delete_record("demo", ids[1])
    return paths


def _schema_violation(page: dict[str, Any]) -> dict[str, Any]:
    page["changes"].append({"op": "upsert", "id": "evil", "rev": "two", "record": {}})
    return page


MALFORMED = {
    "garbage": Fault("malformed_json", times=0),
    "schema": Fault("mutate", mutate=_schema_violation, times=0),
    "huge": Fault("body", body=b'{"changes": [' + b" " * 300_000 + b"]}", times=0),
}
BUSY = Fault("status", status=503, retry_after=1, times=0)


def _client(url: str, session: Session, **kwargs: object) -> SyncClient:
    return SyncClient(url, session.token, session.client_id, sleep=lambda s: None, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["garbage", "schema", "huge"])
def test_malformed_page_leaves_the_copy_untouched(
    demo: RunningServer, alice: Session, synced: CopyPaths, mode: str
) -> None:
    before = snapshot(synced)
    with (
        FaultProxy(demo.url) as proxy,
        _client(proxy.url, alice, max_body_bytes=200_000) as client,
    ):
        proxy.arm(MALFORMED[mode])
        with pytest.raises(ProtocolError, match="nothing was changed") as info:
            sync_copy(synced, alice, create=False, client=client, page_limit=LIMIT)
    assert "Updated" not in str(info.value)
    assert snapshot(synced) == before
    result = sync_copy(synced, alice, create=False, page_limit=LIMIT)
    assert (result.changed, result.removed) == (1, 1)


def test_bad_second_page_keeps_the_first_page_and_resumes_after_it(
    demo: RunningServer, alice: Session, folder: Path
) -> None:
    demo.admin.import_records("demo", server_records(100), grant={"alice": "rwe"})
    paths = paths_of(folder, alice)
    with FaultProxy(demo.url) as proxy, _client(proxy.url, alice) as client:
        proxy.arm(Fault("mutate", mutate=_schema_violation, nth=2, times=0))
        with pytest.raises(ProtocolError):
            sync_copy(paths, alice, create=True, client=client, page_limit=LIMIT)
    cursor, records = snapshot(paths)
    assert cursor is not None
    assert len(records) == LIMIT
    result = sync_copy(paths, alice, create=False, page_limit=LIMIT)
    assert result.added == 100 - LIMIT
    assert snapshot(paths)[1].keys() == demo.admin.exportable_view("demo", "alice").keys()


def test_feed_refused_with_403_after_the_policy_wipes_the_copy(
    demo: RunningServer, alice: Session, synced: CopyPaths
) -> None:
    refused = Fault("status", status=403, code="offline_disabled", times=0)
    with FaultProxy(demo.url) as proxy, _client(proxy.url, alice) as client:
        proxy.arm(refused)
        result = sync_copy(synced, alice, create=False, client=client)
    assert result.outcome == "wiped"
    assert not synced.db.exists()
    assert not synced.sidecar.exists()


def test_server_failure_and_busy_map_to_errors_and_change_nothing(
    demo: RunningServer, alice: Session, synced: CopyPaths
) -> None:
    before = snapshot(synced)
    with FaultProxy(demo.url) as proxy, _client(proxy.url, alice) as client:
        proxy.arm(Fault("status", status=500, times=0))
        with pytest.raises(ServerError, match="HTTP 500"):
            sync_copy(synced, alice, create=False, client=client)
        proxy.arm(BUSY)
        with pytest.raises(ServerBusy) as busy:
            sync_copy(synced, alice, create=False, client=client)
        assert busy.value.retry_after == 1.0
        assert proxy.fired == 3  # two retries honouring Retry-After, then give up
        proxy.arm(replace(BUSY, retry_after=3600))
        with pytest.raises(ServerBusy) as busy:
            sync_copy(synced, alice, create=False, client=client)
        assert busy.value.retry_after == 3600.0
        assert proxy.fired == 1  # too long to wait in a thread: handed to the caller
    assert snapshot(synced) == before


def test_retry_after_within_the_cap_is_waited_for(
    demo: RunningServer, alice: Session, synced: CopyPaths
) -> None:
    waits: list[float] = []
    with FaultProxy(demo.url) as proxy:
        proxy.arm(BUSY)
        client = SyncClient(proxy.url, alice.token, alice.client_id, sleep=waits.append)
        with client, pytest.raises(ServerBusy):
            client.changes("demo", None, 10)
    assert waits == [1.0, 1.0]


def test_bad_token_asks_for_a_new_login_without_showing_the_token(
    demo: RunningServer, alice: Session, synced: CopyPaths
) -> None:
    stale = replace(alice, token="not-a-valid-token-123")
    with pytest.raises(AuthenticationRequired, match="log in again") as info:
        sync_copy(synced, stale, create=False)
    assert "not-a-valid-token-123" not in str(info.value)
    assert "not-a-valid-token-123" not in repr(SyncClient(demo.url, stale.token, "c"))


def test_unreachable_server_is_reported_and_nothing_changes(
    alice: Session, synced: CopyPaths
) -> None:
    before = snapshot(synced)
    gone = replace(alice, server_url="http://127.0.0.1:9")
    client = SyncClient(
        gone.server_url, gone.token, gone.client_id, timeout=(0.5, 0.5), sleep=lambda s: None
    )
    with client, pytest.raises(ServerUnreachable, match="network"):
        sync_copy(synced, gone, create=False, client=client)
    assert snapshot(synced) == before
