"""Bad input gets a 4xx problem+json that says what is wrong, never a 500, never a change."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from reference_server.testing import RunningServer
from tests.support.api import API, ApiClient

TABLES = ("databases", "users", "records", "rights", "feed", "meta", "horizons")


def _state(srv: RunningServer) -> dict[str, list[tuple[Any, ...]]]:
    conn = srv.admin.connection
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}  # noqa: S608


@pytest.fixture
def record_id(demo: RunningServer) -> str:
    [rid] = demo.admin.import_records(
        "demo", [{"name": "A", "fields": {"p": "x"}}], grant={"alice": "rwe"}
    )
    return rid


BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/session", {"data": b"{oops"}),
    ("POST", "/session", {"data": b"\xff\xfe"}),
    ("POST", "/session", {"json": []}),
    ("POST", "/session", {"json": {"database": "demo"}}),
    (
        "POST",
        "/session",
        {"json": {"database": 1, "username": "alice", "password": "alice-pw", "client_id": "c"}},
    ),
    (
        "POST",
        "/session",
        {
            "json": {
                "database": "demo",
                "username": "alice",
                "password": ["alice-pw"],
                "client_id": "c",
            }
        },
    ),
    ("POST", "/session", {"data": b"x" * (3 * 1024 * 1024)}),
    ("POST", "/session/password", {"json": {"old_password": "alice-pw", "new_password": ""}}),
    ("POST", "/session/password", {"json": {"old_password": "alice-pw", "new_password": 5}}),
    ("POST", "/databases/demo/records", {"json": {"name": "x", "fields": {"a": 1}}}),
    ("POST", "/databases/demo/records", {"json": {"name": "x", "fields": ["a"]}}),
    ("POST", "/databases/demo/records", {"json": {"name": "x" * 1001, "fields": {}}}),
    ("POST", "/databases/demo/records", {"json": {"name": "\ud800", "fields": {}}}),
    ("POST", "/databases/demo/records", {"json": {"name": "x", "fields": {"": "v"}}}),
    ("POST", "/databases/demo/records", {"data": b"null"}),
    ("POST", "/databases/nope/records", {"json": {"name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"json": {"rev": True, "name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"json": {"rev": 0, "name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"json": {"rev": 1.5, "name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"json": {"rev": 7, "name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"json": {"rev": 1, "fields": {}}}),
    ("PUT", "/databases/demo/records/no-such-id", {"json": {"rev": 1, "name": "x", "fields": {}}}),
    ("PUT", "/databases/demo/records/{rid}", {"data": b'{"rev": 1, "name": "x", "fields": '}),
    ("GET", "/databases/demo/records/no-such-id", {}),
    ("GET", "/databases/demo/records", {"params": {"limit": "-1"}}),
    ("GET", "/databases/demo/records", {"params": {"limit": "1e9"}}),
    ("GET", "/databases/demo/records", {"params": {"offset": "x"}}),
    ("GET", "/databases/demo/records", {"params": {"q": "x" * 2000}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"limit": "0"}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"limit": "5001"}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"limit": "99999999999999999999"}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"limit": "ten"}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"cursor": "\x00\x01"}}),
    ("GET", "/databases/demo/offline/changes", {"params": {"cursor": "a" * 100_000}}),
    ("GET", "/databases/nope/offline/changes", {}),
    ("GET", "/databases/nope/offline/head", {}),
    ("DELETE", "/databases/demo/records/{rid}", {}),
    ("GET", "/no/such/endpoint", {}),
    ("PATCH", "/session", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), BAD_REQUESTS)
def test_bad_request_gets_4xx_problem_and_changes_nothing(
    demo: RunningServer,
    alice: ApiClient,
    record_id: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    before = _state(demo)
    r = alice.http.request(method, alice.base + path.format(rid=record_id), **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == r.status_code
    assert problem["code"]
    assert len(problem["detail"]) > 10
    assert _state(demo) == before


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "Bearer not-a-token",
        "Bearer " + "x" * 5000,
        "bearer\tfoo",
    ],
)
def test_missing_or_bad_token_is_401_bad_token_everywhere(
    demo: RunningServer, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [
        ("GET", "/databases/demo/records"),
        ("GET", "/databases/demo/offline/policy"),
        ("GET", "/databases/demo/offline/head"),
        ("GET", "/databases/demo/offline/changes"),
        ("DELETE", "/session"),
    ]:
        r = requests.request(method, demo.url + API + path, headers=headers, timeout=10)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == "bad_token"


def test_expired_token_is_refused(tmp_path: Any) -> None:
    from reference_server.testing import running_server

    now = [1_000_000.0]
    with running_server(tmp_path / "srv", clock=lambda: now[0]) as srv:
        srv.admin.create_database("demo")
        srv.admin.create_user("alice", "alice-pw", offline_right=True)
        client = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        try:
            assert client.get("/offline/policy").status_code == 200
            now[0] += 13 * 3600
            assert client.get("/offline/policy").json()["code"] == "bad_token"
        finally:
            client.close()


def test_unexpected_failure_is_a_problem_500_without_secrets(
    demo: RunningServer,
    alice: ApiClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from reference_server import records

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(records, "list_for_user", boom)
    r = alice.get("/records")
    assert r.status_code == 500
    assert r.json()["code"] == "server_error"
    assert "internal detail" not in r.text
    assert "internal detail" in caplog.text
