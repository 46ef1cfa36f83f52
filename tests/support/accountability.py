"""The server side of offline accountability as the server tests speak it: access events and
their batches, copy reports, a server manager's requests, and the requests that produce every
documented answer of these endpoints (:func:`exercise_accountability`)."""

from __future__ import annotations

from typing import Any

import requests

from reference_server.testing import RunningServer

from .accounts import log_in
from .api import API, API_CLIENT_ID, ApiClient

LOCAL_TIME = 1714550400.25
"""The client clock of the test events (2024-05-01 08:00:00.25 UTC)."""


def event(
    event_id: str,
    kind: str = "record_shown",
    record_id: str | None = "rec-1",
    field: str | None = None,
    *,
    local_time: float = LOCAL_TIME,
    client_id: str = API_CLIENT_ID,
) -> dict[str, Any]:
    """One access event as a client sends it; ``record_id``/``field`` only where ``kind``
    takes them (``field_revealed`` and ``field_copied`` get ``field`` "password" unless
    given)."""
    body: dict[str, Any] = {
        "id": event_id,
        "kind": kind,
        "local_time": local_time,
        "client_id": client_id,
    }
    if kind != "offline_login" and record_id is not None:
        body["record_id"] = record_id
    if kind in ("field_revealed", "field_copied"):
        body["field"] = field or "password"
    return body


def post_events(client: ApiClient, events: list[dict[str, Any]]) -> requests.Response:
    """``POST .../offline/audit`` with these events."""
    return client.http.post(
        f"{client.base}/databases/{client.db}/offline/audit", json={"events": events}, timeout=30
    )


def copy_report(
    record_count: int = 3,
    pending_changes: int = 0,
    unpushed_log_entries: int = 0,
    *,
    complete: bool = True,
) -> dict[str, Any]:
    """A copy report's body."""
    return {
        "record_count": record_count,
        "pending_changes": pending_changes,
        "unpushed_log_entries": unpushed_log_entries,
        "complete": complete,
    }


def copy_url(client: ApiClient, client_id: str = API_CLIENT_ID) -> str:
    """The registry URL of a copy of ``client``'s database on ``client_id``."""
    return f"{client.base}/databases/{client.db}/offline/copies/{client_id}"


def report_copy(
    client: ApiClient, body: dict[str, Any] | None = None, client_id: str = API_CLIENT_ID
) -> requests.Response:
    """``PUT .../offline/copies/{client_id}``."""
    return client.http.put(copy_url(client, client_id), json=body or copy_report(), timeout=30)


def forget_copy(client: ApiClient, client_id: str = API_CLIENT_ID) -> requests.Response:
    """``DELETE .../offline/copies/{client_id}``."""
    return client.http.delete(copy_url(client, client_id), timeout=30)


def manager_list(server_url: str, token: str | None, **params: str) -> requests.Response:
    """``GET /admin/offline/copies`` with this bearer token (None: no Authorization)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.get(
        f"{server_url}{API}/admin/offline/copies", headers=headers, params=params, timeout=30
    )


def exercise_accountability(srv: RunningServer) -> list[requests.Response]:
    """Every documented status of the audit, copy and manager endpoints, in a database of its
    own."""
    admin = srv.admin
    admin.create_database("accountable")
    admin.create_user("dave", "dave-pw", offline_right=True)
    manager = admin.create_manager_token("contract-test")
    base = srv.url + API
    token = log_in(srv.url, "accountable", "dave", "dave-pw", client_id="inst-d").token
    auth = {"Authorization": "Bearer " + token}
    http = requests.Session()
    audit = f"{base}/databases/accountable/offline/audit"
    good = [
        event("ev-1", "offline_login", client_id="inst-d"),
        event("ev-2", "field_copied", client_id="inst-d"),
    ]
    copy = f"{base}/databases/accountable/offline/copies/inst-d"
    out = [
        http.post(audit, json={"events": good}, headers=auth),
        http.post(audit, json={"events": [{**good[0], "value": "x"}]}, headers=auth),
        http.post(audit, json={"events": good}),
        http.post(audit, json={"events": [event("ev-3", client_id="other")]}, headers=auth),
        http.post(f"{base}/databases/nope/offline/audit", json={"events": good}, headers=auth),
        http.post(audit, data=b" " * (600 * 1024), headers=auth),
        http.put(copy, json=copy_report(), headers=auth),
        http.put(copy, json={**copy_report(), "last_sync": 1}, headers=auth),
        http.put(copy, json=copy_report()),
        http.put(copy.replace("inst-d", "inst-x"), json=copy_report(), headers=auth),
        http.put(copy.replace("accountable", "nope"), json=copy_report(), headers=auth),
        http.delete(copy, headers=auth),
        http.delete(copy),
        http.delete(copy.replace("inst-d", "inst-x"), headers=auth),
        http.delete(copy.replace("accountable", "nope"), headers=auth),
    ]
    listing = f"{base}/admin/offline/copies"
    out += [
        http.get(
            listing, params={"db": "accountable"}, headers={"Authorization": "Bearer " + manager}
        ),
        http.get(
            listing, params={"include_wiped": "yes"}, headers={"Authorization": "Bearer " + manager}
        ),
        http.get(listing),
        http.get(listing, headers=auth),
    ]
    http.close()
    return out
