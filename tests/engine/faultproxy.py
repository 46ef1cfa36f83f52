"""A tiny HTTP proxy in front of the reference server that can spoil feed answers on demand.

Used only for faults a real server cannot produce: malformed JSON, schema violations, oversized
bodies, 5xx, Retry-After, a 403 on the feed after the policy said yes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


@dataclass
class Fault:
    """What to do with ``/offline/changes`` (and optionally other paths): None = pass through."""

    mode: str | None = None
    after_pages: int = 0  # let this many feed pages through first
    path_part: str = "/offline/changes"
    hits: int = 0
    seen: list[str] = field(default_factory=list)


def _spoil(mode: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    if mode == "garbage":
        return 200, {}, b"{this is not json"
    if mode == "schema":
        page = json.loads(body)
        page["changes"].append({"op": "upsert", "id": "evil", "rev": "two", "record": {}})
        return 200, {}, json.dumps(page).encode()
    if mode == "huge":
        return 200, {}, b'{"changes": [' + b" " * 300_000 + b"]}"
    if mode == "500":
        return 500, {}, b"{}"
    if mode == "busy":
        return 503, {"Retry-After": "1"}, b"{}"
    if mode == "busy_long":
        return 503, {"Retry-After": "3600"}, b"{}"
    if mode == "403":
        problem = {
            "type": "about:blank",
            "title": "no",
            "status": 403,
            "code": "offline_disabled",
            "detail": "off",
        }
        return 403, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode()
    raise ValueError(mode)


@contextmanager
def fault_proxy(upstream: str, fault: Fault) -> Iterator[str]:
    """Serve the proxy on a free loopback port; yields its base URL."""
    http = requests.Session()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("authorization", "x-client-id", "if-none-match")
            }
            with http.get(upstream + self.path, headers=headers, timeout=30) as response:
                status, body = response.status_code, response.content
                extra = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() in ("etag", "content-type", "retry-after")
                }
            if fault.path_part in self.path:
                fault.seen.append(self.path)
                if fault.mode is not None and fault.hits >= fault.after_pages:
                    status, extra, body = _spoil(fault.mode, body)
                fault.hits += 1
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        http.close()
