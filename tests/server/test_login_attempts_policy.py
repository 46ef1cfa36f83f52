"""The wrong-password limit: a database setting the policy and head answers publish as
``offline_login_attempts``, covered by head's ETag so that a changed limit is never hidden
behind a 304."""

from __future__ import annotations

import pytest

from reference_server.errors import ApiError
from reference_server.testing import RunningServer
from tests.support.api import ApiClient
from tests.support.servers import PsrRunner


def test_policy_and_head_say_10_until_the_manager_sets_another_limit(
    demo: RunningServer, alice: ApiClient
) -> None:
    assert alice.get("/offline/policy").json()["offline_login_attempts"] == 10
    assert alice.get("/offline/head").json()["offline_login_attempts"] == 10
    demo.admin.set_database_login_attempts("demo", 3)
    assert alice.get("/offline/policy").json()["offline_login_attempts"] == 3
    assert alice.get("/offline/head").json()["offline_login_attempts"] == 3


def test_a_changed_limit_changes_the_head_etag(demo: RunningServer, alice: ApiClient) -> None:
    first = alice.get("/offline/head")
    etag = first.headers["ETag"]
    assert etag.endswith('-10"')
    assert alice.get("/offline/head", headers={"If-None-Match": etag}).status_code == 304
    demo.admin.set_database_login_attempts("demo", 5)
    changed = alice.get("/offline/head", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["offline_login_attempts"] == 5
    assert changed.headers["ETag"] != etag
    new = changed.headers["ETag"]
    assert alice.get("/offline/head", headers={"If-None-Match": new}).status_code == 304


@pytest.mark.parametrize("bad", [0, 1001, -1, True, 2.5, "10"])
def test_the_limit_is_a_whole_number_from_1_to_1000(demo: RunningServer, bad: object) -> None:
    with pytest.raises(ApiError, match="from 1 to 1000"):
        demo.admin.set_database_login_attempts("demo", bad)  # type: ignore[arg-type]
    assert demo.admin.database_login_attempts("demo") == 10


def test_the_limit_is_per_database(demo: RunningServer) -> None:
    demo.admin.create_database("other")
    demo.admin.set_database_login_attempts("other", 1000)
    assert demo.admin.database_login_attempts("demo") == 10
    assert demo.admin.database_login_attempts("other") == 1000


def test_db_login_attempts_sets_it_and_db_list_shows_it(
    demo: RunningServer, psr: PsrRunner
) -> None:
    data = demo.data_dir
    out = psr("admin", "--data", data, "db", "login-attempts", "demo", "3")
    assert out.out == (
        "offline copies of database demo are now deleted after 3 wrong passwords in a row "
        "(clients learn it at their next sync)\n"
    )
    assert psr("admin", "--data", data, "db", "list").out == (
        "demo\toffline allowed\t0 records\tediting off\t3 login attempts\n"
    )
    for bad in ("0", "1001", "ten", "-3"):
        refused = psr("admin", "--data", data, "db", "login-attempts", "demo", bad)
        assert refused.code == 2, bad
        assert "must be a whole number of attempts from 1 to 1000" in refused.err
    unknown = psr("admin", "--data", data, "db", "login-attempts", "nowhere", "3")
    assert unknown.code == 1
    assert "There is no database named 'nowhere'" in unknown.err
    assert demo.admin.database_login_attempts("demo") == 3
