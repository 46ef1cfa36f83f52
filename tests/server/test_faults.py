"""Injected 429/503/slow answers, for client back-off tests of the other packages."""

from __future__ import annotations

import time

from reference_server.testing import RunningServer
from tests.support.api import ApiClient, assert_problem


def test_injected_503_carries_retry_after_then_the_server_answers_again(
    demo: RunningServer, alice: ApiClient
) -> None:
    demo.faults.add(503, retry_after=2, times=2, path_contains="/offline/")
    for _ in range(2):
        r = alice.get("/offline/head")
        assert_problem(r, 503, "busy")
        assert r.headers["Retry-After"] == "2"
    assert alice.get("/offline/policy").status_code == 200
    assert alice.get("/offline/head").status_code == 200


def test_injected_429_only_hits_matching_paths(demo: RunningServer, alice: ApiClient) -> None:
    demo.faults.add(429, path_contains="/offline/changes")
    assert alice.get("/offline/head").status_code == 200
    assert_problem(alice.get("/offline/changes"), 429, "rate_limited")
    assert alice.get("/offline/changes").status_code == 200


def test_injected_delay_then_normal_answer(demo: RunningServer, alice: ApiClient) -> None:
    demo.faults.add(None, delay_s=0.3)
    start = time.monotonic()
    assert alice.get("/offline/policy").status_code == 200
    assert time.monotonic() - start >= 0.3
