"""A small API client for the server tests (one user, one database)."""

from __future__ import annotations

from typing import Any

import requests

API = "/api/v1"


class ApiClient:
    """A requests session for one user, logged in to one database."""

    def __init__(self, base_url: str, db: str) -> None:
        self.base = base_url + API
        self.db = db
        self.http = requests.Session()
        self.http.headers["X-Client-Id"] = "test-client"
        self.user_id = ""

    def login(self, username: str, password: str) -> ApiClient:
        r = self.http.post(f"{self.base}/session", json={
            "database": self.db, "username": username, "password": password,
            "client_id": "test-client"})
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = "Bearer " + r.json()["token"]
        self.user_id = r.json()["user_id"]
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
