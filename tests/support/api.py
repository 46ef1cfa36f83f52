"""The server's API as the server tests speak it: a small client for one user and one
database (:class:`ApiClient`), checks of its answers, and the requests that produce every
documented answer of the write side (:func:`exercise_writes`)."""

from __future__ import annotations

from typing import Any

import requests

from reference_server.testing import RunningServer

from .accounts import log_in

API = "/api/v1"
API_CLIENT_ID = "test-client"


class ApiClient:
    """A requests session for one user, logged in to one database."""

    def __init__(self, base_url: str, db: str) -> None:
        self.base = base_url + API
        self.db = db
        self.http = requests.Session()
        self.http.headers["X-Client-Id"] = API_CLIENT_ID
        self.user_id = ""
        self._server_url = base_url

    def login(self, username: str, password: str) -> ApiClient:
        """Log in (through the host's client); the following requests carry the token."""
        session = log_in(self._server_url, self.db, username, password, client_id=API_CLIENT_ID)
        self.http.headers["Authorization"] = "Bearer " + session.token
        self.user_id = session.user_id
        return self

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(f"{self.base}/databases/{self.db}{path}", **kw)

    def changes(self, cursor: str | None = None, limit: int = 500) -> requests.Response:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self.get("/offline/changes", params=params)

    def read_all(
        self, cursor: str | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Page to the end; return every change and the last page."""
        seen: list[dict[str, Any]] = []
        while True:
            r = self.changes(cursor, limit)
            assert r.status_code == 200, r.text
            page = r.json()
            seen.extend(page["changes"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return seen, page

    def close(self) -> None:
        self.http.close()


def apply(replica: dict[str, int], changes: list[dict[str, Any]]) -> None:
    """Apply feed changes to a {id: rev} replica, as the add-on does."""
    for change in changes:
        if change["op"] == "upsert":
            if change["rev"] > replica.get(change["id"], 0):
                replica[change["id"]] = change["rev"]
        else:
            replica.pop(change["id"], None)


def assert_problem(response: requests.Response, status: int, code: str) -> None:
    """The response is a problem+json answer with this status and code, and a message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]


NEW_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def exercise_writes(srv: RunningServer) -> list[requests.Response]:
    """Conditional writes in a database of their own: every status of PUT and DELETE on a
    record, and the create right of POST."""
    admin = srv.admin
    admin.create_database("edits")
    admin.create_user("carol", "carol-pw", offline_right=True)
    mine, readonly, sealed = admin.import_records(
        "edits",
        [{"name": n, "fields": {}} for n in ("mine", "readonly", "sealed")],
        grant={"carol": "rwed"},
    )
    admin.set_rights("edits", "carol", readonly, write=False, delete=False)
    admin.seal_record("edits", sealed)
    http = requests.Session()
    base = srv.url + API
    token = log_in(srv.url, "edits", "carol", "carol-pw", client_id="c").token
    auth = {"Authorization": "Bearer " + token}
    db = f"{base}/databases/edits/records"
    body = {"name": "n", "fields": {"password": "pw-Mv6!offline-edit"}}
    offline = {**auth, "X-Offline-Change": "1714550400", "X-Change-Id": "chg-1"}
    out = [
        http.put(f"{db}/{NEW_ID}", json=body, headers={**offline, "If-None-Match": "*"}),
        http.put(f"{db}/{NEW_ID}", json=body, headers={**offline, "If-None-Match": "*"}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"7"'}),
        http.put(f"{db}/not-a-uuid", json=body, headers={**auth, "If-None-Match": "*"}),
        http.put(f"{db}/{readonly}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{sealed}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{mine}", json=body, headers={"If-Match": '"2"'}),
        http.put(f"{db}/nothing", json=body, headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{readonly}", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers=auth),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"x"'}),
        http.delete(f"{db}/{mine}", headers={"If-Match": '"2"'}),
        http.delete(f"{db}/nothing", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"2"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"5"'}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"2"'}),
    ]
    once = {**auth, "X-Change-Id": "post-1"}
    out += [http.post(db, json=body, headers=once), http.post(db, json=body, headers=once)]
    admin.delete_record("edits", out[-1].json()["id"])
    out.append(http.post(db, json=body, headers=once))
    admin.set_create_right("edits", "carol", False)
    out.append(http.post(db, json=body, headers=auth))
    http.close()
    return out
