"""docs/sync-api.yaml describes the real answers: every documented answer is produced and valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from reference_server.testing import RunningServer
from tests.support.accountability import exercise_accountability
from tests.support.api import API, ApiClient, exercise_writes

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "sync-api.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def _operation(spec: dict[str, Any], method: str, url_path: str) -> tuple[str, dict[str, Any]]:
    path = url_path.removeprefix(API)
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not documented")


def _deref(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check_against_spec(spec: dict[str, Any], response: requests.Response) -> str:
    """Validate one real response against the document; return 'operationId status'."""
    request = response.request
    assert request.method is not None
    assert request.path_url is not None
    _template, operation = _operation(spec, request.method, request.path_url.split("?")[0])
    status = str(response.status_code)
    assert status in operation["responses"], f"{operation['operationId']}: {status} undocumented"
    documented = _deref(spec, operation["responses"][status])
    content = documented.get("content")
    if content is None:
        assert response.content == b"", f"{status} must have no body"
    else:
        [(mime, media)] = content.items()
        assert response.headers["Content-Type"] == mime
        validator = jsonschema.Draft202012Validator(
            {**media["schema"], "components": spec["components"]}
        )
        validator.validate(response.json())
    for header, described in documented.get("headers", {}).items():
        assert header in response.headers, f"{header} header missing"
        jsonschema.validate(response.headers[header], _deref(spec, described)["schema"])
    return f"{operation['operationId']} {status}"


def _exercise(srv: RunningServer) -> list[requests.Response]:
    admin = srv.admin
    admin.create_database("demo")
    admin.create_user("alice", "alice-pw", offline_right=True)
    admin.create_user("bob", "bob-pw", offline_right=False)
    readonly, gone = admin.import_records(
        "demo",
        [{"name": "ro", "fields": {}}, {"name": "gone", "fields": {}}],
        grant={"alice": "re", "bob": "rwe"},
    )
    admin.delete_record("demo", gone)
    http = requests.Session()
    base = srv.url + API
    out: list[requests.Response] = []
    login = {"database": "demo", "username": "alice", "password": "alice-pw", "client_id": "c"}
    out.append(http.post(f"{base}/session", json=login))
    token = out[-1].json()["token"]
    out.append(http.post(f"{base}/session", json={**login, "password": "x"}))
    out.append(http.post(f"{base}/session", json={**login, "database": "nope"}))
    out.append(http.post(f"{base}/session", data=b"{not json"))
    auth = {"Authorization": f"Bearer {token}"}
    db = f"{base}/databases/demo"
    out.append(
        http.post(f"{db}/records", json={"name": "Mail", "fields": {"p": "x"}}, headers=auth)
    )
    created = out[-1].json()
    out.append(http.post(f"{db}/records", json={"name": "", "fields": {}}, headers=auth))
    out.append(http.post(f"{base}/databases/nope/records", json={}, headers=auth))
    out.append(http.post(f"{db}/records", json={"name": "x", "fields": {}}))
    out.append(http.get(f"{db}/records", params={"q": "mail"}, headers=auth))
    out.append(http.get(f"{db}/records", params={"limit": "0"}, headers=auth))
    out.append(http.get(f"{db}/records", headers={"Authorization": "Bearer nope"}))
    out.append(http.get(f"{base}/databases/nope/records", headers=auth))
    out.append(http.get(f"{db}/records/{created['id']}", headers=auth))
    out.append(http.get(f"{db}/records/{gone}", headers=auth))
    out.append(http.get(f"{db}/records/{gone}"))
    rec_url = f"{db}/records/{created['id']}"
    out.append(http.put(rec_url, json={"rev": 1, "name": "M2", "fields": {}}, headers=auth))
    out.append(http.put(rec_url, json={"rev": 1, "name": "M3", "fields": {}}, headers=auth))
    out.append(http.put(rec_url, json={"rev": "1", "name": "M3", "fields": {}}, headers=auth))
    out.append(
        http.put(
            f"{db}/records/{readonly}", json={"rev": 1, "name": "x", "fields": {}}, headers=auth
        )
    )
    out.append(
        http.put(f"{db}/records/{gone}", json={"rev": 1, "name": "x", "fields": {}}, headers=auth)
    )
    out.append(http.put(rec_url, json={"rev": 2, "name": "x", "fields": {}}))
    out.append(http.get(f"{db}/offline/policy", headers=auth))
    out.append(http.get(f"{db}/offline/policy"))
    out.append(http.get(f"{base}/databases/nope/offline/policy", headers=auth))
    out.append(http.get(f"{db}/offline/head", headers=auth))
    etag = out[-1].headers["ETag"]
    out.append(http.get(f"{db}/offline/head", headers={**auth, "If-None-Match": etag}))
    out.append(http.get(f"{db}/offline/head"))
    out.append(http.get(f"{base}/databases/nope/offline/head", headers=auth))
    out.append(http.get(f"{db}/offline/changes", params={"limit": 1}, headers=auth))
    cursor = out[-1].json()["next_cursor"]
    out.append(http.get(f"{db}/offline/changes", params={"cursor": cursor}, headers=auth))
    out.append(http.get(f"{db}/offline/changes", params={"limit": 5001}, headers=auth))
    out.append(http.get(f"{db}/offline/changes", params={"cursor": "forged"}, headers=auth))
    out.append(http.get(f"{db}/offline/changes"))
    out.append(http.get(f"{base}/databases/nope/offline/changes", headers=auth))
    admin.bump_epoch()
    out.append(http.get(f"{db}/offline/changes", params={"cursor": cursor}, headers=auth))
    pw = f"{base}/session/password"
    out.append(http.post(pw, json={"old_password": "alice-pw"}, headers=auth))
    out.append(http.post(pw, json={"old_password": "bad", "new_password": "n"}, headers=auth))
    out.append(http.post(pw, json={"old_password": "alice-pw", "new_password": "n"}, headers=auth))
    login_bob = {**login, "username": "bob", "password": "bob-pw"}
    bob_auth = {
        "Authorization": "Bearer " + http.post(f"{base}/session", json=login_bob).json()["token"]
    }
    out.append(http.get(f"{db}/offline/head", headers=bob_auth))
    out.append(http.get(f"{db}/offline/changes", headers=bob_auth))
    out.append(http.delete(f"{base}/session", headers=auth))
    out.append(http.delete(f"{base}/session", headers=auth))
    http.close()
    return out


def test_every_answer_matches_the_document_and_every_documented_answer_occurs(
    server: RunningServer, spec: dict[str, Any]
) -> None:
    answers = [*_exercise(server), *exercise_writes(server), *exercise_accountability(server)]
    produced = {check_against_spec(spec, r) for r in answers}
    documented = {
        f"{op['operationId']} {status}"
        for item in spec["paths"].values()
        for key, op in item.items()
        if key != "parameters"
        for status in op["responses"]
    }
    assert documented - produced == set()


def test_a_full_feed_page_with_deletes_and_digest_matches_the_document(
    demo: RunningServer, alice: ApiClient, spec: dict[str, Any]
) -> None:
    ids = demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {"u": "é"}} for i in range(5)], grant={"alice": "rwe"}
    )
    first = alice.changes(limit=2)
    check_against_spec(spec, first)
    demo.admin.seal_record("demo", ids[0])
    demo.admin.set_rights("demo", "alice", ids[1], export=False)
    demo.admin.delete_record("demo", ids[2])
    cursor = first.json()["next_cursor"]
    last = alice.changes(cursor, limit=5000)
    assert {c["op"] for c in last.json()["changes"]} == {"upsert", "delete"}
    assert "digest" in last.json()
    check_against_spec(spec, last)
