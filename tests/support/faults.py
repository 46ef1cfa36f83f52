"""A loopback HTTP proxy in front of the real reference server that injects faults on demand.

A real server cannot be told "reset the next connection" or "send half a body", so the engine
and proof tests put this proxy (the one fault tool of the tests) between the add-on and the
server. Without an armed fault it forwards every
request unchanged (keep-alive on both sides is not needed: one upstream connection per request
keeps the proxy simple and the faults deterministic).

Usage::

    with FaultProxy(server.url) as proxy:
        proxy.arm(Fault("reset", nth=2))      # the 2nd matching request gets a TCP reset
        ... sync against proxy.url ...
        assert proxy.fired == 1
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

FaultKind = Literal[
    "reset",  # close the client connection with a TCP RST, no answer
    "stall",  # accept the request and never answer (until stall_seconds or proxy stop)
    "status",  # answer `status` with a problem+json body (and Retry-After if given)
    "truncate",  # announce the full Content-Length, send half the body, close
    "malformed_json",  # 200 with a body that is not JSON
    "body",  # 200 with exactly `body` (e.g. far larger than the client's cap)
    "mutate",  # forward, then rewrite the decoded JSON body with `mutate`
    "oversized",  # forward, then blow the page up far beyond the requested limit
    "replay",  # answer with the previous matching request's URL (a page delivered twice)
    "lost_answer",  # forward (the server applies the request), then reset: no answer
]

# Hop-by-hop headers are the proxy's own business; everything else is passed through.
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "te"}


@dataclass
class Fault:
    """One fault: which requests it hits and what it does to them."""

    kind: FaultKind
    path_contains: str = "/offline/changes"
    nth: int = 1
    """The first matching request (1-based, counted since `arm`) that gets the fault."""
    times: int = 1
    """How many consecutive matching requests from `nth` on get it (0 = all from then on)."""
    status: int = 500
    code: str = "injected_fault"
    """The problem code of a ``status`` fault."""
    retry_after: float | None = None
    body: bytes = b""
    stall_seconds: float = 30.0
    mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    oversize_factor: int = 50
    oversize_padding_mb: int = 0
    """Also add an unknown key holding this many MiB of padding (0 = none)."""


@dataclass
class ProxyLog:
    """What the proxy saw: (method, path, status answered or fault kind)."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)


class FaultProxy:
    """A threaded loopback proxy; a context manager that starts and stops it."""

    def __init__(self, upstream_url: str) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._matched = 0
        self.fired = 0
        self.log = ProxyLog()
        self._last_match_path: str | None = None
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy"
        )

    @property
    def url(self) -> str:
        """The proxy's base URL; use it where the server URL would go."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def arm(self, fault: Fault) -> None:
        """Arm `fault`; matching requests are counted from now on."""
        with self._lock:
            self._fault = fault
            self._matched = 0
            self.fired = 0

    def clear(self) -> None:
        """Disarm: forward everything unchanged again. Releases stalled requests."""
        with self._lock:
            self._fault = None
        self._released.set()
        self._released = threading.Event()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- decisions -------------------------------------------------------------------------

    def _pick(self, path: str) -> tuple[Fault | None, str | None]:
        """The fault for this request (or None) and the previous matching path (for replay)."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.path_contains not in path:
                return None, None
            self._matched += 1
            previous, self._last_match_path = self._last_match_path, path
            first, last = fault.nth, fault.nth + fault.times - 1
            if self._matched < first or (fault.times and self._matched > last):
                return None, None
            self.fired += 1
            return fault, previous

    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.entries.append((method, path, outcome))

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    # -- the handler -----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log (it would also show query strings)."""

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                try:
                    self._serve()
                except (ConnectionError, TimeoutError, OSError):
                    self.close_connection = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in _HOP_HEADERS | {"accept-encoding", "host"}
                }
                fault, previous = proxy._pick(self.path)
                if fault is None:
                    status, resp_headers, data = proxy._forward(
                        self.command, self.path, headers, body
                    )
                    proxy._record(self.command, self.path, str(status))
                    self._send(status, resp_headers, data)
                    return
                proxy._record(self.command, self.path, fault.kind)
                self._inject(fault, previous, headers, body)

            def _inject(
                self,
                fault: Fault,
                previous: str | None,
                headers: dict[str, str],
                body: bytes | None,
            ) -> None:
                kind = fault.kind
                if kind == "reset":
                    self._reset()
                elif kind == "stall":
                    proxy._released.wait(fault.stall_seconds)
                    self.close_connection = True
                elif kind == "status":
                    problem = {
                        "type": "about:blank",
                        "title": http.client.responses.get(fault.status, "Error"),
                        "status": fault.status,
                        "code": fault.code,
                        "detail": "fault injected by the test proxy",
                    }
                    extra = []
                    if fault.retry_after is not None:
                        extra.append(("Retry-After", f"{fault.retry_after:g}"))
                    data = json.dumps(problem).encode()
                    ctype = [("Content-Type", "application/problem+json")]
                    self._send(fault.status, ctype + extra, data)
                elif kind == "malformed_json":
                    data = b'{"changes": [{"op": "upsert", "id": '
                    self._send(200, [("Content-Type", "application/json")], data)
                elif kind == "body":
                    self._send(200, [("Content-Type", "application/json")], fault.body)
                elif kind == "truncate":
                    status, resp_headers, data = proxy._forward("GET", self.path, headers, body)
                    self._send_head(status, resp_headers, len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif kind in ("mutate", "oversized"):
                    status, resp_headers, data = proxy._forward("GET", self.path, headers, body)
                    if status == 200:
                        page = json.loads(data)
                        rewrite = _oversize if kind == "oversized" else _mutate
                        page = rewrite(page, fault)
                        data = json.dumps(page).encode()
                    self._send(status, resp_headers, data)
                elif kind == "lost_answer":
                    proxy._forward(self.command, self.path, headers, body)
                    self._reset()
                elif kind == "replay":
                    path = previous or self.path
                    status, resp_headers, data = proxy._forward("GET", path, headers, body)
                    self._send(status, resp_headers, data)

            def _reset(self) -> None:
                # SO_LINGER with a zero timeout turns close() into a TCP RST.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()

            def _send_head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self._send_head(status, headers, len(data))
                if status != 304:
                    self.wfile.write(data)
                self.wfile.flush()

        return Handler


def _mutate(page: dict[str, Any], fault: Fault) -> dict[str, Any]:
    if fault.mutate is not None:
        return fault.mutate(page)
    return page


def _oversize(page: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """Repeat the page's changes `oversize_factor` times: far past the requested limit."""
    changes = page.get("changes") or []
    if changes:
        page["changes"] = changes * fault.oversize_factor
    if fault.oversize_padding_mb:
        page["padding"] = "x" * (1 << 20) * fault.oversize_padding_mb
    return page
