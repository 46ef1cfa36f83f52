"""Schemathesis fuzzes every documented endpoint from docs/sync-api.yaml: no 500s, answers match.

Deterministic (derandomized) by default; ``PSR_FUZZ_EXAMPLES=300`` explores with fresh seeds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from reference_server.testing import RunningServer, running_server
from tests.support.api import API

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "sync-api.yaml"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("fuzz") / "srv") as srv:
        srv.admin.create_database("demo")
        srv.admin.create_user("alice", "alice-pw", offline_right=True)
        srv.admin.import_records(
            "demo",
            [{"name": f"R{i}", "fields": {"p": "x"}} for i in range(5)],
            grant={"alice": "rwe"},
        )
        yield srv


@pytest.fixture(scope="module")
def token(fuzz_server: RunningServer) -> str:
    r = requests.post(
        f"{fuzz_server.url}{API}/session",
        timeout=10,
        json={"database": "demo", "username": "alice", "password": "alice-pw", "client_id": "fuzz"},
    )
    return str(r.json()["token"])


SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
# Logging out or changing the password would break the shared login of the other examples.
OPERATIONS = [
    (op.method.upper(), op.path)
    for op in (result.ok() for result in SCHEMA.get_all_operations())  # type: ignore[union-attr]
    if op.path != "/session/password" and (op.path, op.method) != ("/session", "delete")
]
# Schema-valid requests these answer with a rightful refusal: a random cursor is refused, a
# write conditional on a random revision meets 412 or 410, a report names a random client
# installation (403 client_mismatch), and a user's token is not a server manager's.
REFUSES_VALID_DATA = (
    "/changes",
    "/records/{record_id}",
    "/offline/audit",
    "/copies/{client_id}",
    "/admin/offline/copies",
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzed_requests_never_fail_the_server(
    fuzz_server: RunningServer, token: str, method: str, path: str, mode: GenerationMode
) -> None:
    operation = SCHEMA[path][method]
    record_ids = [rid for rid, *_ in fuzz_server.admin.list_records("demo")]

    @given(case=operation.as_strategy(mode), data=st.data())
    @settings(
        max_examples=int(os.environ.get("PSR_FUZZ_EXAMPLES", "30")),
        deadline=None,
        database=None,
        derandomize="PSR_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, data: st.DataObject) -> None:
        # Random database names would only ever meet 404; aim at the real database and
        # (mostly) at real records so that the fuzzed bodies and queries reach the handlers.
        params = case.path_parameters or {}
        if mode is GenerationMode.NEGATIVE:
            params = {}  # invalid path parameters must stay invalid
        if "db" in params:
            params["db"] = "demo"
        if "record_id" in params:
            params["record_id"] = data.draw(st.sampled_from([*record_ids, params["record_id"]]))
        excluded = [positive_data_acceptance] if path.endswith(REFUSES_VALID_DATA) else []
        case.call_and_validate(
            base_url=fuzz_server.url + API,
            excluded_checks=excluded,
            headers={"Authorization": f"Bearer {token}"},
        )

    run()
