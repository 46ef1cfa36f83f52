"""Fuzzing the reference server through its OpenAPI document (docs/sync-api.yaml) with
schemathesis: whatever a client sends (valid, boundary or malformed per the document), the
server never answers 5xx.

Every case runs with a fresh valid token for a user who owns records in one database, and the
``db`` path parameter is mostly that database, so that generated requests get past
authentication into the handlers. Examples per operation are bounded to keep the suite fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.accounts import CLIENT_ID, log_in
from tests.support.records import server_records

# schemathesis may warn while importing (deprecations in its dependencies); that is not what
# this suite tests, and filterwarnings=error would turn it into a collection error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis

DOC = Path(__file__).resolve().parents[2] / "docs" / "sync-api.yaml"
FUZZ_DB, FUZZ_USER, FUZZ_PASSWORD = "fuzzdb", "fuzzer", "fuzz-Password-1"

_schema = schemathesis.openapi.from_path(DOC)
OPERATIONS: dict[str, Any] = {
    f"{op.method.upper()} {op.path}": op
    for op in (result.ok() for result in _schema.get_all_operations())  # type: ignore[union-attr]
}


@pytest.fixture(scope="module")
def fuzz_server(server: Any) -> tuple[Any, list[str]]:
    admin = server.admin
    admin.create_database(FUZZ_DB, offline_allowed=True)
    admin.create_user(FUZZ_USER, FUZZ_PASSWORD, offline_right=True, validity_days=7)
    ids = admin.import_records(FUZZ_DB, server_records(20, "Fuzz"), grant={FUZZ_USER: "rwe"})
    return server, list(ids)


def _token(url: str) -> str:
    return log_in(url, FUZZ_DB, FUZZ_USER, FUZZ_PASSWORD).token


def _examples(name: str) -> int:
    """30 per operation; 100 for the writes of records, whose bodies and conditions most
    examples get wrong: hypothesis's first examples are its simplest (often an empty body),
    so of 30 only about 4 got past validation, and about one run in 50 none did."""
    method, path = name.split(" ", 1)
    return 100 if method != "GET" and "/records" in path else 30


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_server_never_answers_5xx(fuzz_server: tuple[Any, list[str]], name: str) -> None:
    server, ids = fuzz_server
    operation = OPERATIONS[name]
    base = f"{server.url}/api/v1"
    seen: list[int] = []
    # Only the session operations can spoil a token (logout) or the password; the others
    # share one token, which keeps the slow scrypt login out of most examples.
    spoils = "/session" in name and name != "POST /session"
    shared = _token(server.url)

    @settings(
        max_examples=_examples(name),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    # Three in four examples name the fuzzer's own database (one in two made fewer still get
    # past validation).
    @given(
        case=operation.as_strategy(),
        own_db=st.sampled_from([True, True, True, False]),
        own_id=st.integers(-1, 19),
    )
    def run(case: Any, own_db: bool, own_id: int) -> None:
        params = case.path_parameters or {}
        if own_db and "db" in params:
            params["db"] = FUZZ_DB
        if own_id >= 0 and "record_id" in params:
            params["record_id"] = ids[own_id]
        token = _token(server.url) if spoils else shared
        headers = {"Authorization": f"Bearer {token}", "X-Cli-Id": CLIENT_ID}
        with requests.Session() as http:
            response = case.call(base_url=base, session=http, headers=headers)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            f"{name} answered {response.status_code}: {response.text[:300]}"
        )
        if name == "POST /session/password" and response.status_code == 204:
            # A fuzzed password change must not lock the next examples out.
            server.admin.set_password(FUZZ_USER, FUZZ_PASSWORD)

    run()
    assert seen, "no request was made"
    if not spoils and name != "POST /session":
        # 403/409/410/412/428 come from the handlers' own rules (rights, stale or moved-on
        # revision, deleted record, missing condition): also "past".
        past = [code for code in seen if code < 300 or code in (403, 409, 410, 412, 428)]
        assert past, f"no example of {name} got past validation"
