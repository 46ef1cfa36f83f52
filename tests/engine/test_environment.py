"""What the sync takes from the environment, as requests would: a proxy and NO_PROXY, read
once per server; and what it does not: a ~/.netrc entry for the server, which requests would
put in place of the token (every request then 401, the user asked to log in again for ever).
Against the real reference server, through a real forward proxy on loopback."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.sync.engine import sync_copy
from reference_server.testing import RunningServer
from tests.support.accounts import log_in
from tests.support.copies import paths_of
from tests.support.records import server_records

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: the request line names the whole URL."""

    protocol_version = "HTTP/1.1"
    seen: list[str]

    def _relay(self) -> None:
        target = urlsplit(self.path)
        self.seen.append(target.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_ForwardProxy,), {"seen": seen})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", seen
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def stocked(demo: RunningServer) -> RunningServer:
    demo.admin.import_records("demo", server_records(30, "Env"), grant={"alice": "rwe"})
    return demo


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _first_sync(server: RunningServer, folder: Path) -> int:
    session = log_in(server.url, "demo", "alice", "alice-pw")
    paths = paths_of(folder, session)
    result = sync_copy(paths, session, create=True)
    assert result.outcome == "synced", result.message
    copy = OfflineCopy.open(paths, "alice-pw")
    try:
        return copy.server_record_count()
    finally:
        copy.close()


def test_a_netrc_entry_for_the_server_does_not_replace_the_token(
    stocked: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    host = urlsplit(stocked.url).hostname
    netrc.write_text(f"machine {host}\nlogin someone-else-zq\npassword not-the-token-zq\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert _first_sync(stocked, tmp_path / "copies") == 30


@pytest.mark.parametrize("bypassed", [False, True], ids=["proxied", "no_proxy"])
def test_the_sync_goes_through_the_environments_proxy_unless_no_proxy_names_the_server(
    stocked: RunningServer,
    forward_proxy: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bypassed: bool,
) -> None:
    url, seen = forward_proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    if bypassed:
        monkeypatch.setenv("NO_PROXY", urlsplit(stocked.url).hostname or "")
    assert _first_sync(stocked, tmp_path / "copies") == 30
    if bypassed:
        assert seen == []
    else:
        assert any(path.endswith("/offline/changes") for path in seen)
