"""The fault proxy itself: it forwards unchanged when disarmed and injects exactly what it says.

The fault tests are only as good as this tool, so it gets its own small tests against a tiny
loopback upstream (not the reference server, so that a server bug cannot hide a proxy bug).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.support.faults import Fault, FaultProxy


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {"path": self.path, "changes": [{"op": "delete", "id": "a", "reason": "deleted"}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", '"1-2"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    upstream.daemon_threads = True
    thread = threading.Thread(target=upstream.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as p:
            yield p
    finally:
        upstream.shutdown()
        upstream.server_close()
        thread.join()


def _get(proxy: FaultProxy, path: str, timeout: float = 5) -> requests.Response:
    with requests.Session() as s:
        return s.get(proxy.url + path, timeout=timeout)


def test_disarmed_proxy_forwards_body_and_headers(proxy: FaultProxy) -> None:
    resp = _get(proxy, "/api/v1/databases/d/offline/changes?cursor=x")
    assert resp.status_code == 200
    assert resp.json()["path"] == "/api/v1/databases/d/offline/changes?cursor=x"
    assert resp.headers["ETag"] == '"1-2"'


def test_fault_hits_only_the_nth_matching_request(proxy: FaultProxy) -> None:
    proxy.arm(Fault("status", nth=2, status=503, retry_after=3))
    assert _get(proxy, "/offline/head").status_code == 200  # not matching
    assert _get(proxy, "/offline/changes").status_code == 200
    second = _get(proxy, "/offline/changes")
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "3"
    assert second.headers["Content-Type"] == "application/problem+json"
    assert _get(proxy, "/offline/changes").status_code == 200
    assert proxy.fired == 1


def test_reset_raises_connection_error(proxy: FaultProxy) -> None:
    proxy.arm(Fault("reset"))
    with pytest.raises(requests.ConnectionError):
        _get(proxy, "/offline/changes")


def test_stall_makes_the_client_read_timeout_fire(proxy: FaultProxy) -> None:
    proxy.arm(Fault("stall", stall_seconds=5))
    with pytest.raises(requests.ReadTimeout):
        _get(proxy, "/offline/changes", timeout=0.3)
    proxy.clear()


def test_truncated_body_is_detected_by_the_client(proxy: FaultProxy) -> None:
    proxy.arm(Fault("truncate"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _get(proxy, "/offline/changes")


def test_malformed_json_is_not_json(proxy: FaultProxy) -> None:
    proxy.arm(Fault("malformed_json"))
    resp = _get(proxy, "/offline/changes")
    with pytest.raises(requests.JSONDecodeError):
        resp.json()


def test_mutate_and_oversized_rewrite_the_page(proxy: FaultProxy) -> None:
    proxy.arm(Fault("mutate", mutate=lambda page: {**page, "changes": "nope"}))
    assert _get(proxy, "/offline/changes").json()["changes"] == "nope"
    proxy.arm(Fault("oversized", oversize_factor=7))
    assert len(_get(proxy, "/offline/changes").json()["changes"]) == 7


def test_replay_answers_with_the_previous_page(proxy: FaultProxy) -> None:
    proxy.arm(Fault("replay", nth=2))
    assert _get(proxy, "/offline/changes?cursor=1").json()["path"].endswith("cursor=1")
    assert _get(proxy, "/offline/changes?cursor=2").json()["path"].endswith("cursor=1")
    assert _get(proxy, "/offline/changes?cursor=3").json()["path"].endswith("cursor=3")
